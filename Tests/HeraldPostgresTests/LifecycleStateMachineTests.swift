import HeraldCore
import Testing

@testable import HeraldPostgres

/// The broker's lifecycle decisions, without a database: waiters are numbers.
@Suite("LifecycleStateMachineTests")
struct LifecycleStateMachineTests {
    typealias Machine = LifecycleStateMachine<Int>

    private func expectResumed(_ action: Machine.WaitAction, _ waiter: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .resume(let resumed) = action else {
            Issue.record("expected the waiter to be resumed now, got \(action)", sourceLocation: sourceLocation)
            return
        }
        #expect(resumed == waiter, sourceLocation: sourceLocation)
    }

    private func expectSuspended(_ action: Machine.WaitAction, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .suspended = action else {
            Issue.record("expected the waiter to be queued, got \(action)", sourceLocation: sourceLocation)
            return
        }
    }

    private func expectFailure(
        _ action: Machine.EnterAction, _ code: HeraldError.Code, sourceLocation: SourceLocation = #_sourceLocation
    ) -> HeraldError? {
        guard case .fail(let error) = action else {
            Issue.record("expected \(code), got \(action)", sourceLocation: sourceLocation)
            return nil
        }
        #expect(error.code == code, sourceLocation: sourceLocation)
        return error
    }

    private func ready() -> Machine {
        var machine = Machine()
        guard case .start = machine.run(), case .ready(let resumed) = machine.migrated() else {
            Issue.record("the broker did not start")
            return machine
        }
        #expect(resumed.isEmpty)
        return machine
    }

    @Test func runStartsOnce() {
        var machine = Machine()
        #expect(machine.phase == .created)
        guard case .start = machine.run() else {
            Issue.record("the first run does not start")
            return
        }
        #expect(machine.phase == .starting(failing: false))
        guard case .alreadyRun = machine.run() else {
            Issue.record("a second run starts again")
            return
        }
    }

    @Test func operationsWaitForTheStartAndResumeWhenReady() {
        var machine = Machine()
        guard case .wait = machine.enter() else {
            Issue.record("an operation before run does not wait")
            return
        }
        self.expectSuspended(machine.waitToEnter(1))
        guard case .wait = machine.started() else {
            Issue.record("started() before run does not wait")
            return
        }
        self.expectSuspended(machine.waitForStart(2))
        _ = machine.run()
        self.expectSuspended(machine.waitToEnter(3))
        guard case .ready(let resumed) = machine.migrated() else {
            Issue.record("the migrations did not make it ready")
            return
        }
        #expect(resumed == [1, 2, 3])
        #expect(machine.phase == .ready)
        guard case .ready = machine.started() else {
            Issue.record("started() after the start waits")
            return
        }
        self.expectResumed(machine.waitForStart(4), 4)
        self.expectResumed(machine.waitToEnter(5), 5)
        guard case .run = machine.enter() else {
            Issue.record("an operation of a ready broker does not run")
            return
        }
        #expect(machine.inFlight == 1)
        #expect(machine.exit().isEmpty)
        #expect(machine.inFlight == 0)
    }

    @Test func anUnreachableDatabaseWhileStartingFailsOperationsAtOnce() {
        var machine = Machine()
        _ = machine.run()
        self.expectSuspended(machine.waitToEnter(1))
        self.expectSuspended(machine.waitForStart(2))
        guard case .retry(let resumed) = machine.startAttemptFailed(giveUp: nil) else {
            Issue.record("no retry")
            return
        }
        #expect(resumed == [1, 2], "the waiting operations fail at once, started() asks again")
        #expect(machine.phase == .starting(failing: true))
        _ = self.expectFailure(machine.enter(), .storeUnavailable)
        #expect(machine.inFlight == 0)
        self.expectResumed(machine.waitToEnter(3), 3)
        // started() keeps waiting for the outcome of the start.
        guard case .wait = machine.started() else {
            Issue.record("started() does not wait while the start is retried")
            return
        }
        self.expectSuspended(machine.waitForStart(4))
        guard case .retry(let again) = machine.startAttemptFailed(giveUp: nil) else {
            Issue.record("no second retry")
            return
        }
        #expect(again == [4])
        self.expectSuspended(machine.waitForStart(5))
        guard case .ready(let ready) = machine.migrated() else {
            Issue.record("the database came back, the broker is not ready")
            return
        }
        #expect(ready == [5])
        guard case .run = machine.enter() else {
            Issue.record("an operation after the recovery does not run")
            return
        }
    }

    @Test func aFailedStartFailsEveryWaiterAndLaterCall() {
        var machine = Machine()
        _ = machine.run()
        self.expectSuspended(machine.waitToEnter(1))
        self.expectSuspended(machine.waitForStart(2))
        let failure = HeraldError(.storeFailed, "cannot apply the migrations")
        guard case .fail(let thrown, let resumed) = machine.startAttemptFailed(giveUp: failure) else {
            Issue.record("the start did not fail")
            return
        }
        #expect(thrown.message == failure.message)
        #expect(resumed == [1, 2])
        #expect(machine.phase == .closed)
        #expect(machine.failure?.message == failure.message)
        #expect(self.expectFailure(machine.enter(), .storeFailed)?.message == failure.message)
        guard case .fail(let started) = machine.started() else {
            Issue.record("started() after a failed start does not fail")
            return
        }
        #expect(started.message == failure.message)
        self.expectResumed(machine.waitToEnter(3), 3)
        self.expectResumed(machine.waitForStart(4), 4)
        guard case .none = machine.close() else {
            Issue.record("closing a broker that failed to start drains again")
            return
        }
    }

    @Test func closeWhileStartingFailsTheWaitingOperations() {
        var machine = Machine()
        _ = machine.run()
        self.expectSuspended(machine.waitToEnter(1))
        self.expectSuspended(machine.waitForStart(2))
        guard case .drain(let releaseLocks) = machine.close() else {
            Issue.record("close does not drain")
            return
        }
        #expect(!releaseLocks, "a broker that never started holds no locks")
        _ = self.expectFailure(machine.enter(), .storeClosed)
        self.expectResumed(machine.waitForDrain(9), 9)
        #expect(machine.closed() == [1, 2])
        #expect(machine.phase == .closed)
        guard case .fail(let error) = machine.started() else {
            Issue.record("started() after close does not fail")
            return
        }
        #expect(error.code == .storeClosed)
        guard case .closedMeanwhile = machine.migrated() else {
            Issue.record("migrations finishing after close make it ready")
            return
        }
        guard case .closedMeanwhile = machine.startAttemptFailed(giveUp: nil) else {
            Issue.record("a failed attempt after close retries")
            return
        }
        #expect(machine.failure == nil)
    }

    @Test func closeWaitsForRunningOperationsAndRefusesNewOnes() {
        var machine = self.ready()
        guard case .run = machine.enter(), case .run = machine.enter() else {
            Issue.record("the operations do not run")
            return
        }
        guard case .drain(let releaseLocks) = machine.close() else {
            Issue.record("close does not drain")
            return
        }
        #expect(releaseLocks)
        #expect(machine.phase == .closing)
        _ = self.expectFailure(machine.enter(), .storeClosed)
        #expect(machine.inFlight == 2)
        self.expectSuspended(machine.waitForDrain(7))
        #expect(machine.exit().isEmpty, "one operation still runs")
        #expect(machine.exit() == [7], "the last operation resumes the close")
        #expect(machine.closed().isEmpty)
        guard case .none = machine.close() else {
            Issue.record("a second close drains again")
            return
        }
        _ = self.expectFailure(machine.enter(), .storeClosed)
    }

    @Test func closeBeforeRun() {
        var machine = Machine()
        guard case .drain(let releaseLocks) = machine.close() else {
            Issue.record("close does not drain")
            return
        }
        #expect(!releaseLocks)
        self.expectResumed(machine.waitForDrain(1), 1)
        #expect(machine.closed().isEmpty)
        guard case .alreadyRun = machine.run() else {
            Issue.record("run after close starts")
            return
        }
    }

    @Test func failStopKeepsTheFirstFailureAndReleasesNoLocks() {
        var machine = self.ready()
        guard case .run = machine.enter() else {
            Issue.record("the operation does not run")
            return
        }
        let first = HeraldError(.storeFailed, "first")
        guard case .logAndReport(let logged) = machine.failStop(first) else {
            Issue.record("the first failure is not logged")
            return
        }
        #expect(logged.message == "first")
        guard case .report(let reported) = machine.failStop(HeraldError(.storeFailed, "second")) else {
            Issue.record("a second failure is logged again")
            return
        }
        #expect(reported.message == "first")
        #expect(self.expectFailure(machine.enter(), .storeFailed)?.message == "first")
        #expect(machine.exit().isEmpty)
        guard case .drain(let releaseLocks) = machine.close() else {
            Issue.record("close does not drain")
            return
        }
        #expect(!releaseLocks, "a failed broker does not touch the database on close")
        #expect(machine.closed().isEmpty)
        #expect(self.expectFailure(machine.enter(), .storeFailed)?.message == "first", "the failure outlives the close")
    }
}
