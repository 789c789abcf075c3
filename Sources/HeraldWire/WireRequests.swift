public import HeraldCore

// Request and response bodies, one per operation of the HTTP API.

/// `PUT /v1/topics/{topic}/subscriptions/{subscription}`.
public struct CreateSubscriptionRequest: Codable, Sendable, Hashable {
    /// The entity options; the defaults when absent.
    public var options: WireOptions?
    /// The subscription's filter; absent for queues and topics, and for a subscription that takes every message.
    public var filter: WireFilter?
    /// Creates the body from its fields.
    public init(options: WireOptions?, filter: WireFilter?) {
        self.options = options
        self.filter = filter
    }
}

/// `PUT /v1/topics/{topic}/subscriptions/{subscription}/rules/{rule}`: the new rule's filter.
public struct AddRuleRequest: Codable, Sendable, Hashable {
    /// The rule's filter; absent for one that takes every message.
    public var filter: WireFilter?
    /// Creates the body from its fields.
    public init(filter: WireFilter?) { self.filter = filter }
}

/// The answer of `GET /v1/topics/{topic}/subscriptions/{subscription}/rules`.
public struct WireRuleList: Codable, Sendable, Hashable {
    /// The subscription's rules, in the order they were added.
    public var items: [WireRule]
    /// Creates the body from its fields.
    public init(items: [WireRule]) { self.items = items }
}

/// A queue, topic or subscription as the management routes describe it.
public struct WireEntityInfo: Codable, Sendable, Hashable {
    /// `queue`, `topic` or `subscription`.
    public var kind: String
    /// The Azure Service Bus path: `orders`, `events/subscriptions/audit`.
    public var path: String
    /// The queue, topic, subscription or dead-letter queue it names.
    public var entity: WireEntity
    /// The entity's options.
    public var options: WireOptions
    /// The filter of the subscription's `$Default` rule (one that matches nothing when it has
    /// none); absent for queues and topics.
    public var filter: WireFilter?
    /// The subscription's rules, in the order they were added; absent for queues and topics.
    public var rules: [WireRule]?
    /// Present on `GET` of one queue or subscription and in `stats`.
    public var counts: WireCounts?
    /// The last sequence number the entity assigned; present on `GET` of one entity and after a
    /// `PATCH`.
    public var lastSequenceNumber: Int64?
    /// Creates the body from its fields.
    public init(
        kind: String, path: String, entity: WireEntity, options: WireOptions, filter: WireFilter? = nil, rules: [WireRule]? = nil,
        counts: WireCounts? = nil, lastSequenceNumber: Int64? = nil
    ) {
        self.kind = kind
        self.path = path
        self.entity = entity
        self.options = options
        self.filter = filter
        self.rules = rules
        self.counts = counts
        self.lastSequenceNumber = lastSequenceNumber
    }
}

/// The answer of the list routes and of `stats`.
public struct WireEntityList: Codable, Sendable, Hashable {
    /// The entities.
    public var items: [WireEntityInfo]
    /// Creates the body from its fields.
    public init(items: [WireEntityInfo]) { self.items = items }
}

/// `POST /v1/messages/send`: up to 100 messages, sent atomically.
public struct SendRequest: Codable, Sendable, Hashable {
    /// The queue or topic to send to.
    public var entity: WireEntity
    /// The messages, at most 100.
    public var messages: [WireMessage]
    /// Creates the body from its fields.
    public init(entity: WireEntity, messages: [WireMessage]) {
        self.entity = entity
        self.messages = messages
    }
}

/// One message's acknowledgement.
public struct WireReceipt: Codable, Sendable, Hashable {
    /// The sequence number the message got; absent for a duplicate.
    public var sequenceNumber: Int64?
    /// Whether duplicate detection dropped the message (it was sent before within the window).
    public var isDuplicate: Bool
    /// Creates the wire form of `receipt`.
    public init(_ receipt: SendReceipt) {
        self.sequenceNumber = receipt.sequenceNumber
        self.isDuplicate = receipt.isDuplicate
    }
    /// The receipt.
    public var receipt: SendReceipt { SendReceipt(sequenceNumber: self.sequenceNumber, isDuplicate: self.isDuplicate) }
}

/// The answer of `send`, in the order of the request's messages.
public struct SendResponse: Codable, Sendable, Hashable {
    /// The receipts, one per message, in the messages' order.
    public var receipts: [WireReceipt]
    /// Creates the body from its fields.
    public init(receipts: [WireReceipt]) { self.receipts = receipts }
}

/// `POST /v1/messages/cancel-scheduled` and `POST /v1/messages/receive-deferred`.
public struct SequenceNumbersRequest: Codable, Sendable, Hashable {
    /// The queue, topic, subscription or dead-letter queue it names.
    public var entity: WireEntity
    /// The sequence numbers of the messages.
    public var sequenceNumbers: [Int64]
    /// Creates the body from its fields.
    public init(entity: WireEntity, sequenceNumbers: [Int64]) {
        self.entity = entity
        self.sequenceNumbers = sequenceNumbers
    }
}

/// `POST /v1/messages/receive`.
public struct ReceiveRequest: Codable, Sendable, Hashable {
    /// The queue, subscription or dead-letter queue to receive from.
    public var entity: WireEntity
    /// 1–1,000; 1 when absent.
    public var maxCount: Int?
    /// How long to wait for a first message (long poll), 0–60,000; 0 when absent.
    public var maxWaitMs: Int64?
    /// `peekLock` (the default) or `receiveAndDelete`.
    public var mode: ReceiveMode?
    /// Stop before the messages' bodies and properties pass this many bytes (the first message
    /// is always delivered); the server's own answer budget applies as well.
    public var maxBytes: Int?
    /// Creates the body from its fields.
    public init(entity: WireEntity, maxCount: Int?, maxWaitMs: Int64?, mode: ReceiveMode?, maxBytes: Int? = nil) {
        self.entity = entity
        self.maxCount = maxCount
        self.maxWaitMs = maxWaitMs
        self.mode = mode
        self.maxBytes = maxBytes
    }
}

/// `POST /v1/messages/peek`.
public struct PeekRequest: Codable, Sendable, Hashable {
    /// The queue, subscription or dead-letter queue to peek at.
    public var entity: WireEntity
    /// The first sequence number to look at; 0 (the start) when absent.
    public var fromSequenceNumber: Int64?
    /// The most messages to return; 1 when absent.
    public var maxCount: Int?
    /// Creates the body from its fields.
    public init(entity: WireEntity, fromSequenceNumber: Int64?, maxCount: Int?) {
        self.entity = entity
        self.fromSequenceNumber = fromSequenceNumber
        self.maxCount = maxCount
    }
}

/// `POST /v1/messages/counts`.
public struct EntityRequest: Codable, Sendable, Hashable {
    /// The queue, topic, subscription or dead-letter queue it names.
    public var entity: WireEntity
    /// Creates the body from its fields.
    public init(entity: WireEntity) { self.entity = entity }
}

/// The answer of the receive and peek routes.
public struct MessagesResponse: Codable, Sendable, Hashable {
    /// The messages, in sequence-number order.
    public var messages: [WireReceivedMessage]
    /// Creates the body from its fields.
    public init(messages: [WireReceivedMessage]) { self.messages = messages }
}

/// `POST /v1/locks/complete`: the tokens are settled all or none.
public struct CompleteRequest: Codable, Sendable, Hashable {
    /// The lock tokens (``WireLockToken``) of the deliveries to complete.
    public var lockTokens: [String]
    /// Creates the body from its fields.
    public init(lockTokens: [String]) { self.lockTokens = lockTokens }
}

/// `POST /v1/locks/defer`, `/v1/locks/renew`, `/v1/locks/resubmit`.
public struct LockRequest: Codable, Sendable, Hashable {
    /// The lock token (``WireLockToken``) of the delivery.
    public var lockToken: String
    /// Creates the body from its fields.
    public init(lockToken: String) { self.lockToken = lockToken }
}

/// `POST /v1/locks/abandon`.
public struct AbandonRequest: Codable, Sendable, Hashable {
    /// The lock token (``WireLockToken``) of the delivery.
    public var lockToken: String
    /// Keep the message invisible this long before it is delivered again.
    public var delayMs: Int64?
    /// Creates the body from its fields.
    public init(lockToken: String, delayMs: Int64?) {
        self.lockToken = lockToken
        self.delayMs = delayMs
    }

    /// The delay, checked as the stores check it (so that the error reads the same everywhere):
    /// 0 to ``HeraldCore/HeraldLimits/maxAbandonDelay`` (10 years), or none.
    ///
    /// - Throws: ``HeraldCore/HeraldError/Code/invalidArgument`` for a negative or longer delay.
    public func delay() throws(HeraldError) -> Duration? {
        guard let milliseconds = self.delayMs else { return nil }
        let delay = Duration.milliseconds(milliseconds)
        try HeraldLimits.checkAbandonDelay(delay)
        return delay
    }
}

/// `POST /v1/locks/dead-letter`.
public struct DeadLetterRequest: Codable, Sendable, Hashable {
    /// The lock token (``WireLockToken``) of the delivery.
    public var lockToken: String
    /// Why the message is dead-lettered.
    public var reason: String
    /// More about why, for people.
    public var description: String?
    /// Creates the body from its fields.
    public init(lockToken: String, reason: String, description: String?) {
        self.lockToken = lockToken
        self.reason = reason
        self.description = description
    }
}

/// The answer of `renewLock`.
public struct RenewLockResponse: Codable, Sendable, Hashable {
    /// When the lock expires, in milliseconds since 1970.
    public var lockedUntil: Int64
    /// Creates the body from its fields.
    public init(lockedUntil: Int64) { self.lockedUntil = lockedUntil }
}

/// The answer of a settlement (complete, abandon, defer, dead-letter, resubmit) that the same
/// lock token had already made: 200 with `{"alreadySettled": true}`. A first settlement answers
/// 204 without a body.
public struct SettlementResponse: Codable, Sendable, Hashable {
    /// Whether the settlement was a retry of one the store remembers (always `true` when present).
    public var alreadySettled: Bool
    /// Creates the body from its fields.
    public init(alreadySettled: Bool) { self.alreadySettled = alreadySettled }
}

/// `POST /v1/sessions/accept`: a named session, or the next available one.
public struct AcceptSessionRequest: Codable, Sendable, Hashable {
    /// The queue, topic, subscription or dead-letter queue it names.
    public var entity: WireEntity
    /// The session; absent for the next session that has messages and no holder.
    public var sessionId: String?
    /// How long to wait for a session, in milliseconds: 0 to 60,000 (``WireLimits/maxWaitPerRequest``); 0 when absent.
    public var maxWaitMs: Int64?
    /// Creates the body from its fields.
    public init(entity: WireEntity, sessionId: String?, maxWaitMs: Int64?) {
        self.entity = entity
        self.sessionId = sessionId
        self.maxWaitMs = maxWaitMs
    }
}

/// `POST /v1/sessions/receive`.
public struct SessionReceiveRequest: Codable, Sendable, Hashable {
    /// The session lock.
    public var session: WireSessionLock
    /// The most messages to return; 1 when absent.
    public var maxCount: Int?
    /// How long to wait for a message, in milliseconds: 0 to 60,000 (``WireLimits/maxWaitPerRequest``); 0 when absent.
    public var maxWaitMs: Int64?
    /// Creates the body from its fields.
    public init(session: WireSessionLock, maxCount: Int?, maxWaitMs: Int64?) {
        self.session = session
        self.maxCount = maxCount
        self.maxWaitMs = maxWaitMs
    }
}

/// `POST /v1/sessions/receive-deferred`: deferred messages of the session, by sequence number.
public struct SessionReceiveDeferredRequest: Codable, Sendable, Hashable {
    /// The session lock.
    public var session: WireSessionLock
    /// The sequence numbers of the session's deferred messages: 1 to 1,000, none twice.
    public var sequenceNumbers: [Int64]
    /// Creates the body from its fields.
    public init(session: WireSessionLock, sequenceNumbers: [Int64]) {
        self.session = session
        self.sequenceNumbers = sequenceNumbers
    }
}

/// `POST /v1/sessions/get-state`, `/v1/sessions/renew`, `/v1/sessions/release`.
public struct SessionRequest: Codable, Sendable, Hashable {
    /// The session lock.
    public var session: WireSessionLock
    /// Creates the body from its fields.
    public init(session: WireSessionLock) { self.session = session }
}

/// `POST /v1/sessions/set-state` (request) and the answer of `get-state`: base64, or absent for none.
public struct SessionStateBody: Codable, Sendable, Hashable {
    /// The session lock; absent in an answer.
    public var session: WireSessionLock?
    /// The session state, base64; absent when the session has none (or to clear it).
    public var state: String?
    /// Creates the body from its fields.
    public init(session: WireSessionLock?, state: String?) {
        self.session = session
        self.state = state
    }
}

/// The answer of `GET /health`.
public struct HealthResponse: Codable, Sendable, Hashable {
    /// `ok`, or `failed` (503) when the store stopped.
    public var status: String
    /// The store: `sqlite` or `postgres`.
    public var store: String
    /// Creates the body from its fields.
    public init(status: String, store: String) {
        self.status = status
        self.store = store
    }
}
