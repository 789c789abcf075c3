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
/// ``advance(by:)`` moves both readings; ``jumpWallClock(by:)`` moves only the wall clock, to
/// check that a wall-clock jump does not change lock expiry.
public final class ManualBrokerClock: BrokerClock {
    private struct State {
        var wall: Date
        var monotonic: Duration
    }

    private let state: Mutex<State>

    /// Creates a clock that starts at `start` (wall) and zero (monotonic).
    public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.state = Mutex(State(wall: start, monotonic: .zero))
    }

    public func now() -> Date { self.state.withLock { $0.wall } }

    public func monotonicNow() -> Duration { self.state.withLock { $0.monotonic } }

    /// Moves both the wall clock and the monotonic clock forward.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "a clock only moves forward")
        self.state.withLock {
            $0.wall = $0.wall.addingTimeInterval(duration.timeInterval)
            $0.monotonic += duration
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
