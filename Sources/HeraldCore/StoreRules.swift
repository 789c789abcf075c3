// The broker's rules that do not depend on a store, written once: each store keeps only its SQL
// and its row mapping, and asks these what to write and what to answer.

package import Foundation

/// What the store-independent rules need of an entity a store resolved.
package protocol StoredEntity {
    /// The entity's path (never a dead-letter path).
    var path: EntityPath { get }
    /// Its options.
    var options: EntityOptions { get }
    /// Its rules; none for queues and topics.
    var rules: [SubscriptionRule] { get }
}

// MARK: - Resolving entities

extension EntityPath {
    /// Checks that the path can be sent to: a valid queue or topic path.
    ///
    /// - Throws: ``HeraldError/Code/invalidName`` or ``HeraldError/Code/invalidArgument``.
    package func checkSendTarget() throws(HeraldError) {
        try self.validate()
        if self.kind == .subscription || self.isDeadLetter {
            throw HeraldError(.invalidArgument, "send to a queue or a topic, not to \(self)")
        }
    }

    /// Checks that the path can be received from: a valid queue or subscription path, or its
    /// dead-letter queue.
    ///
    /// - Throws: ``HeraldError/Code/invalidName`` or ``HeraldError/Code/invalidArgument``.
    package func checkReceiveSource() throws(HeraldError) {
        try self.validate()
        if self.kind == .topic {
            throw HeraldError(.invalidArgument, "receive from a subscription of topic '\(self.name)', not from the topic")
        }
    }

    /// The entity a store found under this path's key, if it is of this path's kind.
    ///
    /// - Throws: ``HeraldError/Code/entityNotFound`` otherwise (naming the kind found, if any).
    package func resolved<Entity: StoredEntity>(_ found: Entity?) throws(HeraldError) -> Entity {
        guard let found, found.path.kind == self.kind else { throw self.notFoundError(found: found?.path.kind) }
        return found
    }

    /// The ``HeraldError/Code/entityAlreadyExists`` error of creating this path when an entity of
    /// kind `existing` (if known) holds its name.
    package func alreadyExistsError(existing: Kind?) -> HeraldError {
        HeraldError(.entityAlreadyExists, "a \(existing?.rawValue ?? "queue or topic") named '\(self.entityKey)' already exists")
    }

    /// Whether the messages received from this path are locked through their session: those of
    /// a session entity (`options`), not of its dead-letter queue, which has no sessions.
    package func locksThroughSession(_ options: EntityOptions) -> Bool {
        options.requiresSession && !self.isDeadLetter
    }

    /// Checks that a plain receive (or a receive of deferred messages) may take messages from the
    /// entity: a session entity's messages go only through their sessions; its dead-letter queue
    /// has no sessions.
    ///
    /// - Throws: ``HeraldError/Code/sessionRequired``.
    package func checkReceivesWithoutSession(_ options: EntityOptions, deferred: Bool = false) throws(HeraldError) {
        guard self.locksThroughSession(options) else { return }
        if deferred {
            throw HeraldError(
                .sessionRequired,
                "deferred messages of session entity '\(self)' are received through their session: accept it, then receive them by sequence number with its lock"
            )
        }
        throw HeraldError(.sessionRequired, "'\(self)' requires sessions: accept a session and receive from it")
    }

    /// Checks that the path may have sessions: not a dead-letter queue.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument``.
    package func checkSessionPath() throws(HeraldError) {
        if self.isDeadLetter { throw HeraldError(.invalidArgument, "a dead-letter queue has no sessions") }
    }

    /// Checks that the entity at this path accepts sessions.
    ///
    /// - Throws: ``HeraldError/Code/sessionNotEnabled``.
    package func checkSessionsEnabled(_ options: EntityOptions) throws(HeraldError) {
        guard options.requiresSession else { throw HeraldError(.sessionNotEnabled, "'\(self)' does not require sessions") }
    }
}

// MARK: - Creating entities

extension EntityPath {
    /// Checks what creating an entity at this path takes: the path, the options and the filter.
    ///
    /// - Throws: the first error of the three.
    package func checkCreation(options: EntityOptions, filter: SubscriptionFilter?) throws(HeraldError) {
        try self.validate()
        try options.validate()
        try filter?.validate()
    }

    /// The rules a new entity at this path starts with: a subscription's one rule `$Default`
    /// holding `filter`; none for a queue or topic.
    package func initialRules(filter: SubscriptionFilter?) -> [SubscriptionRule] {
        guard self.kind == .subscription else { return [] }
        return [SubscriptionRule(name: SubscriptionRule.defaultName, filter: filter ?? .all)]
    }
}

// MARK: - Rules

extension EntityPath {
    /// Checks that the path can have rules: a subscription's, not its dead-letter queue's.
    ///
    /// - Throws: ``HeraldError/Code/invalidName`` or ``HeraldError/Code/invalidArgument``.
    package func checkRulesTarget() throws(HeraldError) {
        try self.validate()
        guard self.kind == .subscription, !self.isDeadLetter else {
            throw HeraldError(.invalidArgument, "rules belong to a subscription, not to \(self)")
        }
    }
}

extension [SubscriptionRule] {
    /// The rules with `rule` added last, checked: a valid rule, a name not taken, at most
    /// ``HeraldLimits/maxRulesPerSubscription`` rules. `subscription` names the owner in errors.
    ///
    /// - Throws: the rule's errors, ``HeraldError/Code/entityAlreadyExists`` or
    ///   ``HeraldError/Code/invalidArgument``.
    package func adding(_ rule: SubscriptionRule, of subscription: EntityPath) throws(HeraldError) -> [SubscriptionRule] {
        try rule.validate()
        if self.contains(where: { $0.name == rule.name }) {
            throw HeraldError(.entityAlreadyExists, "subscription '\(subscription)' already has a rule named '\(rule.name)'")
        }
        guard self.count < HeraldLimits.maxRulesPerSubscription else {
            throw HeraldError(.invalidArgument, "a subscription has at most \(HeraldLimits.maxRulesPerSubscription) rules; '\(subscription)' has \(self.count)")
        }
        return self + [rule]
    }

    /// The rules without the one named `name`. `subscription` names the owner in errors.
    ///
    /// - Throws: ``HeraldError/Code/entityNotFound`` when no rule has that name.
    package func removing(named name: String, of subscription: EntityPath) throws(HeraldError) -> [SubscriptionRule] {
        guard let index = self.firstIndex(where: { $0.name == name }) else {
            throw HeraldError(.entityNotFound, "subscription '\(subscription)' has no rule named '\(name)'")
        }
        var rules = self
        rules.remove(at: index)
        return rules
    }
}

/// The JSON text a store keeps an entity's options and filter in: sorted keys, so that equal
/// values are stored as equal text by every store.
package enum StoredJSON {
    /// The stored text of `value`.
    package static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

// MARK: - Sending

/// How a store writes a message it accepts: its state, the times it keeps and when it expires.
package struct EnqueuedMessage: Sendable, Hashable {
    /// The state to store: ``StoredState/scheduled`` until a future scheduled enqueue time.
    package let state: StoredState
    /// The enqueue time (wall-clock milliseconds): the scheduled time, or now.
    package let enqueuedAt: Int64
    /// When the message becomes visible (wall-clock milliseconds); 0 for at once. Only scheduled
    /// and delayed messages compare against the wall clock, so a wall-clock jump back does not
    /// hide the rest.
    package let visibleAt: Int64
    /// When its time-to-live (its own, or else the entity's default) passes; `nil` for never.
    package let expiresAt: Int64?
    /// The scheduled enqueue time as sent, in wall-clock milliseconds.
    package let scheduledAt: Int64?

    /// How `message`, accepted at `now` (wall-clock milliseconds) by an entity whose default
    /// time-to-live is `defaultTimeToLive`, is stored.
    package init(_ message: Message, now: Int64, defaultTimeToLive: Duration?) {
        let scheduledAt = message.scheduledEnqueueTime?.millisecondsSince1970
        let scheduledLater = scheduledAt.flatMap { $0 > now ? $0 : nil }
        let enqueuedAt = scheduledLater ?? now
        self.state = scheduledLater == nil ? .active : .scheduled
        self.enqueuedAt = enqueuedAt
        self.visibleAt = scheduledLater ?? 0
        self.expiresAt = (message.timeToLive ?? defaultTimeToLive).map { enqueuedAt + $0.milliseconds }
        self.scheduledAt = scheduledAt
    }

    /// Whether receivers can take the message at once (it wakes waiting receivers).
    package var isVisibleNow: Bool { self.state == .active }
}

extension HeraldLimits {
    /// Checks how many messages one send holds: at most ``maxBatchCount``.
    ///
    /// - Throws: ``HeraldError/Code/batchTooLarge``.
    package static func checkBatchCount(_ count: Int) throws(HeraldError) {
        guard count <= Self.maxBatchCount else {
            throw HeraldError(.batchTooLarge, "a batch holds at most \(Self.maxBatchCount) messages; got \(count)")
        }
    }
}

extension Message {
    /// Checks a batch to a queue or topic with `options` before anything is written (a batch is
    /// all or nothing): each message against the options, and a session for every message that
    /// a session subscription of the topic would take.
    ///
    /// - Throws: the first message's error, or ``HeraldError/Code/sessionRequired``.
    package static func checkBatch(_ messages: [Message], against options: EntityOptions, subscriptions: [some StoredEntity]) throws(HeraldError) {
        for message in messages {
            try message.validate(against: options)
            for subscription in subscriptions where subscription.options.requiresSession && message.sessionId == nil {
                if subscription.rules.matches(message) {
                    throw HeraldError(.sessionRequired, "subscription '\(subscription.path.name)' requires sessions: set sessionId")
                }
            }
        }
    }
}

/// What duplicate detection remembers (GUARANTEES.md §4.5, §4.9): message ids within the entity's
/// window, and senders' (senderId, senderSequence) pairs. The stores keep, with them, the scheduled
/// topic messages that no subscription took (``Kind/scheduledWithoutCopies``).
package enum DuplicateDetection {
    /// The kinds of remembered keys, as the stores keep them.
    package enum Kind: Int, Sendable {
        /// A message id, within the entity's duplicate-detection window.
        case messageId = 0
        /// A (senderId, senderSequence) pair.
        case senderPair = 1
        /// Not a duplicate: a scheduled message of a topic that no subscription took, keyed by its
        /// sequence number and remembered until its scheduled time, so that cancelling it
        /// succeeds until then, as it does in Service Bus (``MessageBroker/cancelScheduled(_:in:)``).
        case scheduledWithoutCopies = 2

        /// The code a store writes.
        package var code: Int64 { Int64(self.rawValue) }
    }

    /// How long a (senderId, senderSequence) pair is remembered when the entity has no (or a
    /// shorter) duplicate-detection window: a day, in milliseconds.
    package static let senderPairRetention: Int64 = 86_400_000

    /// The key under which a topic remembers a scheduled message that no subscription took
    /// (``Kind/scheduledWithoutCopies``): its sequence number, as text.
    package static func scheduledWithoutCopiesKey(_ sequenceNumber: Int64) -> String { String(sequenceNumber) }

    /// The key a sender's pair is remembered under. The exact pair, not "anything below the
    /// highest": a late, lower number from a sender is a reordered message, which a receiver may
    /// hold until the gap fills.
    package static func senderKey(_ senderId: String, _ sequence: Int64) -> String {
        "\(sequence):\(senderId)"
    }

    /// The key of `message`'s sender pair, if it carries one.
    package static func senderKey(of message: Message) -> String? {
        guard let senderId = message.senderId, let sequence = message.senderSequence else { return nil }
        return Self.senderKey(senderId, sequence)
    }

    /// Until when a message id sent at `now` is remembered, with a window of `window` milliseconds.
    package static func messageIdExpiry(now: Int64, window: Int64) -> Int64 {
        now + window
    }

    /// Until when a sender pair sent at `now` is remembered, with a window of `window`
    /// milliseconds (if any): the longer of the window and ``senderPairRetention``.
    package static func senderPairExpiry(now: Int64, window: Int64?) -> Int64 {
        now + max(window ?? 0, Self.senderPairRetention)
    }
}

extension HeraldError.Uncancellable {
    /// What a store found of `sequenceNumber`, which it could not cancel: whether the entity holds
    /// the message, and the highest sequence number the entity assigned.
    package init(holdsMessage: Bool, sequenceNumber: Int64, lastSequence: Int64) {
        if holdsMessage {
            self = .notScheduled
        } else {
            self = sequenceNumber >= 1 && sequenceNumber <= lastSequence ? .gone : .neverAssigned
        }
    }

    /// What a store found of a topic's `sequenceNumber`, which it could not cancel (no
    /// subscription holds a scheduled copy of it, and it is not a scheduled message that no
    /// subscription took): whether the topic assigned it, its last sequence number being `lastSequence`.
    package init(topicSequenceNumber sequenceNumber: Int64, lastSequence: Int64) {
        self = sequenceNumber >= 1 && sequenceNumber <= lastSequence ? .noScheduledCopy : .neverAssigned
    }
}

// MARK: - Cancelling scheduled messages

extension HeraldLimits {
    /// Checks how many sequence numbers one cancellation of scheduled messages names: 1 to
    /// ``maxCancelCount``. Each is a statement in the store's transaction, so an unbounded list
    /// would hold the store's writer for as long as a client likes.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument``.
    package static func checkCancelCount(_ sequenceNumbers: [Int64]) throws(HeraldError) {
        guard (1...Self.maxCancelCount).contains(sequenceNumbers.count) else {
            throw HeraldError(
                .invalidArgument, "a cancellation of scheduled messages names 1 to \(Self.maxCancelCount) sequence numbers; got \(sequenceNumbers.count)")
        }
    }
}

// MARK: - Receiving deferred messages

extension HeraldLimits {
    /// Checks how many sequence numbers one receive of deferred messages names: 1 to
    /// ``maxReceiveCount``.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument``.
    package static func checkDeferredCount(_ sequenceNumbers: [Int64]) throws(HeraldError) {
        guard (1...Self.maxReceiveCount).contains(sequenceNumbers.count) else {
            throw HeraldError(
                .invalidArgument, "a receive of deferred messages names 1 to \(Self.maxReceiveCount) sequence numbers; got \(sequenceNumbers.count)")
        }
    }
}

extension EntityPath {
    /// Checks that a receive of deferred messages from this path (or, with `sessionId`, from that
    /// session of it) names no sequence number twice: a message is received once per call, so the
    /// second is not found.
    ///
    /// - Throws: ``HeraldError/Code/messageNotFound``, as ``deferredNotFound(_:sessionId:)``.
    package func checkDistinctDeferred(_ sequenceNumbers: [Int64], sessionId: String? = nil) throws(HeraldError) {
        var seen: Set<Int64> = []
        for sequenceNumber in sequenceNumbers where !seen.insert(sequenceNumber).inserted {
            throw self.deferredNotFound(sequenceNumber, sessionId: sessionId)
        }
    }

    /// The ``HeraldError/Code/messageNotFound`` error of `sequenceNumber`, which is not a deferred,
    /// unlocked message of this path or, with `sessionId`, of that session of it (another
    /// session's message is not found either).
    package func deferredNotFound(_ sequenceNumber: Int64, sessionId: String? = nil) -> HeraldError {
        guard let sessionId else { return HeraldError(.messageNotFound, "no deferred, unlocked message \(sequenceNumber) in '\(self)'") }
        return HeraldError(.messageNotFound, "no deferred, unlocked message \(sequenceNumber) of session '\(sessionId)' in '\(self)'")
    }
}

// MARK: - Delivering and dead-lettering

extension DeadLetterReason {
    /// The description stored with ``maxDeliveryCountExceeded``.
    package static func description(deliveries: Int) -> String { "delivered \(deliveries) times" }
}

extension EntityOptions {
    /// Whether a message delivered `deliveryCount` times goes to the dead-letter queue instead of
    /// another delivery (a lock would exceed ``maxDeliveryCount``); a dead-letter queue's own
    /// messages never do.
    package func isExhausted(deliveryCount: Int, inDeadLetterQueue: Bool) -> Bool {
        !inDeadLetterQueue && deliveryCount >= self.maxDeliveryCount
    }

    /// The delivery count from which ``isExhausted(deliveryCount:inDeadLetterQueue:)`` holds, for
    /// stores that decide it in SQL.
    package func exhaustionThreshold(inDeadLetterQueue: Bool) -> Int64 {
        inDeadLetterQueue ? .max : Int64(self.maxDeliveryCount)
    }

    /// The description a message exhausted in this entity is dead-lettered with.
    package var exhaustedDescription: String { DeadLetterReason.description(deliveries: self.maxDeliveryCount) }

    /// When a message abandoned with `delay` at `now` (wall-clock milliseconds) is visible again;
    /// 0 for at once. The delay was checked by ``HeraldLimits/checkAbandonDelay(_:)``.
    package static func visibleAt(afterAbandonDelay delay: Duration?, now: Int64) -> Int64 {
        guard let delay, delay > .zero else { return 0 }
        return now + delay.milliseconds
    }
}

// MARK: - Settling

extension HeraldLimits {
    /// Checks the tokens of one complete: at most ``maxBatchCount``, none twice.
    ///
    /// - Throws: ``HeraldError/Code/batchTooLarge`` or ``HeraldError/Code/invalidArgument``.
    package static func checkCompletion(_ tokens: [LockToken]) throws(HeraldError) {
        guard tokens.count <= Self.maxBatchCount else {
            throw HeraldError(.batchTooLarge, "complete at most \(Self.maxBatchCount) messages in one transaction; got \(tokens.count)")
        }
        guard Set(tokens).count == tokens.count else {
            throw HeraldError(.invalidArgument, "the same lock token appears twice")
        }
    }

    /// Checks a dead-letter reason and description: at most ``maxDeadLetterTextLength`` bytes each.
    ///
    /// - Throws: ``HeraldError/Code/identifierTooLong``.
    package static func checkDeadLetterText(reason: String, description: String?) throws(HeraldError) {
        for text in [reason, description ?? ""] where text.utf8.count > Self.maxDeadLetterTextLength {
            throw HeraldError(.identifierTooLong, "a dead-letter reason or description has at most \(Self.maxDeadLetterTextLength) bytes")
        }
    }

    /// Checks a session id a receiver asks for: 1 to ``maxIdentifierLength`` bytes.
    ///
    /// - Throws: ``HeraldError/Code/identifierTooLong``.
    package static func checkSessionId(_ sessionId: String) throws(HeraldError) {
        guard !sessionId.isEmpty, sessionId.utf8.count <= Self.maxIdentifierLength else {
            throw HeraldError(.identifierTooLong, "a sessionId has 1 to \(Self.maxIdentifierLength) bytes")
        }
    }

    /// Checks a session state: at most ``maxSessionStateSize`` bytes.
    ///
    /// - Throws: ``HeraldError/Code/messageTooLarge``.
    package static func checkSessionState(_ state: Data?) throws(HeraldError) {
        if let state, state.count > Self.maxSessionStateSize {
            throw HeraldError(.messageTooLarge, "session state has at most \(Self.maxSessionStateSize) bytes; got \(state.count)")
        }
    }
}

extension LockToken {
    /// `tokens` grouped by delivery (same entity, same nonce: one receive's tokens), each group in
    /// the order of its first token, so that the error a complete gets is the same on every run.
    package static func groupedByDelivery(_ tokens: [LockToken]) -> [[LockToken]] {
        var groups: [[LockToken]] = []
        var index: [DeliveryKey: Int] = [:]
        for token in tokens {
            let key = DeliveryKey(entity: token.entity, nonce: token.nonce)
            if let at = index[key] {
                groups[at].append(token)
            } else {
                index[key] = groups.count
                groups.append([token])
            }
        }
        return groups
    }

    private struct DeliveryKey: Hashable {
        var entity: EntityPath
        var nonce: UUID
    }

    /// The ``HeraldError/Code/lockLost`` error of a token whose message is gone or locked anew.
    package var lockLost: HeraldError {
        HeraldError(.lockLost, "the lock of message \(self.sequenceNumber) in '\(self.entity)' is lost: expired, settled, or superseded by a later delivery")
    }

    /// The ``HeraldError/Code/lockLost`` error of a token whose lock expired.
    package var lockExpired: HeraldError {
        HeraldError(.lockLost, "the lock of message \(self.sequenceNumber) in '\(self.entity)' expired")
    }

    /// Checks that the token's message can be deferred: not a dead letter.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument``.
    package func checkDeferrable() throws(HeraldError) {
        if self.entity.isDeadLetter { throw HeraldError(.invalidArgument, "dead letters cannot be deferred") }
    }

    /// Checks that the token's message can be dead-lettered: not a dead letter already.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument``.
    package func checkDeadLetterable() throws(HeraldError) {
        if self.entity.isDeadLetter { throw HeraldError(.invalidArgument, "the message is already a dead letter") }
    }

    /// Checks that the token's message can be resubmitted: a dead letter.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument``.
    package func checkResubmittable() throws(HeraldError) {
        guard self.entity.isDeadLetter else {
            throw HeraldError(.invalidArgument, "resubmit takes the lock token of a message received from a dead-letter queue")
        }
    }
}

extension SessionLock {
    /// The ``HeraldError/Code/sessionLockLost`` error of this session lock.
    package var lost: HeraldError {
        HeraldError(.sessionLockLost, "the lock of session '\(self.sessionId)' in '\(self.entity)' is lost")
    }

    /// The ``HeraldError/Code/sessionLockLost`` error of session `sessionId` of `entity`, which a
    /// message's settlement needs held.
    package static func lost(_ sessionId: String, in entity: EntityPath) -> HeraldError {
        HeraldError(.sessionLockLost, "the lock of session '\(sessionId)' in '\(entity)' is lost")
    }
}

// MARK: - Transactions

extension InboxEntry {
    /// The ``HeraldError/Code/alreadyProcessed`` error of recording this entry a second time.
    package var alreadyProcessed: HeraldError {
        HeraldError(.alreadyProcessed, "handler '\(self.handler)' already handled message '\(self.messageId)'")
    }
}

extension BrokerTransaction.DocumentWrite {
    /// The ``HeraldError/Code/concurrencyConflict`` error of this write, which found the document
    /// at version `current` (0: absent).
    package func conflict(current: Int64) -> HeraldError {
        HeraldError(.concurrencyConflict, "document '\(self.key)' of '\(self.collection)' is at version \(current), not \(self.expectedVersion)")
    }
}

extension BrokerTransaction.Append {
    /// The events with the versions they take on the stream, which is at `current` (0: no stream).
    ///
    /// - Throws: ``HeraldError/Code/concurrencyConflict`` when `current` is not the expected version.
    package func numbered(after current: Int64) throws(HeraldError) -> [(version: Int64, event: EventData)] {
        try self.expectedVersion.check(current: current, stream: self.stream)
        return self.events.enumerated().map { (current + Int64($0.offset) + 1, $0.element) }
    }

    /// The topic the append publishes to and the messages it publishes, the stream being at
    /// `current` before it; `nil` when it publishes nothing.
    package func publication(after current: Int64) -> (topic: EntityPath, messages: [Message])? {
        guard let topic = self.publishTo, !self.events.isEmpty else { return nil }
        let messages = self.events.enumerated().map { $0.element.publishedMessage(stream: self.stream, version: current + Int64($0.offset) + 1) }
        return (topic, messages)
    }
}
