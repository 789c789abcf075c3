import Foundation
import HeraldCore

extension MessageProcessor {
    /// The shortest time between two renewals of a lock.
    static let minimumRenewalInterval = Duration.milliseconds(50)

    /// Runs `body` while renewing `lock` each time half of its remaining time has passed on the
    /// processor's clock (the clock the broker's locks expire by).
    ///
    /// - Parameters:
    ///   - lock: The lock as received (a message's lock expiry, or a session lock).
    ///   - lockedUntil: When a lock expires.
    ///   - renew: Renews a lock; a renewal that fails is tried again after the same interval (a
    ///     lost lock shows when the handling commits).
    func withLockRenewal<Lock: Sendable, T>(
        _ lock: Lock, lockedUntil: @escaping @Sendable (Lock) -> Date, renew: @escaping @Sendable (Lock) async throws -> Lock,
        _ body: () async throws -> T
    ) async throws -> T {
        let clock = self.clock
        // The schedule starts before `body` does, so time that passes while it runs counts.
        let first = RenewalSchedule(lockedUntil: lockedUntil(lock), clock: clock)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var current = lock
                var schedule = first
                while true {
                    try await clock.sleep(untilMonotonic: schedule.deadline)
                    if let renewed = await schedule.renew(clock: clock, lockedUntil: lockedUntil, { try await renew(current) }) {
                        current = renewed
                    }
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Runs `body` while the lock of a message (`token`, expiring at `lockedUntil`) is renewed:
    /// by the processor's ``LockRenewer`` when it runs, otherwise by a renewal task of its own.
    func renewingLock<T>(_ token: LockToken, lockedUntil: Date, _ body: () async throws -> T) async throws -> T {
        let broker = self.broker
        guard let id = self.lockRenewer.register(lockedUntil: lockedUntil, renew: { try await broker.renewLock(token) }) else {
            return try await self.withLockRenewal(lockedUntil, lockedUntil: { $0 }, renew: { _ in try await broker.renewLock(token) }, body)
        }
        defer { self.lockRenewer.unregister(id) }
        return try await body()
    }

    /// Half the time left until `lockedUntil`, and at least ``minimumRenewalInterval``.
    static func renewalInterval(until lockedUntil: Date, now: Date) -> Duration {
        max(.seconds(lockedUntil.timeIntervalSince(now) / 2), Self.minimumRenewalInterval)
    }
}

/// When a lock's next renewal is due, on the processor's clock (monotonic): once half of the time
/// the lock had left when it was taken or last renewed has passed (at least
/// ``MessageProcessor/minimumRenewalInterval``); after a renewal that failed, the same interval
/// again (a lost lock shows when the handling commits).
struct RenewalSchedule: Sendable {
    private(set) var interval: Duration
    private(set) var deadline: Duration

    /// The schedule of a lock that expires at `lockedUntil`, from now.
    init(lockedUntil: Date, clock: any BrokerClock) {
        self.interval = MessageProcessor.renewalInterval(until: lockedUntil, now: clock.now())
        self.deadline = clock.monotonicNow() + self.interval
    }

    /// Renews the lock with `renew` now and schedules the next renewal; returns the renewed lock,
    /// or `nil` when the renewal failed.
    mutating func renew<Lock>(clock: any BrokerClock, lockedUntil: (Lock) -> Date, _ renew: () async throws -> Lock) async -> Lock? {
        // Read before renewing: the new expiry is counted from no later than the renewal.
        let renewedAt = clock.monotonicNow()
        let wallRenewedAt = clock.now()
        let renewed = try? await renew()
        if let renewed { self.interval = MessageProcessor.renewalInterval(until: lockedUntil(renewed), now: wallRenewedAt) }
        self.deadline = renewedAt + self.interval
        return renewed
    }
}
