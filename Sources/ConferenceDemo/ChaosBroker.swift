import Foundation
import HeraldCore
import Synchronization

/// A store that forwards everything to another, except that it can hold back the lock renewals
/// of chosen deliveries, as when the process that holds them is frozen: their locks expire and
/// the messages are delivered again.
final class ChaosBroker: ForwardingBroker {
    let base: any TransactionalBroker
    private let frozen = Mutex<Set<LockToken>>([])

    init(base: any TransactionalBroker) {
        self.base = base
    }

    /// Holds back the renewals of `token`'s lock.
    func freeze(_ token: LockToken) {
        self.frozen.withLock { _ = $0.insert(token) }
    }

    /// Lets the renewals of `token`'s lock through again.
    func thaw(_ token: LockToken) {
        self.frozen.withLock { _ = $0.remove(token) }
    }

    func renewLock(_ token: LockToken) async throws -> Date {
        if self.frozen.withLock({ $0.contains(token) }) {
            throw InjectedCrash(description: "the lock renewal of \(token) did not get through: the process is frozen")
        }
        return try await self.base.renewLock(token)
    }
}
