import Foundation
import HeraldCore
import Synchronization

#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// The load of the crash test's child process.
///
/// Log lines, one `write(2)` each, in the order that makes the test's checks sound:
/// - `start <pid>` when the worker starts;
/// - `sent <messageId> <seq>` after a send (or the batch holding it) returned, i.e. was acknowledged;
/// - `recv <messageId> <seq>` after a receive returned the message;
/// - `completing <messageId> <seq>` before `complete` is called, `completed …` after it returned;
/// - `abandoned <messageId> <seq>` after `abandon` returned;
/// - `error <operation> <description>` when a broker call fails (the test expects none).
///
/// No fsync: SIGKILL ends the process, not the machine, so the page cache keeps every written line.
struct CrashWorker: Sendable {
    let broker: any MessageBroker
    let queue: String
    let log: EventLog
    let senders: Int
    let receivers: Int

    /// About how many messages the queue holds (counted at start, then sends minus completions):
    /// senders pause above a bound, so the queue does not grow without limit over many rounds.
    private let backlog = Backlog()
    private static let maxBacklog = 500

    init(broker: any MessageBroker, queue: String, log: EventLog, senders: Int, receivers: Int) {
        self.broker = broker
        self.queue = queue
        self.log = log
        self.senders = senders
        self.receivers = receivers
    }

    func run() async throws {
        self.log.write("start \(getpid())")
        do {
            // Many crash rounds redeliver the same message; never let that dead-letter it.
            try await self.broker.createQueue(self.queue, options: EntityOptions(maxDeliveryCount: EntityOptions.maxDeliveryCountRange.upperBound))
        } catch let error as HeraldError where error.code == .entityAlreadyExists {
            // Created by an earlier round.
        }
        let counts = try await self.broker.counts(of: .queue(self.queue))
        self.backlog.value.store(counts.active + counts.locked, ordering: .relaxed)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<self.senders {
                group.addTask { try await self.sendForever() }
            }
            for _ in 0..<self.receivers {
                group.addTask { try await self.receiveForever() }
            }
            try await group.waitForAll()
        }
    }

    private func sendForever() async throws {
        let entity = EntityPath.queue(self.queue)
        while true {
            if self.backlog.value.load(ordering: .relaxed) > Self.maxBacklog {
                try await Task.sleep(for: .milliseconds(5))
                continue
            }
            // Mostly single sends; now and then an atomic batch.
            let count = Int.random(in: 0..<10) == 0 ? Int.random(in: 2...10) : 1
            let messages = (0..<count).map { _ in
                Message(messageId: UUID().uuidString, body: Data((0..<Int.random(in: 16...512)).map { _ in UInt8.random(in: .min ... .max) }))
            }
            let receipts: [SendReceipt]
            do {
                receipts = try await self.broker.send(messages, to: entity)
            } catch {
                self.log.write("error send \(error)")
                try await Task.sleep(for: .milliseconds(10))
                continue
            }
            self.backlog.value.add(count, ordering: .relaxed)
            for (message, receipt) in zip(messages, receipts) {
                self.log.write("sent \(message.messageId) \(receipt.sequenceNumber.map(String.init) ?? "nil")")
            }
        }
    }

    private func receiveForever() async throws {
        let entity = EntityPath.queue(self.queue)
        while true {
            let batch: [ReceivedMessage]
            do {
                batch = try await self.broker.receive(from: entity, maxCount: Int.random(in: 1...20), maxWaitTime: .milliseconds(200), mode: .peekLock)
            } catch {
                self.log.write("error receive \(error)")
                try await Task.sleep(for: .milliseconds(10))
                continue
            }
            var toComplete: [ReceivedMessage] = []
            for received in batch {
                self.log.write("recv \(Self.describe(received))")
                if Int.random(in: 0..<10) == 0 {
                    do {
                        try await self.broker.abandon(received.lockToken!, delay: nil)
                        self.log.write("abandoned \(Self.describe(received))")
                    } catch {
                        self.log.write("error abandon \(Self.describe(received)) \(error)")
                    }
                } else {
                    toComplete.append(received)
                }
            }
            if toComplete.isEmpty { continue }
            // Half the time one batch (one transaction), half the time one by one.
            if Bool.random() {
                for received in toComplete { self.log.write("completing \(Self.describe(received))") }
                do {
                    try await self.broker.complete(toComplete.map { $0.lockToken! })
                    for received in toComplete { self.log.write("completed \(Self.describe(received))") }
                    self.backlog.value.subtract(toComplete.count, ordering: .relaxed)
                } catch {
                    self.log.write("error complete-batch \(error)")
                }
            } else {
                for received in toComplete {
                    self.log.write("completing \(Self.describe(received))")
                    do {
                        try await self.broker.complete(received.lockToken!)
                        self.log.write("completed \(Self.describe(received))")
                        self.backlog.value.subtract(1, ordering: .relaxed)
                    } catch {
                        self.log.write("error complete \(Self.describe(received)) \(error)")
                    }
                }
            }
        }
    }

    private static func describe(_ received: ReceivedMessage) -> String {
        "\(received.message.messageId) \(received.sequenceNumber)"
    }

    /// An append-only log file written with one `write(2)` per line.
    final class EventLog: Sendable {
        private let descriptor: Int32

        init(path: String) throws {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            guard descriptor >= 0 else {
                throw CocoaError(
                    .fileWriteUnknown,
                    userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "cannot open the log: \(String(cString: strerror(errno)))"])
            }
            self.descriptor = descriptor
        }

        deinit { close(self.descriptor) }

        /// Appends `line` and a newline in one `write(2)`, so lines of concurrent tasks never interleave.
        func write(_ line: String) {
            var bytes = Array((line + "\n").utf8)
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = systemWrite(self.descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        fatalError("crash-worker: cannot write the log: \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
        }
    }

    private final class Backlog: Sendable {
        let value = Atomic<Int>(0)
    }
}
