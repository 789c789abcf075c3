import Foundation
import HeraldCore
import HeraldSQLite
import HeraldTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kills a worker process with SIGKILL at random moments while it sends, receives, completes and
/// abandons on one database file, and checks GUARANTEES.md §4.1–4.2 after every round:
/// (a) no acknowledged send is lost, (b) no completed message is delivered again,
/// (c) sequence numbers are never reused.
///
/// The worker is `herald-lab crash-worker` (Sources/herald-lab/CrashWorker.swift); `swift test` builds it
/// with the tests. `HERALD_CRASH_ROUNDS` sets the number of rounds (25 by default).
@Suite("SIGKILL crash rounds on one SQLite file")
struct CrashTests {
    static let queue = "crash"

    @Test(.timeLimit(.minutes(10)))
    func sigkillRoundsLoseNothingAndRedeliverNoCompletedMessage() async throws {
        guard let herald = HeraldExecutable.labURL() else {
            Issue.record(
                """
                The herald-lab executable was not found next to the test bundle (\(Bundle.main.bundleURL.path)) \
                nor in .build/debug. Run `swift build` first (plain `swift test` builds it too; \
                `swift test --skip-build` does not).
                """
            )
            return
        }
        let rounds = ProcessInfo.processInfo.environment["HERALD_CRASH_ROUNDS"].flatMap(Int.init) ?? 25
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = directory.appendingPathComponent("herald.sqlite").path
        let logPath = directory.appendingPathComponent("events.log").path

        var problems = CrashProblems()
        var history = CrashLog()
        for round in 1...rounds {
            let runtime = Int.random(in: 150...700)
            let outcome = try await Self.runWorker(
                herald, database: database, log: logPath, stderr: directory.appendingPathComponent("worker-\(round).err"), for: .milliseconds(runtime))
            if let outcome {
                Issue.record("round \(round): the worker was not killed by SIGKILL but \(outcome); see \(directory.path)")
            }
            try Self.dropTornLastLine(logPath)
            history = CrashLog(parsing: FileManager.default.contents(atPath: logPath) ?? Data())
            let stored = try await Self.storedMessages(database)
            let found = history.check(against: stored)
            let isNew = problems.merge(found)
            if isNew {
                Issue.record("round \(round) (ran \(runtime) ms): \(found.summary); files kept in \(directory.path)")
            }
        }

        print(
            """
            crash test: \(rounds) rounds, \(history.sent.count) sent, \(history.completed.count) completed, \
            \(history.abandoned) abandoned, \(history.receivedAgain) delivered again (abandoned or locked at a kill), \
            \(history.starts) worker starts, \
            \(problems.lost.count) lost, \(problems.redelivered.count) redelivered, \
            \(problems.sequenceConflicts.count) sequence-number conflicts, \(history.errors.count) errors, \
            \(history.malformed) malformed log lines
            """
        )
        #expect(problems.lost.count == 0, "acknowledged sends lost, e.g. \(Self.sample(problems.lost))")
        #expect(problems.redelivered.count == 0, "completed messages delivered again, e.g. \(Self.sample(problems.redelivered))")
        #expect(problems.sequenceConflicts.count == 0, "sequence numbers reused, e.g. \(Self.sample(problems.sequenceConflicts))")
        #expect(history.errors.count == 0, "the worker logged broker errors, e.g. \(Self.sample(history.errors))")
        #expect(history.malformed == 0, "malformed log lines: \(history.malformed)")
        #expect(history.starts == rounds, "the worker started \(history.starts) times in \(rounds) rounds")
        // The checks mean something only if the worker made progress between kills.
        #expect(history.sent.count >= rounds, "only \(history.sent.count) messages sent in \(rounds) rounds")
        #expect(history.completed.count > 0, "no message was completed")

        if problems.isEmpty && history.errors.isEmpty {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    static func sample(_ items: some Collection<String>) -> String {
        items.sorted().prefix(3).joined(separator: "; ")
    }

    // MARK: The worker

    /// Runs `herald-lab crash-worker` for `duration`, then kills it with SIGKILL and waits for it.
    ///
    /// - Returns: `nil` when SIGKILL ended the worker; otherwise how it ended.
    static func runWorker(_ herald: URL, database: String, log: String, stderr: URL, for duration: Duration) async throws -> String? {
        let offset = ((try? FileManager.default.attributesOfItem(atPath: log)[.size]) as? NSNumber)?.uint64Value ?? 0
        let process = try ChildProcess(
            herald, ["crash-worker", "--data", database, "--log", log, "--queue", Self.queue],
            standardOutput: .discard, standardError: .file(stderr.path))
        // The kill comes `duration` after the worker has opened the store and said so, so a
        // loaded machine cannot turn a round into a kill before the worker ever started.
        let started = "start \(process.processIdentifier)\n"
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning && ContinuousClock.now < deadline {
            if let handle = FileHandle(forReadingAtPath: log) {
                defer { try? handle.close() }
                try? handle.seek(toOffset: offset)
                if let tail = try? handle.readToEnd(), String(decoding: tail, as: UTF8.self).contains(started) { break }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: duration)
        let wasRunning = process.isRunning
        process.signal(SIGKILL)
        let termination = await process.waitForExit()
        if wasRunning && termination == .signalled(SIGKILL) {
            return nil
        }
        let errorText = (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
        return "\(termination) (stderr: \(errorText.suffix(2000)))"
    }

    /// Cuts a line the killed worker did not finish, so the next worker's first line starts on its own line.
    static func dropTornLastLine(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let last = data.last, last != UInt8(ascii: "\n") else { return }
        let keep = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(keep))
    }

    /// Every message in the queue and its dead-letter queue, read by opening the store in this
    /// process while no worker runs.
    static func storedMessages(_ database: String) async throws -> StoredMessages {
        try await SQLiteBroker.withBroker(path: database) { broker in
            StoredMessages(
                queue: try await Self.peekAll(broker, .queue(Self.queue)),
                deadLetters: try await Self.peekAll(broker, EntityPath.queue(Self.queue).deadLetter)
            )
        }
    }

    static func peekAll(_ broker: some MessageBroker, _ entity: EntityPath) async throws -> [String: Int64] {
        var messages: [String: Int64] = [:]
        var next: Int64 = 0
        while true {
            let page: [ReceivedMessage]
            do {
                page = try await broker.peek(entity, fromSequenceNumber: next, maxCount: 500)
            } catch let error as HeraldError where error.code == .entityNotFound {
                return [:]  // the first worker was killed before it created the queue
            }
            guard let last = page.last else { return messages }
            for received in page {
                messages[received.message.messageId] = received.sequenceNumber
            }
            next = last.sequenceNumber + 1
        }
    }
}

/// What the store holds after a round: message id → sequence number.
struct StoredMessages {
    var queue: [String: Int64]
    var deadLetters: [String: Int64]
}

/// The worker's event log, all rounds so far (see Sources/herald/CrashWorker.swift for the format).
struct CrashLog {
    /// Acknowledged sends: id → sequence number.
    var sent: [String: Int64] = [:]
    /// Ids a `complete` was called for (it may or may not have committed before the kill).
    var completing: Set<String> = []
    /// Ids whose `complete` returned, with the index of that line.
    var completed: [String: Int] = [:]
    /// Index of the last `recv` line of each id.
    var lastReceived: [String: Int] = [:]
    /// Deliveries of messages received before (after an abandon, or a crash while locked).
    var receivedAgain = 0
    /// Every (id, sequence number) pair the log mentions.
    var pairs: [(id: String, sequenceNumber: Int64)] = []
    var abandoned = 0
    var starts = 0
    var errors: [String] = []
    var malformed = 0

    init() {}

    /// Parses every complete line; an unterminated last line (torn by the kill) is ignored.
    init(parsing data: Data) {
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        lines.removeLast()  // after the final newline: empty, or a torn line
        for (index, bytes) in lines.enumerated() {
            let line = String(decoding: bytes, as: UTF8.self)
            let fields = line.split(separator: " ", maxSplits: 2).map(String.init)
            switch fields.first {
            case "start":
                self.starts += 1
                continue
            case "error":
                self.errors.append(line)
                continue
            default:
                break
            }
            guard fields.count == 3, UUID(uuidString: fields[1]) != nil, let sequenceNumber = Int64(fields[2]) else {
                self.malformed += 1
                continue
            }
            let id = fields[1]
            self.pairs.append((id, sequenceNumber))
            switch fields[0] {
            case "sent": self.sent[id] = sequenceNumber
            case "recv":
                if self.lastReceived.updateValue(index, forKey: id) != nil { self.receivedAgain += 1 }
            case "completing": self.completing.insert(id)
            case "completed": self.completed[id] = self.completed[id] ?? index
            case "abandoned": self.abandoned += 1
            default: self.malformed += 1
            }
        }
    }

    /// Checks (a), (b) and (c) against what the store holds now.
    func check(against stored: StoredMessages) -> CrashProblems {
        var problems = CrashProblems()
        // (a) An acknowledged send is still stored, or a receiver was completing it.
        for (id, sequenceNumber) in self.sent
        where stored.queue[id] == nil && stored.deadLetters[id] == nil && !self.completing.contains(id) {
            problems.lost.insert("\(id) seq \(sequenceNumber)")
        }
        // (b) A completed message is never received again, nor still stored.
        for (id, completedAt) in self.completed {
            if let received = self.lastReceived[id], received > completedAt {
                problems.redelivered.insert("\(id) received again on log line \(received + 1) after completed on line \(completedAt + 1)")
            }
            if let sequenceNumber = stored.queue[id] {
                problems.redelivered.insert("\(id) seq \(sequenceNumber) still in the queue after completed on line \(completedAt + 1)")
            }
        }
        // (c) One sequence number per message and one message per sequence number.
        var idOfSequence: [Int64: String] = [:]
        var sequenceOfId: [String: Int64] = [:]
        for (id, sequenceNumber) in self.pairs + stored.queue.map({ (id: $0.key, sequenceNumber: $0.value) }) {
            if let other = idOfSequence[sequenceNumber], other != id {
                problems.sequenceConflicts.insert("seq \(sequenceNumber) names both \(other) and \(id)")
            }
            if let other = sequenceOfId[id], other != sequenceNumber {
                problems.sequenceConflicts.insert("\(id) has both seq \(other) and \(sequenceNumber)")
            }
            idOfSequence[sequenceNumber] = idOfSequence[sequenceNumber] ?? id
            sequenceOfId[id] = sequenceOfId[id] ?? sequenceNumber
        }
        return problems
    }
}

/// Violations found so far, each described once.
struct CrashProblems {
    var lost: Set<String> = []
    var redelivered: Set<String> = []
    var sequenceConflicts: Set<String> = []

    var isEmpty: Bool { self.lost.isEmpty && self.redelivered.isEmpty && self.sequenceConflicts.isEmpty }

    var summary: String {
        """
        \(self.lost.count) lost (\(self.lost.sorted().prefix(3).joined(separator: "; "))), \
        \(self.redelivered.count) redelivered (\(self.redelivered.sorted().prefix(3).joined(separator: "; "))), \
        \(self.sequenceConflicts.count) sequence conflicts (\(self.sequenceConflicts.sorted().prefix(3).joined(separator: "; ")))
        """
    }

    /// Adds `other`; returns whether it held a violation not seen before.
    mutating func merge(_ other: CrashProblems) -> Bool {
        let before = self.lost.count + self.redelivered.count + self.sequenceConflicts.count
        self.lost.formUnion(other.lost)
        self.redelivered.formUnion(other.redelivered)
        self.sequenceConflicts.formUnion(other.sequenceConflicts)
        return self.lost.count + self.redelivered.count + self.sequenceConflicts.count > before
    }
}
