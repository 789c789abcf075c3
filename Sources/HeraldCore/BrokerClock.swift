public import Foundation
import Synchronization

/// The source of time for a broker.
///
/// Two readings, because they serve different purposes:
/// - ``now()`` is wall-clock time. It stamps messages and decides what must survive a restart:
///   scheduled enqueue times, time-to-live and duplicate-detection windows.
/// - ``monotonicNow()`` never jumps. Locks and session locks expire by it, so a wall-clock jump
///   neither steals a lock early nor keeps one forever.
///
/// Tests replace the clock with a ``ManualBrokerClock`` to exercise expiry without sleeping.
public protocol BrokerClock: Sendable {
    /// The current wall-clock time.
    func now() -> Date
    /// The time elapsed since an arbitrary fixed origin, never decreasing within a process.
    func monotonicNow() -> Duration
    /// Waits until ``monotonicNow()`` reaches `deadline`.
    ///
    /// The default sleeps in real time for the difference, which suits any clock that follows
    /// real time; a clock that moves otherwise (``ManualBrokerClock``) wakes its sleepers itself.
    ///
    /// - Throws: `CancellationError` when the task is cancelled before the deadline.
    func sleep(untilMonotonic deadline: Duration) async throws
}

extension BrokerClock {
    /// Sleeps in real time until ``monotonicNow()`` reaches `deadline`.
    public func sleep(untilMonotonic deadline: Duration) async throws {
        let remaining = deadline - self.monotonicNow()
        if remaining > .zero { try await Task.sleep(for: remaining) }
        try Task.checkCancellation()
    }
}

/// The real clock: `Date()` and the system's continuous clock.
public struct SystemBrokerClock: BrokerClock {
    private static let origin = ContinuousClock.now

    /// Creates the system clock.
    public init() {}

    public func now() -> Date { Date() }

    public func monotonicNow() -> Duration { ContinuousClock.now - Self.origin }
}

/// A clock that moves only when told to, for tests.
///
/// ``advance(by:)`` moves both readings and wakes the sleepers it passes;
/// ``jumpWallClock(by:)`` moves only the wall clock, to check that a wall-clock jump does not
/// change lock expiry.
public final class ManualBrokerClock: BrokerClock {
    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var wall: Date
        var monotonic: Duration
        var sleepers: [UInt64: Sleeper] = [:]
        var nextSleeperId: UInt64 = 0
    }

    private let state: Mutex<State>

    /// Creates a clock that starts at `start` (wall) and zero (monotonic).
    public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.state = Mutex(State(wall: start, monotonic: .zero))
    }

    public func now() -> Date { self.state.withLock { $0.wall } }

    public func monotonicNow() -> Duration { self.state.withLock { $0.monotonic } }

    /// Moves both the wall clock and the monotonic clock forward, and wakes the sleepers whose
    /// deadline it reaches.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "a clock only moves forward")
        let due = self.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.wall = state.wall.addingTimeInterval(duration.timeInterval)
            state.monotonic += duration
            let monotonic = state.monotonic
            let ids = state.sleepers.filter { $0.value.deadline <= monotonic }.keys
            return ids.compactMap { state.sleepers.removeValue(forKey: $0)?.continuation }
        }
        for continuation in due { continuation.resume() }
    }

    /// Waits until ``advance(by:)`` moves the monotonic reading to `deadline`.
    public func sleep(untilMonotonic deadline: Duration) async throws {
        let id = self.state.withLock { state in
            state.nextSleeperId &+= 1
            return state.nextSleeperId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Cancellation sets the flag before its handler runs: checked under the lock, a
                // cancellation that came first is never missed.
                let answer: Result<Void, any Error>? = self.state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.monotonic >= deadline { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let answer { continuation.resume(with: answer) }
            }
        } onCancel: {
            let continuation = self.state.withLock { $0.sleepers.removeValue(forKey: id)?.continuation }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Moves only the wall clock, forward or backward, as an operator or NTP would.
    public func jumpWallClock(by duration: Duration) {
        self.state.withLock { $0.wall = $0.wall.addingTimeInterval(duration.timeInterval) }
    }
}

extension Duration {
    /// The duration in seconds, as Foundation's `TimeInterval`.
    package var timeInterval: TimeInterval {
        let (seconds, attoseconds) = self.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, rounded down; `Int64.max` or `.min` beyond them.
    package var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return Self.saturating(seconds, times: 1000, plus: attoseconds / 1_000_000_000_000_000)
    }

    /// The duration in whole nanoseconds, rounded down; `Int64.max` or `.min` beyond them.
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return Self.saturating(seconds, times: 1_000_000_000, plus: attoseconds / 1_000_000_000)
    }

    /// `value * factor + rest`, held at `Int64`'s bounds rather than trapping: durations can come
    /// from clients, and no conversion of one may stop the process.
    private static func saturating(_ value: Int64, times factor: Int64, plus rest: Int64) -> Int64 {
        let (product, overflowed) = value.multipliedReportingOverflow(by: factor)
        guard !overflowed else { return value < 0 ? .min : .max }
        let (sum, overflowedSum) = product.addingReportingOverflow(rest)
        guard !overflowedSum else { return rest < 0 ? .min : .max }
        return sum
    }
}

extension Date {
    /// Milliseconds since 1970, the resolution stores keep wall-clock times in; held at `Int64`'s
    /// bounds for dates beyond them (and 0 for a NaN date) rather than trapping.
    package var millisecondsSince1970: Int64 {
        let milliseconds = (self.timeIntervalSince1970 * 1000).rounded(.down)
        if milliseconds.isNaN { return 0 }
        if milliseconds >= 9_223_372_036_854_775_807.0 { return .max }
        if milliseconds <= -9_223_372_036_854_775_808.0 { return .min }
        return Int64(milliseconds)
    }

    /// The date `milliseconds` after 1970.
    package init(millisecondsSince1970 milliseconds: Int64) {
        self.init(timeIntervalSince1970: TimeInterval(milliseconds) / 1000)
    }
}
