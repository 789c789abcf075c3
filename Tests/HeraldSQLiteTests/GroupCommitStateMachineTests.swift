import HeraldCore
import Testing

@testable import HeraldSQLite

/// The group committer's scheduling, without a database or a thread: operations are integers and
/// each test plays the writer, the syncer and the callers by hand.
@Suite struct GroupCommitStateMachineTests {
    typealias Machine = GroupCommitStateMachine<Int>

    private static func running(maxGroupSize: Int = 4) -> Machine {
        var machine = Machine(maxGroupSize: maxGroupSize)
        #expect(machine.start() == .startThreads)
        return machine
    }

    // MARK: Reading actions

    private static func isQueued(_ action: Machine.SubmitAction, wakingTheWriter: Bool) -> Bool {
        switch action {
        case .none: !wakingTheWriter
        case .wakeWriter: wakingTheWriter
        case .fail: false
        }
    }

    private static func refusal(_ action: Machine.SubmitAction) -> HeraldError.Code? {
        if case .fail(let error) = action { return error.code }
        return nil
    }

    private static func executed(_ action: Machine.WriterAction) -> [Int]? {
        if case .execute(let operations) = action { return operations }
        return nil
    }

    private static func isCommit(_ action: Machine.WriterAction) -> Bool {
        if case .commit = action { return true }
        return false
    }

    private static func isWait(_ action: Machine.WriterAction) -> Bool {
        if case .wait = action { return true }
        return false
    }

    private static func isStop(_ action: Machine.WriterAction) -> Bool {
        if case .stop = action { return true }
        return false
    }

    private static func syncedHere(_ action: Machine.CommittedAction) -> [Int]? {
        if case .syncHere(let operations) = action { return operations }
        return nil
    }

    private static func handedToSyncer(_ action: Machine.CommittedAction) -> Bool? {
        if case .handedToSyncer(let wake) = action { return wake }
        return nil
    }

    private static func syncing(_ action: Machine.SyncerAction) -> [Int]? {
        if case .sync(let operations) = action { return operations }
        return nil
    }

    // MARK: Batching

    @Test func operationsSubmittedBeforeStartWaitForIt() {
        var machine = Machine(maxGroupSize: 4)
        #expect(Self.isQueued(machine.submit(1, isReadOnly: false), wakingTheWriter: false))
        #expect(Self.isQueued(machine.submit(2, isReadOnly: true), wakingTheWriter: false))
        #expect(machine.phase == .idle)
        #expect(machine.start() == .startThreads)
        #expect(machine.start() == .alreadyStarted)
        #expect(Self.executed(machine.nextWriterAction()) == [1, 2])
    }

    @Test func aSleepingWriterIsWokenOnce() {
        var machine = Self.running()
        #expect(Self.isWait(machine.nextWriterAction()))
        #expect(Self.isQueued(machine.submit(1, isReadOnly: false), wakingTheWriter: true))
        // The first submission consumed the wake-up: the writer is no longer asleep.
        #expect(Self.isQueued(machine.submit(2, isReadOnly: false), wakingTheWriter: false))
        #expect(Self.executed(machine.nextWriterAction()) == [1, 2])
    }

    @Test func aGroupTakesAtMostTheGroupSizeAndAFullGroupCommitsAtOnce() {
        var machine = Self.running(maxGroupSize: 4)
        for operation in 1...6 { _ = machine.submit(operation, isReadOnly: false) }
        #expect(Self.executed(machine.nextWriterAction()) == [1, 2, 3, 4])
        #expect(Self.isCommit(machine.nextWriterAction()))
        // More is pending: the syncer takes the group while the writer fills the next one.
        #expect(Self.handedToSyncer(machine.writerCommitted()) == false)
        #expect(Self.executed(machine.nextWriterAction()) == [5, 6])
        // The syncer has a group: the writer keeps its transaction open rather than commit.
        #expect(Self.isWait(machine.nextWriterAction()))
        #expect(Self.isQueued(machine.submit(7, isReadOnly: false), wakingTheWriter: true))
        #expect(Self.executed(machine.nextWriterAction()) == [7])
        #expect(Self.syncing(machine.nextSyncerAction()) == [1, 2, 3, 4])
        #expect(Self.isWait(machine.nextWriterAction()))
        let synced = machine.syncSucceeded()
        #expect(synced.acknowledged == [1, 2, 3, 4])
        #expect(synced.wakeWriter)
        #expect(Self.isCommit(machine.nextWriterAction()))
        // Nothing else to do, but a group of several callers: the syncer syncs it, and the writer
        // is free for their next operations.
        #expect(Self.handedToSyncer(machine.writerCommitted()) == false)
        #expect(Self.syncing(machine.nextSyncerAction()) == [5, 6, 7])
        #expect(machine.syncSucceeded().acknowledged == [5, 6, 7])
    }

    @Test func theWriterSyncsOnlyALoneCallersGroupItself() {
        var machine = Self.running()
        for group in [[1], [2, 3]] {
            for operation in group { _ = machine.submit(operation, isReadOnly: false) }
            #expect(Self.executed(machine.nextWriterAction()) == group)
            #expect(Self.isCommit(machine.nextWriterAction()))
            #expect(Self.syncedHere(machine.writerCommitted()) == group)
            #expect(machine.syncSucceeded().acknowledged == group)
        }
        for operation in 4...6 { _ = machine.submit(operation, isReadOnly: false) }
        #expect(Self.executed(machine.nextWriterAction()) == [4, 5, 6])
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.handedToSyncer(machine.writerCommitted()) == false)
        #expect(Self.syncing(machine.nextSyncerAction()) == [4, 5, 6])
        #expect(machine.syncSucceeded().acknowledged == [4, 5, 6])
    }

    // MARK: Commit, then sync

    @Test func nothingIsAcknowledgedBeforeTheSyncThatCoversIt() {
        var machine = Self.running()
        _ = machine.submit(1, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [1])
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.syncedHere(machine.writerCommitted()) == [1])
        // A group committed meanwhile waits for the syncer, not for the first sync.
        _ = machine.submit(2, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [2])
        #expect(Self.isWait(machine.nextWriterAction()), "the sync under way holds the next commit back")
        #expect(machine.syncSucceeded().acknowledged == [1])
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.syncedHere(machine.writerCommitted()) == [2])
        #expect(machine.syncSucceeded().acknowledged == [2])
        #expect(machine.syncSucceeded().acknowledged == [], "each group is acknowledged once")
    }

    // MARK: Read-only and writing operations

    @Test func aFullDiskRefusesWritesAndRunsReadsAgainOnce() {
        var machine = Self.running()
        _ = machine.submit(1, isReadOnly: false)
        _ = machine.submit(2, isReadOnly: true)
        _ = machine.submit(3, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [1, 2, 3])
        #expect(machine.rolledBackForFullDisk() == [1, 3])
        _ = machine.submit(4, isReadOnly: true)
        // The read runs again first, ahead of what came later.
        #expect(Self.executed(machine.nextWriterAction()) == [2, 4])
        #expect(machine.rolledBackForFullDisk() == [2], "a read is run again only once")
        #expect(Self.executed(machine.nextWriterAction()) == [4])
        #expect(machine.failure == nil, "a full disk does not stop the store")
    }

    // MARK: Failure

    @Test func aFailedSyncFailsEveryWaiterAndStopsTheStore() {
        var machine = Self.running(maxGroupSize: 2)
        for operation in 1...3 { _ = machine.submit(operation, isReadOnly: false) }
        #expect(Self.executed(machine.nextWriterAction()) == [1, 2])
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.handedToSyncer(machine.writerCommitted()) == false)
        #expect(Self.syncing(machine.nextSyncerAction()) == [1, 2])  // being synced
        _ = machine.submit(4, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [3, 4])
        #expect(Self.isCommit(machine.nextWriterAction()), "a full group commits while the syncer is busy")
        #expect(Self.handedToSyncer(machine.writerCommitted()) == false)  // committed, waiting
        _ = machine.submit(5, isReadOnly: false)
        _ = machine.submit(6, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [5, 6])  // open
        _ = machine.submit(7, isReadOnly: true)  // pending

        let fsyncFailed = HeraldError(.storeFailed, "fsync failed")
        let failed = machine.syncFailed(fsyncFailed)
        #expect(failed.operations == [1, 2, 3, 4, 7])
        #expect(failed.failure.message == "fsync failed")
        guard case .rollBack(let undone, let failure) = machine.nextWriterAction() else {
            Issue.record("the writer must roll back its open transaction")
            return
        }
        #expect(undone == [5, 6])
        #expect(failure.message == "fsync failed")
        #expect(Self.refusal(machine.submit(8, isReadOnly: false)) == .storeFailed)
        // The first failure is the one every later caller sees.
        #expect(machine.writerFailed(HeraldError(.storeFailed, "later")).failure.message == "fsync failed")
        #expect(machine.failure?.message == "fsync failed")
        #expect(Self.isWait(machine.nextWriterAction()))
    }

    @Test func aWriterFailureFailsAllButTheGroupItsSyncDecides() {
        var machine = Self.running(maxGroupSize: 1)
        for operation in 1...3 { _ = machine.submit(operation, isReadOnly: false) }
        #expect(Self.executed(machine.nextWriterAction()) == [1])
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.handedToSyncer(machine.writerCommitted()) == false)
        #expect(Self.syncing(machine.nextSyncerAction()) == [1])
        #expect(Self.executed(machine.nextWriterAction()) == [2])
        let failed = machine.writerFailed(HeraldError(.storeFailed, "disk I/O error"))
        #expect(failed.operations == [2, 3])
        // The group being synced was committed before the failure: its fsync decides it.
        #expect(machine.syncSucceeded().acknowledged == [1])
        // A group committed but not yet synced when the store failed is never acknowledged.
        var other = Self.running(maxGroupSize: 1)
        _ = other.submit(1, isReadOnly: false)
        _ = other.submit(2, isReadOnly: false)
        _ = other.nextWriterAction()
        _ = other.nextWriterAction()
        #expect(Self.handedToSyncer(other.writerCommitted()) == false)
        _ = other.nextWriterAction()  // executes 2
        #expect(other.writerFailed(HeraldError(.storeFailed, "disk I/O error")).operations == [2, 1])
        #expect(Self.isWait(other.nextWriterAction()))
        guard case .wait = other.nextSyncerAction() else {
            Issue.record("nothing is left for the syncer")
            return
        }
    }

    // MARK: Stopping

    @Test func closingDrainsWhatWasAcceptedThenStopsBothThreads() {
        var machine = Self.running()
        _ = machine.submit(1, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [1])
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.syncedHere(machine.writerCommitted()) == [1])
        _ = machine.submit(2, isReadOnly: false)
        #expect(Self.executed(machine.nextWriterAction()) == [2])
        #expect(Self.isWait(machine.nextWriterAction()))

        guard case .waitForStop(let wake) = machine.close() else {
            Issue.record("a running store drains")
            return
        }
        #expect(wake, "the waiting writer must commit what it holds")
        #expect(machine.phase == .draining)
        #expect(Self.refusal(machine.submit(3, isReadOnly: false)) == .storeClosed)
        // Draining, the writer commits without waiting for the sync under way, and hands the
        // group to the syncer.
        #expect(Self.isCommit(machine.nextWriterAction()))
        #expect(Self.handedToSyncer(machine.writerCommitted()) == false)
        #expect(Self.isStop(machine.nextWriterAction()))
        #expect(machine.syncSucceeded().acknowledged == [1])
        #expect(machine.writerStopped() == false)
        #expect(Self.syncing(machine.nextSyncerAction()) == [2])
        #expect(machine.syncSucceeded().acknowledged == [2])
        guard case .stop = machine.nextSyncerAction() else {
            Issue.record("the syncer stops once the writer has and nothing is left")
            return
        }
        machine.threadsStopped()
        #expect(machine.phase == .stopped)
        guard case .none = machine.close() else {
            Issue.record("closing twice does nothing")
            return
        }
    }

    @Test func aSleepingSyncerIsWokenToStop() {
        var machine = Self.running()
        guard case .wait = machine.nextSyncerAction() else {
            Issue.record("an idle syncer sleeps")
            return
        }
        _ = machine.close()
        #expect(Self.isStop(machine.nextWriterAction()))
        let wakeSyncer = machine.writerStopped()
        #expect(wakeSyncer)
    }

    @Test func closingBeforeStartFailsTheWaitingOperations() {
        var machine = Machine(maxGroupSize: 4)
        _ = machine.submit(1, isReadOnly: false)
        _ = machine.submit(2, isReadOnly: true)
        guard case .closeNow(let failing, let error) = machine.close() else {
            Issue.record("a store that never ran closes at once")
            return
        }
        #expect(failing == [1, 2])
        #expect(error.code == .storeClosed)
        #expect(machine.start() == .closedBeforeStart)
        #expect(Self.refusal(machine.submit(3, isReadOnly: false)) == .storeClosed)
    }
}
