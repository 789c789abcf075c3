import Foundation
import HeraldCore
import Synchronization

/// A store that forwards everything to another, except that it can hold back the lock renewals
/// of chosen deliveries, as when the process that holds them is frozen: their locks expire and
/// the messages are delivered again.
final class ChaosBroker: TransactionalBroker {
    private let base: any TransactionalBroker
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

    // MARK: Forwarded

    func createQueue(_ name: String, options: EntityOptions) async throws { try await self.base.createQueue(name, options: options) }
    func deleteQueue(_ name: String) async throws { try await self.base.deleteQueue(name) }
    func listQueues() async throws -> [EntityDescription] { try await self.base.listQueues() }
    func createTopic(_ name: String, options: EntityOptions) async throws { try await self.base.createTopic(name, options: options) }
    func deleteTopic(_ name: String) async throws { try await self.base.deleteTopic(name) }
    func listTopics() async throws -> [EntityDescription] { try await self.base.listTopics() }
    func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws {
        try await self.base.createSubscription(name, topic: topic, options: options, filter: filter)
    }
    func deleteSubscription(_ name: String, topic: String) async throws { try await self.base.deleteSubscription(name, topic: topic) }
    func listSubscriptions(topic: String) async throws -> [SubscriptionDescription] { try await self.base.listSubscriptions(topic: topic) }
    func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] { try await self.base.send(messages, to: entity) }
    func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws {
        try await self.base.cancelScheduled(sequenceNumbers, in: entity)
    }
    func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.base.receive(from: entity, maxCount: maxCount, maxWaitTime: maxWaitTime, mode: mode)
    }
    func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        try await self.base.receiveDeferred(from: entity, sequenceNumbers: sequenceNumbers)
    }
    func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try await self.base.peek(entity, fromSequenceNumber: fromSequenceNumber, maxCount: maxCount)
    }
    @discardableResult
    func complete(_ token: LockToken) async throws -> SettlementOutcome { try await self.base.complete(token) }
    @discardableResult
    func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome { try await self.base.complete(tokens) }
    @discardableResult
    func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome { try await self.base.abandon(token, delay: delay) }
    @discardableResult
    func `defer`(_ token: LockToken) async throws -> SettlementOutcome { try await self.base.defer(token) }
    @discardableResult
    func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome {
        try await self.base.deadLetter(token, reason: reason, description: description)
    }
    func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock {
        try await self.base.acceptSession(on: entity, sessionId: sessionId, maxWaitTime: maxWaitTime)
    }
    func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage] {
        try await self.base.receive(from: session, maxCount: maxCount, maxWaitTime: maxWaitTime)
    }
    func sessionState(_ session: SessionLock) async throws -> Data? { try await self.base.sessionState(session) }
    func setSessionState(_ state: Data?, for session: SessionLock) async throws { try await self.base.setSessionState(state, for: session) }
    func renewSessionLock(_ session: SessionLock) async throws -> SessionLock { try await self.base.renewSessionLock(session) }
    func releaseSession(_ session: SessionLock) async throws { try await self.base.releaseSession(session) }
    @discardableResult
    func resubmit(_ token: LockToken) async throws -> SettlementOutcome { try await self.base.resubmit(token) }
    func counts(of entity: EntityPath) async throws -> EntityCounts { try await self.base.counts(of: entity) }
    func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt { try await self.base.commit(transaction) }
    func document(_ key: String, in collection: String) async throws -> VersionedDocument? { try await self.base.document(key, in: collection) }
    func documents(in collection: String) async throws -> [String: VersionedDocument] { try await self.base.documents(in: collection) }
    func inboxContains(_ entry: InboxEntry) async throws -> Bool { try await self.base.inboxContains(entry) }
    func readStream(_ stream: String, from version: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try await self.base.readStream(stream, from: version, maxCount: maxCount)
    }
    func readAll(from position: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try await self.base.readAll(from: position, maxCount: maxCount)
    }
}
