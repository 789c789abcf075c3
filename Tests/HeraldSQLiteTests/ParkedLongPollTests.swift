import Foundation
import HeraldCore
import Synchronization
import Testing

@testable import HeraldSQLite

/// A receive that waits for messages is served in the transaction of the send that brings them:
/// one fsync covers both, rather than one for the send and another for the receive's locks.
@Suite struct ParkedLongPollTests {
    typealias Machine = GroupCommitStateMachine<Int>

    private static func running() -> Machine {
        var machine = Machine(maxGroupSize: 8)
        #expect(machine.start() == .startThreads)
        return machine
    }

    private static func executed(_ action: Machine.WriterAction) -> [Int]? {
        if case .execute(let operations) = action { return operations }
        return nil
    }

    private static func isWait(_ action: Machine.WriterAction) -> Bool {
        if case .wait = action { return true }
        return false
    }

    private static func syncedHere(_ action: Machine.CommittedAction) -> [Int]? {
        if case .syncHere(let operations) = action { return operations }
        return nil
    }

    private static func isCommit(_ action: Machine.WriterAction) -> Bool {
        if case .commit = action { return true }
        return false
    }

    /// Runs `id`, a long poll's attempt on `key`, which finds nothing, so that the writer parks it.
    private static func parked(_ machine: inout Machine, _ id: Int, on key: String) {
        _ = machine.submit(id, isReadOnly: false, parkingOn: key, id: UInt64(id))
        #expect(Self.executed(machine.nextWriterAction()) == [id])
        #expect(machine.writerParked([UInt64(id)]) == [id], "parked: its wait is timed from now")
    }

    @Test func aParkedAttemptRunsAgainInTheTransactionOfTheSendThatTouchesItsKey() {
        var machine = Self.running()
        Self.parked(&machine, 1, on: "q")
        Self.parked(&machine, 2, on: "other")
        #expect(machine.parkedCount == 2)
        // Parked, they are not part of the transaction: nothing to commit, nothing to acknowledge.
        #expect(Self.isWait(machine.nextWriterAction()))
        _ = machine.submit(10, isReadOnly: false)  // the send
        #expect(Self.executed(machine.nextWriterAction()) == [10])
        machine.writerParked([])
        machine.writerTouched(["q"])
        #expect(Self.executed(machine.nextWriterAction()) == [1], "before the commit")
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.syncedHere(machine.writerCommitted()) == [10, 1], "one fsync for the send and the receive")
        #expect(machine.parkedCount == 1)
        // Its wait ending later finds nothing to do.
        if case .wakeWriter = machine.release(id: 1, key: "q") { Issue.record("released twice") }
    }

    @Test func aSendInTheSameBatchServesTheAttemptThatParkedBeforeIt() {
        var machine = Self.running()
        _ = machine.submit(1, isReadOnly: false, parkingOn: "q", id: 1)
        _ = machine.submit(10, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [1, 10])
        machine.writerParked([1])
        machine.writerTouched(["q"])
        #expect(Self.executed(machine.nextWriterAction()) == [1])
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.syncedHere(machine.writerCommitted()) == [10, 1])
    }

    @Test func anAttemptWhoseWaitEndedDoesNotPark() {
        var machine = Self.running()
        _ = machine.submit(1, isReadOnly: false, parkingOn: "q", id: 1)
        _ = machine.release(id: 1, key: "q")
        #expect(Self.executed(machine.nextWriterAction()) == [1])
        #expect(machine.writerParked([1]).isEmpty, "not parked: no timer starts")
        #expect(machine.parkedCount == 0)
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.syncedHere(machine.writerCommitted()) == [1], "acknowledged, empty")
    }

    @Test func aParkedAttemptWhoseWaitEndsRunsAgain() {
        var machine = Self.running()
        Self.parked(&machine, 1, on: "q")
        #expect(Self.isWait(machine.nextWriterAction()))
        guard case .wakeWriter = machine.release(id: 1, key: "q") else {
            Issue.record("the sleeping writer must be woken")
            return
        }
        #expect(Self.executed(machine.nextWriterAction()) == [1])
        // Finding nothing again, it is acknowledged: its wait is over.
        machine.writerParked([1])
        #expect(machine.parkedCount == 0)
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.syncedHere(machine.writerCommitted()) == [1])
    }

    @Test func aCancelledWaitEndsWithoutRunningAgain() {
        var machine = Self.running()
        Self.parked(&machine, 1, on: "q")
        #expect(machine.cancelWait(id: 1, key: "q") == 1, "returned, to be acknowledged with what it found")
        #expect(machine.parkedCount == 0)
        #expect(Self.isWait(machine.nextWriterAction()), "nothing runs again")
        // Cancelled while pending, it runs but does not park.
        _ = machine.submit(2, isReadOnly: false, parkingOn: "q", id: 2)
        #expect(machine.cancelWait(id: 2, key: "q") == nil)
        #expect(Self.executed(machine.nextWriterAction()) == [2])
        machine.writerParked([2])
        #expect(machine.parkedCount == 0)
    }

    @Test func aCancelledReceiveTakesNothingMore() async throws {
        let store = try await CountingStore()
        defer { store.remove() }
        let receiving = try await store.parkedReceive()
        let before = store.syncs
        receiving.cancel()
        #expect(try await receiving.value.isEmpty)
        #expect(store.syncs == before, "no attempt ran after the cancellation")
        #expect(store.broker.parkedReceiveCount == 0)
        await store.broker.close()
    }

    @Test func closingRunsTheParkedAttemptsAndFailuresFailThem() {
        var closing = Self.running()
        Self.parked(&closing, 1, on: "q")
        _ = closing.close()
        #expect(closing.parkedCount == 0)
        #expect(Self.executed(closing.nextWriterAction()) == [1])
        closing.writerParked([1])
        #expect(closing.parkedCount == 0, "a closing store parks nothing")
        #expect(Self.isCommit(closing.nextWriterAction()))

        var failing = Self.running()
        Self.parked(&failing, 1, on: "q")
        let (failed, _) = failing.writerFailed(HeraldError(.storeFailed, "disk"))
        #expect(failed == [1])
        #expect(failing.parkedCount == 0)
    }

    @Test func aWaitingReceiveGetsASentMessageWithTheSendsFsync() async throws {
        let store = try await CountingStore()
        defer { store.remove() }
        var fsyncsPerDelivery: [Int] = []
        for trial in 0..<3 {
            let receiving = try await store.parkedReceive()
            let before = store.syncs
            try await store.broker.send(Message(messageId: "m\(trial)", text: "hello"), to: .queue("orders"))
            let received = try await receiving.value
            #expect(received.map(\.message.messageId) == ["m\(trial)"])
            fsyncsPerDelivery.append(store.syncs - before)
            try await store.broker.complete(try #require(received.first?.lockToken))
        }
        #expect(fsyncsPerDelivery == [1, 1, 1], "fsyncs from send to delivery, per trial")
        await store.broker.close()
    }
}

/// A transaction that changed no row, which the writer syncs itself (so every earlier commit is
/// durable already), is acknowledged without an fsync: health checks, counts, peeks and receives
/// that find nothing cost the disk nothing. (Each cost one `fdatasync` before.)
@Suite struct UnchangedTransactionTests {
    @Test func readsAndEmptyReceivesAreNotSynced() async throws {
        let store = try await CountingStore()
        defer { store.remove() }
        let queue = EntityPath.queue("orders")
        let before = store.syncs
        _ = try await store.broker.listQueues()
        _ = try await store.broker.counts(of: queue)
        _ = try await store.broker.peek(queue, fromSequenceNumber: 1, maxCount: 10)
        #expect(try await store.broker.receive(from: queue, maxCount: 1, maxWaitTime: .zero).isEmpty)
        #expect(store.syncs == before, "nothing changed")

        _ = try await store.broker.send(Message(messageId: "m", body: Data()), to: queue)
        #expect(store.syncs == before + 1, "a send")
        _ = try await store.broker.peek(queue, fromSequenceNumber: 1, maxCount: 10)
        #expect(store.syncs == before + 1, "a peek after it")
        #expect(try await store.broker.receive(from: queue, maxCount: 1, maxWaitTime: .zero).count == 1)
        #expect(store.syncs == before + 2, "a lock is a change")
        await store.broker.close()
    }
}

/// A store in a temporary folder that counts its fsyncs, with the queue `orders`. It runs nothing
/// by itself: no look for expired locks (a 60 s poll interval) and no free-space measure before a
/// send (each a transaction of its own), so that only the operations of a test sync.
private final class CountingStore {
    let broker: SQLiteBroker
    private let directory: URL
    private let counter = FsyncCounter()

    init() async throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        var configuration = SQLiteBroker.Configuration()
        let counter = self.counter
        configuration._syncWAL = { _ in counter.add() }
        configuration.longPollInterval = .seconds(60)
        configuration.minimumFreeDiskBytes = 0
        self.broker = try SQLiteBroker.running(path: self.directory.appendingPathComponent("herald.sqlite").path, configuration: configuration)
        try await self.broker.createQueue("orders")
    }

    /// The fsyncs so far.
    var syncs: Int { self.counter.value }

    /// A receive from `orders` (30 s wait), once it waits parked.
    func parkedReceive() async throws -> Task<[ReceivedMessage], any Error> {
        let broker = self.broker
        let receiving = Task { try await broker.receive(from: .queue("orders"), maxCount: 1, maxWaitTime: .seconds(30)) }
        let parkedBy = ContinuousClock.now + .seconds(10)
        while broker.parkedReceiveCount == 0 && ContinuousClock.now < parkedBy { try await Task.sleep(for: .milliseconds(1)) }
        #expect(broker.parkedReceiveCount == 1, "the receive waits parked")
        return receiving
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.directory)
    }
}

private final class FsyncCounter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { self.count.add(1, ordering: .relaxed) }
    var value: Int { self.count.load(ordering: .relaxed) }
}
