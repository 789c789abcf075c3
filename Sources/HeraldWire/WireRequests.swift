public import HeraldCore

// Request and response bodies, one per operation of ``Route``.

/// `PUT /v1/topics/{topic}/subscriptions/{subscription}`.
public struct CreateSubscriptionRequest: Codable, Sendable, Hashable {
    public var options: WireOptions?
    public var filter: WireFilter?
    public init(options: WireOptions?, filter: WireFilter?) {
        self.options = options
        self.filter = filter
    }
}

/// A queue, topic or subscription as the management routes describe it.
public struct WireEntityInfo: Codable, Sendable, Hashable {
    /// `queue`, `topic` or `subscription`.
    public var kind: String
    /// The Azure Service Bus path: `orders`, `events/subscriptions/audit`.
    public var path: String
    public var entity: WireEntity
    public var options: WireOptions
    public var filter: WireFilter?
    /// Present on `GET` of one queue or subscription and in `stats`.
    public var counts: WireCounts?
    public init(kind: String, path: String, entity: WireEntity, options: WireOptions, filter: WireFilter? = nil, counts: WireCounts? = nil) {
        self.kind = kind
        self.path = path
        self.entity = entity
        self.options = options
        self.filter = filter
        self.counts = counts
    }
}

/// The answer of the list routes and of `stats`.
public struct WireEntityList: Codable, Sendable, Hashable {
    public var items: [WireEntityInfo]
    public init(items: [WireEntityInfo]) { self.items = items }
}

/// `POST /v1/messages/send`: up to 100 messages, sent atomically.
public struct SendRequest: Codable, Sendable, Hashable {
    public var entity: WireEntity
    public var messages: [WireMessage]
    public init(entity: WireEntity, messages: [WireMessage]) {
        self.entity = entity
        self.messages = messages
    }
}

/// One message's acknowledgement.
public struct WireReceipt: Codable, Sendable, Hashable {
    public var sequenceNumber: Int64?
    public var isDuplicate: Bool
    public init(_ receipt: SendReceipt) {
        self.sequenceNumber = receipt.sequenceNumber
        self.isDuplicate = receipt.isDuplicate
    }
    public var receipt: SendReceipt { SendReceipt(sequenceNumber: self.sequenceNumber, isDuplicate: self.isDuplicate) }
}

/// The answer of `send`, in the order of the request's messages.
public struct SendResponse: Codable, Sendable, Hashable {
    public var receipts: [WireReceipt]
    public init(receipts: [WireReceipt]) { self.receipts = receipts }
}

/// `POST /v1/messages/cancel-scheduled` and `POST /v1/messages/receive-deferred`.
public struct SequenceNumbersRequest: Codable, Sendable, Hashable {
    public var entity: WireEntity
    public var sequenceNumbers: [Int64]
    public init(entity: WireEntity, sequenceNumbers: [Int64]) {
        self.entity = entity
        self.sequenceNumbers = sequenceNumbers
    }
}

/// `POST /v1/messages/receive`.
public struct ReceiveRequest: Codable, Sendable, Hashable {
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
    public var entity: WireEntity
    public var fromSequenceNumber: Int64?
    public var maxCount: Int?
    public init(entity: WireEntity, fromSequenceNumber: Int64?, maxCount: Int?) {
        self.entity = entity
        self.fromSequenceNumber = fromSequenceNumber
        self.maxCount = maxCount
    }
}

/// `POST /v1/messages/counts`.
public struct EntityRequest: Codable, Sendable, Hashable {
    public var entity: WireEntity
    public init(entity: WireEntity) { self.entity = entity }
}

/// The answer of the receive and peek routes.
public struct MessagesResponse: Codable, Sendable, Hashable {
    public var messages: [WireReceivedMessage]
    public init(messages: [WireReceivedMessage]) { self.messages = messages }
}

/// `POST /v1/locks/complete`: the tokens are settled all or none.
public struct CompleteRequest: Codable, Sendable, Hashable {
    public var lockTokens: [String]
    public init(lockTokens: [String]) { self.lockTokens = lockTokens }
}

/// `POST /v1/locks/defer`, `/v1/locks/renew`, `/v1/locks/resubmit`.
public struct LockRequest: Codable, Sendable, Hashable {
    public var lockToken: String
    public init(lockToken: String) { self.lockToken = lockToken }
}

/// `POST /v1/locks/abandon`.
public struct AbandonRequest: Codable, Sendable, Hashable {
    public var lockToken: String
    /// Keep the message invisible this long before it is delivered again.
    public var delayMs: Int64?
    public init(lockToken: String, delayMs: Int64?) {
        self.lockToken = lockToken
        self.delayMs = delayMs
    }

    /// The delay, checked: 0 to ``HeraldCore/HeraldLimits/maxAbandonDelay`` (10 years) in
    /// milliseconds, or none.
    ///
    /// - Throws: ``HeraldCore/HeraldError/Code/invalidArgument`` for a negative or longer delay.
    public func delay() throws(HeraldError) -> Duration? {
        guard let milliseconds = self.delayMs else { return nil }
        let limit = HeraldLimits.maxAbandonDelay.milliseconds
        guard (0...limit).contains(milliseconds) else {
            throw HeraldError(.invalidArgument, "delayMs must lie in 0...\(limit) (10 years); got \(milliseconds)")
        }
        return .milliseconds(milliseconds)
    }
}

/// `POST /v1/locks/dead-letter`.
public struct DeadLetterRequest: Codable, Sendable, Hashable {
    public var lockToken: String
    public var reason: String
    public var description: String?
    public init(lockToken: String, reason: String, description: String?) {
        self.lockToken = lockToken
        self.reason = reason
        self.description = description
    }
}

/// The answer of `renewLock`.
public struct RenewLockResponse: Codable, Sendable, Hashable {
    public var lockedUntil: Int64
    public init(lockedUntil: Int64) { self.lockedUntil = lockedUntil }
}

/// The answer of a settlement (complete, abandon, defer, dead-letter, resubmit) that the same
/// lock token had already made: 200 with `{"alreadySettled": true}`. A first settlement answers
/// 204 without a body.
public struct SettlementResponse: Codable, Sendable, Hashable {
    public var alreadySettled: Bool
    public init(alreadySettled: Bool) { self.alreadySettled = alreadySettled }
}

/// `POST /v1/sessions/accept`: a named session, or the next available one.
public struct AcceptSessionRequest: Codable, Sendable, Hashable {
    public var entity: WireEntity
    public var sessionId: String?
    public var maxWaitMs: Int64?
    public init(entity: WireEntity, sessionId: String?, maxWaitMs: Int64?) {
        self.entity = entity
        self.sessionId = sessionId
        self.maxWaitMs = maxWaitMs
    }
}

/// `POST /v1/sessions/receive`.
public struct SessionReceiveRequest: Codable, Sendable, Hashable {
    public var session: WireSessionLock
    public var maxCount: Int?
    public var maxWaitMs: Int64?
    public init(session: WireSessionLock, maxCount: Int?, maxWaitMs: Int64?) {
        self.session = session
        self.maxCount = maxCount
        self.maxWaitMs = maxWaitMs
    }
}

/// `POST /v1/sessions/get-state`, `/v1/sessions/renew`, `/v1/sessions/release`.
public struct SessionRequest: Codable, Sendable, Hashable {
    public var session: WireSessionLock
    public init(session: WireSessionLock) { self.session = session }
}

/// `POST /v1/sessions/set-state` (request) and the answer of `get-state`: base64, or absent for none.
public struct SessionStateBody: Codable, Sendable, Hashable {
    public var session: WireSessionLock?
    public var state: String?
    public init(session: WireSessionLock?, state: String?) {
        self.session = session
        self.state = state
    }
}

/// The answer of `GET /health`.
public struct HealthResponse: Codable, Sendable, Hashable {
    /// `ok`, or `failed` (503) when the store stopped.
    public var status: String
    public var store: String
    public init(status: String, store: String) {
        self.status = status
        self.store = store
    }
}
