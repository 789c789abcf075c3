import HeraldCore
import Synchronization
import Testing

/// ``ManualBrokerClock`` sleepers wake when the clock is advanced to their deadline, not before,
/// and a cancelled sleeper stops at once. A sleeper that never wakes fails its test at the time
/// limit instead of hanging the run.
@Suite(.timeLimit(.minutes(1))) struct ManualClockSleepTests {
    @Test func advancingToTheDeadlineWakesTheSleeper() async throws {
        let clock = ManualBrokerClock()
        let woke = Atomic(false)
        let sleeper = Task {
            try await clock.sleep(untilMonotonic: .seconds(10))
            woke.store(true, ordering: .sequentiallyConsistent)
        }
        clock.advance(by: .seconds(9))
        try await Task.sleep(for: .milliseconds(50))
        let wokeEarly = woke.load(ordering: .sequentiallyConsistent)
        #expect(!wokeEarly, "asleep until the deadline")
        clock.advance(by: .seconds(1))
        try await sleeper.value
        let wokeAtDeadline = woke.load(ordering: .sequentiallyConsistent)
        #expect(wokeAtDeadline)
    }

    @Test func aDeadlineAlreadyPassedReturnsAtOnce() async throws {
        let clock = ManualBrokerClock()
        clock.advance(by: .seconds(5))
        try await clock.sleep(untilMonotonic: .seconds(5))
    }

    @Test func cancellationEndsTheSleep() async {
        let clock = ManualBrokerClock()
        let sleeper = Task { try await clock.sleep(untilMonotonic: .seconds(60)) }
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
    }
}
