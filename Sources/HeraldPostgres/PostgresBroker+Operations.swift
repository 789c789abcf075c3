public import Foundation
public import HeraldCore

extension PostgresBroker {
    // MARK: Entities

    public func createQueue(_ name: String, options: EntityOptions) async throws {
        try await self.perform("createQueue") { try await $0.createEntity(.queue(name), options: options, filter: nil) }
    }

    public func deleteQueue(_ name: String) async throws {
        try await self.perform("deleteQueue") { try await $0.deleteEntity(.queue(name)) }
    }

    public func listQueues() async throws -> [EntityDescription] {
        try await self.perform("listQueues", write: false, transaction: false) {
            try await $0.listEntities(kind: .queue, topic: nil).map { EntityDescription(path: $0.path, options: $0.options) }
        }
    }

    public func createTopic(_ name: String, options: EntityOptions) async throws {
        try await self.perform("createTopic") { try await $0.createEntity(.topic(name), options: options, filter: nil) }
    }

    public func deleteTopic(_ name: String) async throws {
        try await self.perform("deleteTopic") { try await $0.deleteEntity(.topic(name)) }
    }

    public func listTopics() async throws -> [EntityDescription] {
        try await self.perform("listTopics", write: false, transaction: false) {
            try await $0.listEntities(kind: .topic, topic: nil).map { EntityDescription(path: $0.path, options: $0.options) }
        }
    }

    public func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws {
        try await self.perform("createSubscription") { try await $0.createEntity(.subscription(name, of: topic), options: options, filter: filter) }
    }

    public func deleteSubscription(_ name: String, topic: String) async throws {
        try await self.perform("deleteSubscription") { try await $0.deleteEntity(.subscription(name, of: topic)) }
    }

    public func listSubscriptions(topic: String) async throws -> [SubscriptionDescription] {
        try await self.perform("listSubscriptions", write: false, transaction: false) { try await $0.listEntities(kind: .subscription, topic: topic) }
    }

    // MARK: Sending

    public func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] {
        if messages.isEmpty { return [] }
        let receipts = try await MessagingTracing.send(messages, to: entity, tracer: self.tracer) { try await self.sendUntraced($0, to: entity) }
        self.metrics.sent(receipts, to: entity)
        return receipts
    }

    private func sendUntraced(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] {
        let plan: SendPlan
        if let cached = try Store.planSend(messages, to: entity, cache: self.cache) {
            plan = cached
        } else {
            plan = try await self.perform("send", write: false, transaction: false) { try await $0.planSend(messages, to: entity) }
        }
        let outcome: SendOutcome
        if plan.isSimple {
            outcome = try await self.combiner.send(plan) { plans in
                try await self.perform("send", transaction: false) { try await $0.sendSimple(plans) }
            }
        } else {
            outcome = try await self.perform("send") { try await $0.send(messages, to: entity, endsTransaction: true) }
        }
        self.announce(outcome.wake)
        self.statistics.inserted(outcome.receipts.count)
        return outcome.receipts
    }

    public func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws {
        try HeraldLimits.checkCancelCount(sequenceNumbers)
        try await self.perform("cancelScheduled") { try await $0.cancelScheduled(sequenceNumbers, in: entity) }
    }

    // MARK: Receiving

    /// Runs `attempt` until `isDone` accepts its result or `maxWaitTime` passes, sleeping between
    /// attempts until a commit announces `key` (or ``Configuration/pollInterval`` passes).
    private func waiting<T>(
        for key: @escaping () async throws -> String, maxWaitTime: Duration, until isDone: (T) -> Bool, _ attempt: () async throws -> T
    ) async throws -> T {
        try await self.waiters.poll(
            key: key, maxWaitTime: maxWaitTime, pollInterval: self.configuration.pollInterval, until: isDone, attempt
        )
    }

    public func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxBytes: .max, maxWaitTime: maxWaitTime, mode: mode)
    }

    public func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: entity, tracer: self.tracer) {
            try await self.receiveUntraced(from: entity, maxCount: maxCount, maxBytes: maxBytes, maxWaitTime: maxWaitTime, mode: mode)
        }
        self.metrics.consumed(messages, from: entity)
        return messages
    }

    private func receiveUntraced(
        from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode
    ) async throws -> [ReceivedMessage] {
        try await self.waiting(
            for: { try await self.perform("receive", write: false, transaction: false) { try await $0.waitKey(entity) } },
            maxWaitTime: maxWaitTime, until: { !$0.isEmpty }
        ) {
            let outcome = try await self.perform("receive", transaction: false) {
                try await $0.receive(from: entity, maxCount: maxCount, maxBytes: maxBytes, mode: mode)
            }
            self.announce(outcome.wake)
            return outcome.messages
        }
    }

    public func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: entity, tracer: self.tracer) {
            let outcome = try await self.perform("receiveDeferred") { try await $0.receiveDeferred(from: entity, sequenceNumbers: sequenceNumbers) }
            self.announce(outcome.wake)
            return outcome.messages
        }
        self.metrics.consumed(messages, from: entity)
        return messages
    }

    public func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try await self.perform("peek", write: false, transaction: false) { try await $0.peek(entity, from: fromSequenceNumber, maxCount: maxCount) }
    }

    // MARK: Settlement

    @discardableResult
    public func complete(_ token: LockToken) async throws -> SettlementOutcome {
        try await MessagingTracing.settle("complete", token, tracer: self.tracer) { try await self.complete([token]) }
    }

    @discardableResult
    public func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome {
        if tokens.isEmpty { return .settled }
        let outcome = try await self.completeUntraced(tokens)
        for token in tokens { self.metrics.settled(outcome, .completed, token.entity) }
        return outcome
    }

    private func completeUntraced(_ tokens: [LockToken]) async throws -> SettlementOutcome {
        let fast: Bool
        if let entity = self.cache.entity(tokens[0].entity.entityKey), tokens[0].entity.kind == entity.path.kind {
            fast = Store.canCompleteInOneStatement(tokens, entity: entity)
        } else {
            fast = try await self.perform("complete", write: false, transaction: false) { try await $0.canCompleteInOneStatement(tokens) }
        }
        var outcome = SettlementOutcome.settled
        if fast {
            do {
                try await self.perform("complete", transaction: false) { try await $0.completeInOneStatement(tokens) }
            } catch let error as HeraldError where error.code == .lockLost {
                // Perhaps a retry of a complete that committed: the transaction finds out.
                outcome = try await self.perform("complete") { try await $0.complete(tokens) }
            }
        } else {
            outcome = try await self.perform("complete") { try await $0.complete(tokens) }
        }
        self.locks.settled(tokens)
        return outcome
    }

    @discardableResult
    public func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome {
        let (outcome, wake) = try await MessagingTracing.settle("abandon", token, tracer: self.tracer) {
            try await self.perform("abandon") { try await $0.abandon(token, delay: delay) }
        }
        self.locks.settled([token])
        self.announce(wake)
        self.metrics.settled(outcome, .abandoned, token.entity)
        return outcome
    }

    @discardableResult
    public func release(_ token: LockToken) async throws -> SettlementOutcome {
        let (outcome, wake) = try await MessagingTracing.settle("release", token, tracer: self.tracer) {
            try await self.perform("release") { try await $0.release(token) }
        }
        self.locks.settled([token])
        self.announce(wake)
        self.metrics.settled(outcome, .abandoned, token.entity)
        return outcome
    }

    @discardableResult
    public func `defer`(_ token: LockToken) async throws -> SettlementOutcome {
        let outcome = try await MessagingTracing.settle("defer", token, tracer: self.tracer) {
            try await self.perform("defer") { try await $0.deferMessage(token) }
        }
        self.locks.settled([token])
        self.metrics.settled(outcome, .deferred, token.entity)
        return outcome
    }

    @discardableResult
    public func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome {
        let (outcome, wake) = try await MessagingTracing.settle("dead_letter", token, tracer: self.tracer) {
            try await self.perform("deadLetter") { try await $0.deadLetter(token, reason: reason, description: description) }
        }
        self.locks.settled([token])
        self.announce(wake)
        self.metrics.settled(outcome, .deadLettered, token.entity)
        return outcome
    }

    public func renewLock(_ token: LockToken) async throws -> Date {
        let (until, display) = try await self.perform("renewLock") { try await $0.renewLock(token) }
        self.locks.renewed(token, until: until)
        return display
    }

    // MARK: Sessions

    public func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock {
        let accepted = try await self.waiting(
            for: { try await self.perform("acceptSession", write: false, transaction: false) { try await $0.waitKey(entity) } },
            maxWaitTime: maxWaitTime, until: { $0 != nil }
        ) {
            try await self.perform("acceptSession") { try await $0.acceptSession(on: entity, sessionId: sessionId) }
        }
        guard let accepted else {
            throw HeraldError(.noSessionAvailable, "no session of '\(entity)' has messages and no holder")
        }
        self.locks.accepted(accepted.lock, entityId: accepted.entityId)
        return accepted.lock
    }

    public func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: session.entity, tracer: self.tracer) {
            try await self.waiting(
                for: { try await self.perform("receive", write: false, transaction: false) { try await $0.waitKey(session.entity) } },
                maxWaitTime: maxWaitTime, until: { !$0.isEmpty }
            ) {
                let outcome = try await self.perform("receive") { try await $0.receive(from: session, maxCount: maxCount) }
                self.announce(outcome.wake)
                return outcome.messages
            }
        }
        self.metrics.consumed(messages, from: session.entity)
        return messages
    }

    public func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: session.entity, tracer: self.tracer) {
            let outcome = try await self.perform("receiveDeferred") { try await $0.receiveDeferred(from: session, sequenceNumbers: sequenceNumbers) }
            self.announce(outcome.wake)
            return outcome.messages
        }
        self.metrics.consumed(messages, from: session.entity)
        return messages
    }

    public func sessionState(_ session: SessionLock) async throws -> Data? {
        try await self.perform("sessionState", write: false) { try await $0.sessionState(session) }
    }

    public func setSessionState(_ state: Data?, for session: SessionLock) async throws {
        try await self.perform("setSessionState") { try await $0.setSessionState(state, for: session) }
    }

    public func renewSessionLock(_ session: SessionLock) async throws -> SessionLock {
        try await self.perform("renewSessionLock") { try await $0.renewSessionLock(session) }
    }

    public func releaseSession(_ session: SessionLock) async throws {
        let wake = try await self.perform("releaseSession") { try await $0.releaseSession(session) }
        self.locks.released(session)
        self.announce(wake)
    }

    // MARK: Dead letters and counts

    @discardableResult
    public func resubmit(_ token: LockToken) async throws -> SettlementOutcome {
        let (outcome, wake) = try await MessagingTracing.settle("resubmit", token, tracer: self.tracer) {
            try await self.perform("resubmit") { try await $0.resubmit(token) }
        }
        self.locks.settled([token])
        self.announce(wake)
        self.metrics.settled(outcome, .resubmitted, token.entity.origin)
        return outcome
    }

    public func counts(of entity: EntityPath) async throws -> EntityCounts {
        let (counts, wake) = try await self.perform("counts") { try await $0.counts(entity) }
        self.announce(wake)
        return counts
    }
}

extension PostgresBroker {
    public func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt {
        if transaction.isEmpty { return TransactionReceipt(sends: [], streamVersions: [:]) }
        let (receipt, wake) = try await MessagingTracing.commit(transaction, tracer: self.tracer) { transaction in
            try await self.perform("commit") { try await $0.commit(transaction) }
        }
        self.locks.settled(transaction.completions)
        self.announce(wake)
        self.metrics.committed(transaction, receipt)
        return receipt
    }

    public func document(_ key: String, in collection: String) async throws -> VersionedDocument? {
        try BrokerTransaction.checkKey(collection, "collection")
        try BrokerTransaction.checkKey(key, "document key")
        return try await self.perform("document", write: false, transaction: false) { try await $0.document(key, in: collection) }
    }

    public func documents(in collection: String) async throws -> [String: VersionedDocument] {
        try BrokerTransaction.checkKey(collection, "collection")
        return try await self.perform("documents", write: false, transaction: false) { try await $0.documents(in: collection) }
    }

    public func inboxContains(_ entry: InboxEntry) async throws -> Bool {
        try entry.check()
        return try await self.perform("inboxContains", write: false, transaction: false) { try await $0.inboxContains(entry) }
    }

    public func inboxEntries(among entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        for entry in entries { try entry.check() }
        var found: Set<InboxEntry> = []
        // A bounded statement each, however many a caller asks about.
        for start in stride(from: 0, to: entries.count, by: 1000) {
            let chunk = Array(entries[start..<min(start + 1000, entries.count)])
            found.formUnion(try await self.perform("inboxEntries", write: false, transaction: false) { try await $0.inboxEntries(among: chunk) })
        }
        return found
    }

    public func readStream(_ stream: String, from version: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try BrokerTransaction.checkKey(stream, "stream name")
        return try await self.perform("readStream", write: false, transaction: false) {
            try await $0.readEvents(stream: stream, from: version, maxCount: maxCount)
        }
    }

    public func readAll(from position: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try await self.perform("readAll", write: false, transaction: false) { try await $0.readEvents(stream: nil, from: position, maxCount: maxCount) }
    }
}
