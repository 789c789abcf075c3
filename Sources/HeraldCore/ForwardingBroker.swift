package import Foundation

/// A broker that hands every operation to another one: a wrapper that watches or disturbs a
/// few operations (the demo's chaos broker, the bench's handling recorder) implements only those
/// and forwards the rest through these defaults.
package protocol ForwardingBroker: TransactionalBroker {
    /// The broker that does the work.
    var base: any TransactionalBroker { get }
}

extension ForwardingBroker {
    package func createQueue(_ name: String, options: EntityOptions) async throws { try await self.base.createQueue(name, options: options) }
    package func deleteQueue(_ name: String) async throws { try await self.base.deleteQueue(name) }
    package func listQueues() async throws -> [EntityDescription] { try await self.base.listQueues() }
    package func createTopic(_ name: String, options: EntityOptions) async throws { try await self.base.createTopic(name, options: options) }
    package func deleteTopic(_ name: String) async throws { try await self.base.deleteTopic(name) }
    package func listTopics() async throws -> [EntityDescription] { try await self.base.listTopics() }
    package func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws {
        try await self.base.createSubscription(name, topic: topic, options: options, filter: filter)
    }
    package func deleteSubscription(_ name: String, topic: String) async throws { try await self.base.deleteSubscription(name, topic: topic) }
    package func listSubscriptions(topic: String) async throws -> [SubscriptionDescription] { try await self.base.listSubscriptions(topic: topic) }
    package func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] { try await self.base.send(messages, to: entity) }
    package func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws {
        try await self.base.cancelScheduled(sequenceNumbers, in: entity)
    }
    package func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.base.receive(from: entity, maxCount: maxCount, maxWaitTime: maxWaitTime, mode: mode)
    }
    package func receive(
        from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode
    ) async throws -> [ReceivedMessage] {
        try await self.base.receive(from: entity, maxCount: maxCount, maxBytes: maxBytes, maxWaitTime: maxWaitTime, mode: mode)
    }
    package func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        try await self.base.receiveDeferred(from: entity, sequenceNumbers: sequenceNumbers)
    }
    package func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try await self.base.peek(entity, fromSequenceNumber: fromSequenceNumber, maxCount: maxCount)
    }
    @discardableResult
    package func complete(_ token: LockToken) async throws -> SettlementOutcome { try await self.base.complete(token) }
    @discardableResult
    package func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome { try await self.base.complete(tokens) }
    @discardableResult
    package func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome { try await self.base.abandon(token, delay: delay) }
    package func release(_ token: LockToken) async throws -> SettlementOutcome { try await self.base.release(token) }
    @discardableResult
    package func `defer`(_ token: LockToken) async throws -> SettlementOutcome { try await self.base.defer(token) }
    @discardableResult
    package func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome {
        try await self.base.deadLetter(token, reason: reason, description: description)
    }
    package func renewLock(_ token: LockToken) async throws -> Date { try await self.base.renewLock(token) }
    package func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock {
        try await self.base.acceptSession(on: entity, sessionId: sessionId, maxWaitTime: maxWaitTime)
    }
    package func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage] {
        try await self.base.receive(from: session, maxCount: maxCount, maxWaitTime: maxWaitTime)
    }
    package func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        try await self.base.receiveDeferred(from: session, sequenceNumbers: sequenceNumbers)
    }
    package func sessionState(_ session: SessionLock) async throws -> Data? { try await self.base.sessionState(session) }
    package func setSessionState(_ state: Data?, for session: SessionLock) async throws { try await self.base.setSessionState(state, for: session) }
    package func renewSessionLock(_ session: SessionLock) async throws -> SessionLock { try await self.base.renewSessionLock(session) }
    package func releaseSession(_ session: SessionLock) async throws { try await self.base.releaseSession(session) }
    @discardableResult
    package func resubmit(_ token: LockToken) async throws -> SettlementOutcome { try await self.base.resubmit(token) }
    package func counts(of entity: EntityPath) async throws -> EntityCounts { try await self.base.counts(of: entity) }
    package func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt { try await self.base.commit(transaction) }
    package func document(_ key: String, in collection: String) async throws -> VersionedDocument? {
        try await self.base.document(key, in: collection)
    }
    package func documents(in collection: String) async throws -> [String: VersionedDocument] { try await self.base.documents(in: collection) }
    package func inboxContains(_ entry: InboxEntry) async throws -> Bool { try await self.base.inboxContains(entry) }
    package func inboxEntries(among entries: [InboxEntry]) async throws -> Set<InboxEntry> { try await self.base.inboxEntries(among: entries) }
    package func readStream(_ stream: String, from version: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try await self.base.readStream(stream, from: version, maxCount: maxCount)
    }
    package func readAll(from position: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try await self.base.readAll(from: position, maxCount: maxCount)
    }
}
