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
        // The first deadline is set before `body` starts, so time that passes while it runs counts.
        let firstInterval = Self.renewalInterval(until: lockedUntil(lock), now: clock.now())
        let firstDeadline = clock.monotonicNow() + firstInterval
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var current = lock
                var interval = firstInterval
                var deadline = firstDeadline
                while true {
                    try await clock.sleep(untilMonotonic: deadline)
                    // Read before renewing: the new expiry is counted from no later than the renewal.
                    let renewedAt = clock.monotonicNow()
                    let wallRenewedAt = clock.now()
                    if let renewed = try? await renew(current) {
                        current = renewed
                        interval = Self.renewalInterval(until: lockedUntil(renewed), now: wallRenewedAt)
                    }
                    deadline = renewedAt + interval
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
