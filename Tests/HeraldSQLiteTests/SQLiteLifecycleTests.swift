import Dispatch
import Foundation
import HeraldCore
import HeraldSQLite
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The broker as a `Service`: nothing runs before ``SQLiteBroker/run()``, and a graceful shutdown
/// (what SIGTERM starts in a `ServiceGroup`) drains the accepted work before the file closes.
@Suite struct SQLiteLifecycleTests {
    private static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("herald-lifecycle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    private static let logger = Logger(label: "herald.test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Sends a message to queue `q` and records the outcome in `tally`; returns the error, if any.
    @discardableResult
    private static func send(_ id: String, to broker: SQLiteBroker, _ tally: Tally) async -> HeraldError? {
        do {
            try await broker.send(Message(messageId: id, text: id), to: .queue("q"))
            tally.record(id, nil)
            return nil
        } catch {
            let heraldError = error as? HeraldError ?? HeraldError(.storeFailed, "not a HeraldError: \(error)")
            tally.record(id, heraldError)
            return heraldError
        }
    }

    @Test func gracefulShutdownAcknowledgesWhatWasInFlightAndRefusesLaterWork() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let gate = FsyncGate()
        var configuration = SQLiteBroker.Configuration()
        configuration._beforeCommit = { gate.pass() }
        // No free-space measurement: a send is then one operation, and the fsync held is its own.
        configuration.minimumFreeDiskBytes = 0
        let broker = try SQLiteBroker(path: path, configuration: configuration)
        let group = ServiceGroup(configuration: .init(services: [broker], logger: Self.logger))
        let tally = Tally()

        // Issued before run(): they wait for the broker to run, then succeed.
        let early = Task {
            try await broker.createQueue("q")
            return await Self.send("early", to: broker, tally)
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(tally.outcomes.isEmpty, "an operation ran before run()")
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(try await early.value == nil, "an operation issued before run() succeeds once the broker runs")

            // One send's fsync is held: it is in flight when the shutdown begins, and so are the
            // sends issued meanwhile.
            gate.hold()
            let held = Task { await Self.send("held", to: broker, tally) }
            try await gate.waitUntilBlocked()
            let others = (0..<20).map { index in Task { await Self.send("other-\(index)", to: broker, tally) } }
            try await Task.sleep(for: .milliseconds(200))
            await group.triggerGracefulShutdown()

            // Once the drain begins, operations are refused; probes accepted before that wait for the gate.
            var probes: [Task<HeraldError?, Never>] = []
            for index in 0..<250 {
                probes.append(Task { await Self.send("probe-\(index)", to: broker, tally) })
                try await Task.sleep(for: .milliseconds(20))
                if !tally.refused.isEmpty { break }
            }
            #expect(!tally.refused.isEmpty, "nothing was refused after the graceful shutdown began")
            gate.open()
            let heldOutcome = await held.value
            #expect(heldOutcome == nil, "the send in flight when the shutdown began is acknowledged: \(String(describing: heldOutcome))")
            for task in others + probes { _ = await task.value }
            // The service returns once the accepted work is durable and the file closed.
            try await tasks.waitForAll()
        }
        #expect(await Self.send("after", to: broker, tally)?.code == .storeClosed)
        #expect(tally.unexpected.isEmpty, "errors other than storeClosed: \(tally.unexpected)")

        // Every acknowledged send is in the file, and nothing that was refused.
        let stored = try await SQLiteBroker.withBroker(path: path) { reopened in
            try await reopened.peek(.queue("q"), fromSequenceNumber: 0, maxCount: 500).map(\.message.messageId)
        }
        #expect(stored.count == Set(stored).count)
        #expect(Set(stored) == tally.acknowledged)
        #expect(tally.acknowledged.isSuperset(of: ["early", "held"]))
    }

    @Test func closingBeforeRunFailsTheWaitingOperations() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let broker = try SQLiteBroker(path: directory.appendingPathComponent("herald.sqlite").path)
        let waiting = Task { try await broker.createQueue("q") }
        try await Task.sleep(for: .milliseconds(100))
        await broker.close()
        await #expect { try await waiting.value } throws: { ($0 as? HeraldError)?.code == .storeClosed }
        // run() after close() returns at once; the file is closed, so another broker may open it.
        try await broker.run()
        let queues = try await SQLiteBroker.withBroker(path: directory.appendingPathComponent("herald.sqlite").path) { try await $0.listQueues() }
        #expect(queues.isEmpty)
    }

    @Test func withBrokerRunsTheBrokerForItsScope() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let tally = Tally()
        let broker = try await SQLiteBroker.withBroker(path: path) { broker in
            try await broker.createQueue("q")
            #expect(await Self.send("kept", to: broker, tally) == nil)
            return broker
        }
        #expect(await Self.send("late", to: broker, tally)?.code == .storeClosed)
        let counts = try await SQLiteBroker.withBroker(path: path) { try await $0.counts(of: .queue("q")) }
        #expect(counts.active == 1)
    }
}

/// The outcome of each send of a test.
final class Tally: Sendable {
    private let state = Mutex<[String: HeraldError?]>([:])

    func record(_ id: String, _ error: HeraldError?) {
        self.state.withLock { $0[id] = .some(error) }
    }

    var outcomes: [String: HeraldError?] { self.state.withLock { $0 } }
    var acknowledged: Set<String> { Set(self.outcomes.filter { $0.value == nil }.keys) }
    var refused: Set<String> { Set(self.outcomes.filter { $0.value?.code == .storeClosed }.keys) }
    var unexpected: [String: HeraldError] {
        self.outcomes.compactMapValues { $0 }.filter { $0.value.code != .storeClosed }
    }
}

/// Holds the WAL's fsync while closed, so a test can act while a group waits for its sync.
final class FsyncGate: Sendable {
    private struct State {
        var isHeld = false
        var blocked = 0
    }

    private let state = Mutex(State())
    private let release = DispatchSemaphore(value: 0)

    /// Called before each fsync: blocks while the gate is held.
    func pass() {
        let mustWait = self.state.withLock { state -> Bool in
            guard state.isHeld else { return false }
            state.blocked += 1
            return true
        }
        if mustWait { self.release.wait() }
    }

    func hold() {
        self.state.withLock { $0.isHeld = true }
    }

    /// Lets the blocked fsyncs, and the later ones, go.
    func open() {
        let blocked = self.state.withLock { state -> Int in
            state.isHeld = false
            defer { state.blocked = 0 }
            return state.blocked
        }
        for _ in 0..<blocked { self.release.signal() }
    }

    /// Returns once an fsync is blocked at the gate.
    func waitUntilBlocked() async throws {
        for _ in 0..<500 {
            if self.state.withLock({ $0.blocked > 0 }) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("no fsync reached the gate within 5 s")
    }
}
