import Foundation
public import HeraldCore

// The JSON shapes of the HTTP API. Times are milliseconds since 1970 (UTC), durations are
// milliseconds, bodies and session state are base64. `openapi.yaml` documents the same shapes.

/// An error answer: `{ "error": code, "message": text }`.
public struct WireError: Codable, Sendable, Hashable {
    /// The name of a ``Code``: a ``HeraldCore/HeraldError/Code`` name, or one of the refusals of
    /// the HTTP layer (``Code/refusals``). Kept as text so that a code a newer server sends still
    /// decodes (``code`` is then `nil`).
    public var error: String
    /// What went wrong, for people.
    public var message: String

    /// Creates an error answer.
    public init(error: String, message: String) {
        self.error = error
        self.message = message
    }
}

/// Names a queue, a topic, a subscription, or a dead-letter queue:
/// `{"queue": "orders"}`, `{"topic": "events"}`, `{"topic": "events", "subscription": "audit"}`,
/// with `"deadLetter": true` for the dead-letter queue of a queue or subscription.
public struct WireEntity: Codable, Sendable, Hashable {
    /// A queue's name.
    public var queue: String?
    /// A topic's name (with ``subscription``, the subscription's topic).
    public var topic: String?
    /// A subscription's name; ``topic`` names its topic.
    public var subscription: String?
    /// Whether the dead-letter queue of the queue or subscription is meant; absent for `false`.
    public var deadLetter: Bool?

    /// Creates the wire form of `path`.
    public init(_ path: EntityPath) {
        switch path.kind {
        case .queue: self.queue = path.name
        case .topic: self.topic = path.name
        case .subscription:
            self.topic = path.topic
            self.subscription = path.name
        }
        self.deadLetter = path.isDeadLetter ? true : nil
    }

    /// The entity path, validated.
    public func path() throws(HeraldError) -> EntityPath {
        let path: EntityPath
        switch (self.queue, self.topic, self.subscription) {
        case (let queue?, nil, nil): path = .queue(queue)
        case (nil, let topic?, nil): path = .topic(topic)
        case (nil, let topic?, let subscription?): path = .subscription(subscription, of: topic)
        default:
            throw HeraldError(.invalidArgument, "an entity names a queue, a topic, or a topic and one of its subscriptions")
        }
        let result = self.deadLetter == true ? path.deadLetter : path
        try result.validate()
        return result
    }
}

/// An application property value: exactly one of `string`, `int`, `double`, `bool`,
/// for example `{"int": 5}`.
public struct WireProperty: Codable, Sendable, Hashable {
    /// A string value.
    public var string: String?
    /// An integer value.
    public var int: Int64?
    /// A floating-point value.
    public var double: Double?
    /// A Boolean value.
    public var bool: Bool?

    /// Creates the wire form of `value`.
    public init(_ value: PropertyValue) {
        switch value {
        case .string(let value): self.string = value
        case .int(let value): self.int = value
        case .double(let value): self.double = value
        case .bool(let value): self.bool = value
        }
    }

    /// The property value.
    public func value() throws(HeraldError) -> PropertyValue {
        switch (self.string, self.int, self.double, self.bool) {
        case (let value?, nil, nil, nil): .string(value)
        case (nil, let value?, nil, nil): .int(value)
        case (nil, nil, let value?, nil): .double(value)
        case (nil, nil, nil, let value?): .bool(value)
        default: throw HeraldError(.invalidArgument, "a property value has exactly one of string, int, double, bool")
        }
    }

    static func properties(_ wire: [String: WireProperty]?) throws(HeraldError) -> [String: PropertyValue] {
        var result: [String: PropertyValue] = [:]
        for (key, value) in wire ?? [:] { result[key] = try value.value() }
        return result
    }
}

/// A message to send.
public struct WireMessage: Codable, Sendable, Hashable {
    /// A fresh UUID when absent.
    public var messageId: String?
    /// The body, base64; or use `text`.
    public var body: String?
    /// The body as UTF-8 text, instead of `body`.
    public var text: String?
    /// The content type of the body, for example `application/json`.
    public var contentType: String?
    /// The subject (Azure Service Bus `Label`).
    public var subject: String?
    /// The correlation id.
    public var correlationId: String?
    /// The id of the message or event that caused it.
    public var causationId: String?
    /// The session; absent for the next session that has messages and no holder.
    public var sessionId: String?
    /// Where replies go.
    public var replyTo: String?
    /// How long the message lives, in milliseconds; the entity default when absent.
    public var timeToLiveMs: Int64?
    /// When the message becomes receivable, in milliseconds since 1970; at once when absent.
    public var scheduledEnqueueTime: Int64?
    /// Application properties; absent for none.
    public var applicationProperties: [String: WireProperty]?
    /// The sender, for gap and duplicate detection by ``senderSequence``.
    public var senderId: String?
    /// 1, 2, 3… per ``senderId``; a repeated pair is acknowledged as a duplicate.
    public var senderSequence: Int64?
    /// The session replies go to (Azure Service Bus `ReplyToSessionId`).
    public var replyToSessionId: String?
    /// The address the sending application gave the message (Azure Service Bus `To`); not used for routing.
    public var to: String?
    /// Metadata besides the application properties (an AMQP sender's own message annotations); absent for none.
    public var annotations: [String: WireProperty]?

    /// Creates the wire form of `message` (its body in base64).
    public init(_ message: Message) {
        self.messageId = message.messageId
        self.body = message.body.base64EncodedString()
        self.contentType = message.contentType
        self.subject = message.subject
        self.correlationId = message.correlationId
        self.causationId = message.causationId
        self.sessionId = message.sessionId
        self.replyTo = message.replyTo
        self.timeToLiveMs = message.timeToLive.map(\.milliseconds)
        self.scheduledEnqueueTime = message.scheduledEnqueueTime.map(\.millisecondsSince1970)
        self.applicationProperties = message.applicationProperties.isEmpty ? nil : message.applicationProperties.mapValues(WireProperty.init)
        self.senderId = message.senderId
        self.senderSequence = message.senderSequence
        self.replyToSessionId = message.replyToSessionId
        self.to = message.to
        self.annotations = message.annotations.isEmpty ? nil : message.annotations.mapValues(WireProperty.init)
    }

    /// The message. Sizes are the store's to check; this checks the shape.
    public func message() throws(HeraldError) -> Message {
        let body: Data
        switch (self.body, self.text) {
        case (let encoded?, nil): body = try WireBase64.decode(encoded, "body")
        case (nil, let text?): body = Data(text.utf8)
        case (nil, nil): body = Data()
        default: throw HeraldError(.invalidArgument, "a message has body or text, not both")
        }
        if let ttl = self.timeToLiveMs, ttl <= 0 { throw HeraldError(.invalidArgument, "timeToLiveMs must be positive") }
        let messageId: String
        if let given = self.messageId { messageId = given } else { messageId = UUIDText.format(try RandomIdentifier.uuid()) }
        return Message(
            messageId: messageId,
            body: body,
            contentType: self.contentType,
            subject: self.subject,
            correlationId: self.correlationId,
            causationId: self.causationId,
            sessionId: self.sessionId,
            replyTo: self.replyTo,
            timeToLive: self.timeToLiveMs.map { .milliseconds($0) },
            scheduledEnqueueTime: self.scheduledEnqueueTime.map(Date.init(millisecondsSince1970:)),
            applicationProperties: try WireProperty.properties(self.applicationProperties),
            senderId: self.senderId,
            senderSequence: self.senderSequence,
            replyToSessionId: self.replyToSessionId,
            to: self.to,
            annotations: try WireProperty.properties(self.annotations)
        )
    }
}

/// A received (or peeked) message.
public struct WireReceivedMessage: Codable, Sendable, Hashable {
    /// The message.
    public var message: WireMessage
    /// The entity it was received from.
    public var entity: WireEntity
    /// The message's sequence number in its entity.
    public var sequenceNumber: Int64
    /// When the message was enqueued, in milliseconds since 1970.
    public var enqueuedTime: Int64
    /// How many times the message was delivered, this delivery included.
    public var deliveryCount: Int
    /// `active`, `deferred` or `scheduled`.
    public var state: String
    /// Settles this delivery; absent for peeked and received-and-deleted messages.
    public var lockToken: String?
    /// When the lock expires, in milliseconds since 1970; absent without a lock.
    public var lockedUntil: Int64?
    /// When the message expires, in milliseconds since 1970; absent when it does not.
    public var expiresAt: Int64?
    /// The dead-letter reason; absent for a defer.
    public var deadLetterReason: String?
    /// More about the reason, for people.
    public var deadLetterDescription: String?

    /// Creates the wire form of `received`.
    public init(_ received: ReceivedMessage) {
        self.message = WireMessage(received.message)
        self.entity = WireEntity(received.entity)
        self.sequenceNumber = received.sequenceNumber
        self.enqueuedTime = received.enqueuedTime.millisecondsSince1970
        self.deliveryCount = received.deliveryCount
        self.state = received.state.rawValue
        self.lockToken = received.lockToken.map(WireLockToken.encode)
        self.lockedUntil = received.lockedUntil.map(\.millisecondsSince1970)
        self.expiresAt = received.expiresAt.map(\.millisecondsSince1970)
        self.deadLetterReason = received.deadLetterReason
        self.deadLetterDescription = received.deadLetterDescription
    }

    /// The received message.
    public func received() throws(HeraldError) -> ReceivedMessage {
        guard let state = ReceivedMessage.State(rawValue: self.state) else {
            throw HeraldError(.invalidArgument, "unknown message state '\(self.state)'")
        }
        return ReceivedMessage(
            message: try self.message.message(),
            entity: try self.entity.path(),
            sequenceNumber: self.sequenceNumber,
            enqueuedTime: Date(millisecondsSince1970: self.enqueuedTime),
            deliveryCount: self.deliveryCount,
            state: state,
            lockToken: try self.lockToken.map { token throws(HeraldError) in try WireLockToken.decode(token) },
            lockedUntil: self.lockedUntil.map(Date.init(millisecondsSince1970:)),
            expiresAt: self.expiresAt.map(Date.init(millisecondsSince1970:)),
            deadLetterReason: self.deadLetterReason,
            deadLetterDescription: self.deadLetterDescription
        )
    }
}

/// Lock tokens travel as opaque strings: `<entity path>#<sequence number>@<nonce>`, for example
/// `orders#12@0A1B…` or `events/subscriptions/audit/$deadletterqueue#3@…`.
///
/// The format is written out here rather than taken from `LockToken.description`, which is for
/// logs: rewording a log line must not change what clients hold.
public enum WireLockToken {
    /// The suffix of a dead-letter queue's path (as in `orders/$deadletterqueue`).
    static let deadLetterSuffix = "/$deadletterqueue"

    /// The string form of `token`.
    ///
    /// - Parameter token: A lock token.
    /// - Returns: `<entity path>#<sequence number>@<nonce>`, which ``decode(_:)`` reads back.
    public static func encode(_ token: LockToken) -> String {
        "\(Self.pathText(token.entity))#\(token.sequenceNumber)@\(UUIDText.format(token.nonce))"
    }

    /// The part of a token before its `#`: the entity's path as a token spells it.
    private static func pathText(_ entity: EntityPath) -> String {
        entity.entityKey + (entity.isDeadLetter ? Self.deadLetterSuffix : "")
    }

    /// The token a string names.
    ///
    /// - Parameter string: A string ``encode(_:)`` made.
    /// - Returns: The lock token.
    /// - Throws: ``HeraldCore/HeraldError/Code/invalidArgument`` for a string that is not a lock
    ///   token, ``HeraldCore/HeraldError/Code/invalidName`` for one whose entity path is not valid.
    public static func decode(_ string: String) throws(HeraldError) -> LockToken {
        try Self.decode(string, after: nil).token
    }

    /// The tokens `strings` name, in their order.
    ///
    /// The tokens of one receive share their entity path and nonce, so each is read once here
    /// for a run of tokens that repeat it: reading a path checks each of its names.
    ///
    /// - Parameter strings: Strings ``encode(_:)`` made.
    /// - Returns: The lock tokens.
    /// - Throws: As ``decode(_:)``, for the first string that is not a lock token.
    package static func decode(_ strings: [String]) throws(HeraldError) -> [LockToken] {
        var tokens: [LockToken] = []
        tokens.reserveCapacity(strings.count)
        var previous: Parsed?
        for string in strings {
            let parsed = try Self.decode(string, after: previous)
            tokens.append(parsed.token)
            previous = parsed
        }
        return tokens
    }

    /// A decoded token and the texts of its path and nonce.
    private struct Parsed {
        let path: Substring.UTF8View
        let nonce: Substring.UTF8View
        let token: LockToken
    }

    /// Decodes `string`, taking the entity path and nonce of `previous` when `string` spells
    /// them the same.
    private static func decode(_ string: String, after previous: Parsed?) throws(HeraldError) -> Parsed {
        // Byte-wise: '@' and '#' are ASCII, so their UTF-8 positions are character boundaries.
        let utf8 = string.utf8
        guard utf8.count <= 1024, let at = utf8.lastIndex(of: UInt8(ascii: "@")),
            let hash = utf8[..<at].lastIndex(of: UInt8(ascii: "#")),
            let sequenceNumber = Int64(string[string.index(after: hash)..<at])
        else {
            throw Self.notAToken(string)
        }
        let path = string[..<hash]
        let nonceText = string[string.index(after: at)...]
        if let previous, previous.nonce.elementsEqual(nonceText.utf8), previous.path.elementsEqual(path.utf8) {
            let token = LockToken(entity: previous.token.entity, sequenceNumber: sequenceNumber, nonce: previous.token.nonce)
            return Parsed(path: path.utf8, nonce: nonceText.utf8, token: token)
        }
        guard let nonce = UUIDText.parse(nonceText) else { throw Self.notAToken(string) }
        let token = LockToken(entity: try EntityPath(parsing: String(path)), sequenceNumber: sequenceNumber, nonce: nonce)
        return Parsed(path: path.utf8, nonce: nonceText.utf8, token: token)
    }

    private static func notAToken(_ string: String) -> HeraldError {
        HeraldError(.invalidArgument, "not a lock token: '\(string.prefix(200))'")
    }

    /// Writes tokens as the JSON strings of ``encode(_:)``'s text, byte for byte what
    /// `JSONText.appendString(encode(token))` writes. The tokens of one receive share their entity
    /// and nonce, so an answer's writer makes their text once.
    package struct JSONWriter {
        private var path: (entity: EntityPath, escaped: [UInt8])?
        private var nonce: (uuid: UUID, text: [UInt8])?

        package init() {}

        /// Appends `token`, quoted.
        package mutating func append(_ token: LockToken, to bytes: inout [UInt8]) {
            let escapedPath: [UInt8]
            if let path = self.path, path.entity == token.entity {
                escapedPath = path.escaped
            } else {
                // The path is the only part that may need escaping; the rest is digits, hex and `#@-`.
                var escaped: [UInt8] = []
                JSONText.appendEscapedText(WireLockToken.pathText(token.entity), to: &escaped)
                escapedPath = escaped
                self.path = (token.entity, escaped)
            }
            let nonceText: [UInt8]
            if let nonce = self.nonce, nonce.uuid == token.nonce {
                nonceText = nonce.text
            } else {
                nonceText = Array(UUIDText.format(token.nonce).utf8)
                self.nonce = (token.nonce, nonceText)
            }
            bytes.append(UInt8(ascii: "\""))
            bytes += escapedPath
            bytes.append(UInt8(ascii: "#"))
            JSONText.appendInteger(token.sequenceNumber, to: &bytes)
            bytes.append(UInt8(ascii: "@"))
            bytes += nonceText
            bytes.append(UInt8(ascii: "\""))
        }
    }
}

/// A session lock: `{"entity": …, "sessionId": "…", "nonce": "…", "lockedUntil": ms}`.
public struct WireSessionLock: Codable, Sendable, Hashable {
    /// The queue or subscription of the session.
    public var entity: WireEntity
    /// The session id.
    public var sessionId: String
    /// The UUID that tells this lock from earlier locks of the same session.
    public var nonce: String
    /// When the lock expires, in milliseconds since 1970.
    public var lockedUntil: Int64

    /// Creates the wire form of `lock`.
    public init(_ lock: SessionLock) {
        self.entity = WireEntity(lock.entity)
        self.sessionId = lock.sessionId
        self.nonce = lock.nonce.uuidString
        self.lockedUntil = lock.lockedUntil.millisecondsSince1970
    }

    /// The session lock.
    public func lock() throws(HeraldError) -> SessionLock {
        guard let nonce = UUID(uuidString: self.nonce) else { throw HeraldError(.invalidArgument, "a session lock's nonce is a UUID") }
        return SessionLock(entity: try self.entity.path(), sessionId: self.sessionId, nonce: nonce, lockedUntil: Date(millisecondsSince1970: self.lockedUntil))
    }
}

/// Entity options; every field is optional and defaults to GUARANTEES.md §2's value.
public struct WireOptions: Codable, Sendable, Hashable {
    /// How long a delivery stays locked, in milliseconds.
    public var lockDurationMs: Int64?
    /// Deliveries after which a message is dead-lettered.
    public var maxDeliveryCount: Int?
    /// The time to live of messages sent without one, in milliseconds.
    public var defaultTimeToLiveMs: Int64?
    /// Whether expired messages are dead-lettered rather than dropped.
    public var deadLetterOnExpiration: Bool?
    /// How long message ids are remembered for duplicate detection, in milliseconds.
    public var duplicateDetectionWindowMs: Int64?
    /// Whether the entity requires sessions.
    public var requiresSession: Bool?
    /// The largest body accepted, in bytes.
    public var maxMessageSize: Int?
    /// In a session entity, whether a dead-lettered message holds back the rest of its session until it is resubmitted.
    public var parkSessionOnDeadLetter: Bool?

    /// Creates the wire form of `options`.
    public init(_ options: EntityOptions) {
        self.lockDurationMs = options.lockDuration.milliseconds
        self.maxDeliveryCount = options.maxDeliveryCount
        self.defaultTimeToLiveMs = options.defaultTimeToLive.map(\.milliseconds)
        self.deadLetterOnExpiration = options.deadLetterOnExpiration
        self.duplicateDetectionWindowMs = options.duplicateDetectionWindow.map(\.milliseconds)
        self.requiresSession = options.requiresSession
        self.maxMessageSize = options.maxMessageSize
        self.parkSessionOnDeadLetter = options.parkSessionOnDeadLetter
    }

    /// The options: the defaults, with the fields that are set.
    public func options() -> EntityOptions {
        var options = EntityOptions()
        if let value = self.lockDurationMs { options.lockDuration = .milliseconds(value) }
        if let value = self.maxDeliveryCount { options.maxDeliveryCount = value }
        if let value = self.defaultTimeToLiveMs { options.defaultTimeToLive = .milliseconds(value) }
        if let value = self.deadLetterOnExpiration { options.deadLetterOnExpiration = value }
        if let value = self.duplicateDetectionWindowMs { options.duplicateDetectionWindow = .milliseconds(value) }
        if let value = self.requiresSession { options.requiresSession = value }
        if let value = self.maxMessageSize { options.maxMessageSize = value }
        if let value = self.parkSessionOnDeadLetter { options.parkSessionOnDeadLetter = value }
        return options
    }
}

/// A subscription filter; every condition set must hold.
public struct WireFilter: Codable, Sendable, Hashable {
    /// The subject (Azure Service Bus `Label`).
    public var subject: String?
    /// The correlation id.
    public var correlationId: String?
    /// The content type of the body, for example `application/json`.
    public var contentType: String?
    /// The message id.
    public var messageId: String?
    /// The message's `to`.
    public var to: String?
    /// The message's `replyTo`.
    public var replyTo: String?
    /// The session id.
    public var sessionId: String?
    /// The message's `replyToSessionId`.
    public var replyToSessionId: String?
    /// Application properties that must all match; absent for none.
    public var properties: [String: WireProperty]?
    /// `true` for the filter that matches no message (Service Bus's `FalseFilter`); absent otherwise.
    public var matchesNothing: Bool?

    /// Creates the wire form of `filter`.
    public init(_ filter: SubscriptionFilter) {
        self.subject = filter.subject
        self.correlationId = filter.correlationId
        self.contentType = filter.contentType
        self.messageId = filter.messageId
        self.to = filter.to
        self.replyTo = filter.replyTo
        self.sessionId = filter.sessionId
        self.replyToSessionId = filter.replyToSessionId
        self.properties = filter.properties.isEmpty ? nil : filter.properties.mapValues(WireProperty.init)
        self.matchesNothing = filter.matchesNothing ? true : nil
    }

    /// The filter.
    public func filter() throws(HeraldError) -> SubscriptionFilter {
        SubscriptionFilter(
            subject: self.subject, correlationId: self.correlationId, contentType: self.contentType,
            properties: try WireProperty.properties(self.properties), messageId: self.messageId, to: self.to, replyTo: self.replyTo,
            sessionId: self.sessionId, replyToSessionId: self.replyToSessionId, matchesNothing: self.matchesNothing ?? false
        )
    }
}

/// A subscription's rule: a name and a filter.
public struct WireRule: Codable, Sendable, Hashable {
    /// The rule's name, unique within its subscription (`$Default` for the rule it was created with).
    public var name: String
    /// The rule's filter.
    public var filter: WireFilter

    /// Creates the wire form of `rule`.
    public init(_ rule: SubscriptionRule) {
        self.name = rule.name
        self.filter = WireFilter(rule.filter)
    }

    /// The rule.
    public func rule() throws(HeraldError) -> SubscriptionRule {
        SubscriptionRule(name: self.name, filter: try self.filter.filter())
    }
}

/// Counts of an entity's messages by state.
public struct WireCounts: Codable, Sendable, Hashable {
    /// Messages ready to be received.
    public var active: Int
    /// Messages delivered and locked.
    public var locked: Int
    /// Messages scheduled for later.
    public var scheduled: Int
    /// Deferred messages.
    public var deferred: Int
    /// Messages in the dead-letter queue.
    public var deadLettered: Int

    /// Creates the wire form of `counts`.
    public init(_ counts: EntityCounts) {
        self.active = counts.active
        self.locked = counts.locked
        self.scheduled = counts.scheduled
        self.deferred = counts.deferred
        self.deadLettered = counts.deadLettered
    }

    /// The counts.
    public var counts: EntityCounts {
        EntityCounts(active: self.active, locked: self.locked, scheduled: self.scheduled, deferred: self.deferred, deadLettered: self.deadLettered)
    }
}
