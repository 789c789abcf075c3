import Foundation
import HeraldCore
import Synchronization

/// A queue, topic or subscription as a broker caches it. Ids are never reused; a change of options
/// or rules bumps the topic row's generation (which the subscriptions' cache checks) and is
/// announced to the schema's other brokers, which forget the entity.
struct CachedEntity: Sendable, StoredEntity {
    let id: Int64
    let path: EntityPath
    let options: EntityOptions
    let rules: [SubscriptionRule]
    let topicId: Int64?

    /// The key long-polling receivers of this entity (or of its dead-letter queue) wait on.
    func waitKey(deadLetter: Bool) -> String { deadLetter ? "\(self.id)d" : "\(self.id)" }
}

/// The entities this broker has resolved, by key, and each topic's subscriptions with the
/// generation of the topic row they were read at.
final class EntityCache: Sendable {
    private struct State {
        var byKey: [String: CachedEntity] = [:]
        var subscriptions: [Int64: (generation: Int64, records: [CachedEntity])] = [:]
    }

    private let state = Mutex(State())

    func entity(_ key: String) -> CachedEntity? { self.state.withLock { $0.byKey[key] } }

    func store(_ record: CachedEntity) { self.state.withLock { $0.byKey[record.path.entityKey] = record } }

    func forget(_ key: String) {
        self.state.withLock { state in
            if let record = state.byKey.removeValue(forKey: key) { state.subscriptions[record.id] = nil }
        }
    }

    func subscriptions(of topicId: Int64, generation: Int64) -> [CachedEntity]? {
        self.state.withLock { state in
            guard let cached = state.subscriptions[topicId], cached.generation == generation else { return nil }
            return cached.records
        }
    }

    /// The subscriptions of a topic as last read, and the topic's generation then; `nil` when
    /// none were read. They may be stale: a caller checks the generation under the topic's lock.
    func lastSubscriptions(of topicId: Int64) -> (generation: Int64, records: [CachedEntity])? {
        self.state.withLock { $0.subscriptions[topicId] }
    }

    func storeSubscriptions(_ records: [CachedEntity], of topicId: Int64, generation: Int64) {
        self.state.withLock { $0.subscriptions[topicId] = (generation, records) }
    }

    func forgetAll() { self.state.withLock { $0 = State() } }
}

/// The locks this broker handed out and that are not settled yet, so that ``PostgresBroker/close()``
/// can release them at once instead of letting them expire (a restarted process gets its
/// messages back immediately). Locks of a process that crashes expire by time.
final class LockRegistry: Sendable {
    struct Group: Sendable {
        var entityId: Int64
        var deadLetter: Bool
        var sequenceNumbers: Set<Int64>
        var lockedUntil: Int64
    }

    struct Session: Sendable {
        var entityId: Int64
        var sessionId: String
    }

    private struct State {
        var groups: [UUID: Group] = [:]
        var sessions: [UUID: Session] = [:]
        var addsSincePrune = 0
    }

    private let state = Mutex(State())

    func add(nonce: UUID, entityId: Int64, deadLetter: Bool, sequenceNumbers: [Int64], lockedUntil: Int64, lockNow: Int64) {
        guard !sequenceNumbers.isEmpty else { return }
        self.state.withLock { state in
            state.groups[nonce] = Group(entityId: entityId, deadLetter: deadLetter, sequenceNumbers: Set(sequenceNumbers), lockedUntil: lockedUntil)
            state.addsSincePrune += 1
            if state.addsSincePrune >= 1024 {
                state.addsSincePrune = 0
                state.groups = state.groups.filter { $0.value.lockedUntil > lockNow }
            }
        }
    }

    func settled(_ tokens: [LockToken]) {
        self.state.withLock { state in
            for token in tokens {
                state.groups[token.nonce]?.sequenceNumbers.remove(token.sequenceNumber)
                if state.groups[token.nonce]?.sequenceNumbers.isEmpty == true { state.groups[token.nonce] = nil }
            }
        }
    }

    func renewed(_ token: LockToken, until: Int64) {
        self.state.withLock { state in
            if let group = state.groups[token.nonce], group.lockedUntil < until { state.groups[token.nonce]?.lockedUntil = until }
        }
    }

    func accepted(_ lock: SessionLock, entityId: Int64) {
        self.state.withLock { $0.sessions[lock.nonce] = Session(entityId: entityId, sessionId: lock.sessionId) }
    }

    func released(_ lock: SessionLock) {
        _ = self.state.withLock { $0.sessions.removeValue(forKey: lock.nonce) }
    }

    /// Every lock still registered, emptying the registry.
    func drain() -> (groups: [(UUID, Group)], sessions: [(UUID, Session)]) {
        self.state.withLock { state in
            defer { state = State() }
            return (state.groups.map { ($0.key, $0.value) }, state.sessions.map { ($0.key, $0.value) })
        }
    }
}
