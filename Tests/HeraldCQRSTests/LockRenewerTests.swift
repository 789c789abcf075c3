import Foundation
import HeraldCore
import Synchronization
import Testing

@testable import HeraldCQRS

/// The processor's one renewal loop, on a manual clock: each registered lock is renewed when half
/// of its remaining time has passed, a lock registered while the loop sleeps longer wakes it, and
/// an unregistered lock is left alone.
@Suite struct LockRenewerTests {
    /// Renewals of each lock, and what each renewal gives as the new expiry.
    private final class Locks: Sendable {
        let clock: ManualBrokerClock
        let duration: Duration
        private let renewals = Mutex<[String: Int]>([:])

        init(clock: ManualBrokerClock, duration: Duration) {
            self.clock = clock
            self.duration = duration
        }

        func renew(_ name: String) -> LockRenewer.Renew {
            { [self] in
                self.renewals.withLock { $0[name, default: 0] += 1 }
                return self.clock.now().addingTimeInterval(self.duration.timeInterval)
            }
        }

        func count(_ name: String) -> Int { self.renewals.withLock { $0[name] ?? 0 } }
    }

    @Test func locksAreRenewedAtHalfTheirTimeAndNotAfterUnregistering() async throws {
        let clock = ManualBrokerClock()
        let renewer = LockRenewer(clock: clock)
        let locks = Locks(clock: clock, duration: .seconds(60))
        #expect(renewer.register(lockedUntil: clock.now().addingTimeInterval(60), renew: locks.renew("none")) == nil, "no loop runs: the caller renews")

        let loop = Task { await renewer.run() }
        defer { loop.cancel() }
        let long = try await register(renewer, "long", seconds: 60, locks)
        clock.advance(by: .seconds(29))
        try await Task.sleep(for: .milliseconds(50))
        #expect(locks.count("long") == 0, "not due before half of its 60 s")

        // A lock due sooner than the loop's sleep (until 30 s) wakes it: 1 s left, renewed after 0.5 s.
        let short = try await register(renewer, "short", seconds: 1, locks)
        clock.advance(by: .milliseconds(500))
        try await waitUntil("the 1 s lock is renewed after 0.5 s") { locks.count("short") == 1 }
        #expect(locks.count("long") == 0)
        clock.advance(by: .milliseconds(500))
        try await waitUntil("the 60 s lock is renewed after 30 s") { locks.count("long") == 1 }

        renewer.unregister(short)
        for renewals in 2...5 {
            clock.advance(by: .seconds(30))
            try await waitUntil("the 60 s lock is renewed every 30 s") { locks.count("long") == renewals }
        }
        #expect(locks.count("short") == 1, "an unregistered lock is not renewed")
        renewer.unregister(long)
    }

    @Test func aLockRenewsWhileItsHandlerRunsInAProcessorsLoop() async throws {
        let clock = ManualBrokerClock()
        let renewer = LockRenewer(clock: clock)
        let locks = Locks(clock: clock, duration: .seconds(10))
        let loop = Task { await renewer.run() }
        let id = try await register(renewer, "lock", seconds: 10, locks)
        for expected in 1...3 {
            clock.advance(by: .seconds(5))
            try await waitUntil("renewal \(expected)") { locks.count("lock") == expected }
        }
        renewer.unregister(id)
        // Once the loop ends, registration leaves the renewal to the caller again.
        loop.cancel()
        await loop.value
        #expect(renewer.register(lockedUntil: clock.now().addingTimeInterval(10), renew: locks.renew("late")) == nil)
    }

    /// Registers `name` once the loop has started (registration before that returns `nil`).
    private func register(_ renewer: LockRenewer, _ name: String, seconds: Double, _ locks: Locks) async throws -> UInt64 {
        var id: UInt64?
        try await waitUntil("the loop runs") {
            id = renewer.register(lockedUntil: locks.clock.now().addingTimeInterval(seconds), renew: locks.renew(name))
            return id != nil
        }
        return try #require(id)
    }
}
