public import Foundation

/// A message to send (GUARANTEES.md §3).
///
/// Only ``body`` is required. A message without a ``messageId`` gets a fresh UUID, so duplicate
/// detection has something to key on; senders that may retry should set their own id.
public struct Message: Hashable, Sendable, Codable {
    /// The id duplicate detection keys on. At most 128 bytes.
    public var messageId: String
    /// The payload.
    public var body: Data
    /// The MIME type of ``body``, for example `application/json`.
    public var contentType: String?
    /// The message type; CQRS messages carry their stable type name here.
    public var subject: String?
    /// Ties together the messages of one conversation or workflow.
    public var correlationId: String?
    /// The id of the message that caused this one.
    public var causationId: String?
    /// Required on session entities: the messages of one session go in order to one receiver.
    public var sessionId: String?
    /// Where a reply should be sent.
    public var replyTo: String?
    /// The session a reply should go to, beside ``replyTo`` (Service Bus's `ReplyToSessionId`).
    public var replyToSessionId: String?
    /// The address the sending application gave the message (Service Bus's `To`). Herald routes a
    /// message by the entity it is sent to; this field is kept for the application, never read.
    public var to: String?
    /// How long the message lives once enqueued; the entity's default when `nil`.
    public var timeToLive: Duration?
    /// When set, the message stays invisible until this time.
    public var scheduledEnqueueTime: Date?
    /// Application properties, which subscription filters can match.
    public var applicationProperties: [String: PropertyValue]
    /// The sender, for gap and duplicate detection by ``senderSequence``.
    public var senderId: String?
    /// 1, 2, 3… per ``senderId``; a repeated pair is acknowledged as a duplicate.
    public var senderSequence: Int64?
    /// Metadata a protocol attaches to the message besides its application properties (an AMQP
    /// sender's own message annotations), kept and returned as sent. Subscription filters do not
    /// read them; they count against the same size limits as ``applicationProperties``.
    public var annotations: [String: PropertyValue]

    /// Creates a message.
    public init(
        messageId: String = RandomIdentifier.uuidString(),
        body: Data,
        contentType: String? = nil,
        subject: String? = nil,
        correlationId: String? = nil,
        causationId: String? = nil,
        sessionId: String? = nil,
        replyTo: String? = nil,
        timeToLive: Duration? = nil,
        scheduledEnqueueTime: Date? = nil,
        applicationProperties: [String: PropertyValue] = [:],
        senderId: String? = nil,
        senderSequence: Int64? = nil,
        replyToSessionId: String? = nil,
        to: String? = nil,
        annotations: [String: PropertyValue] = [:]
    ) {
        self.messageId = messageId
        self.body = body
        self.contentType = contentType
        self.subject = subject
        self.correlationId = correlationId
        self.causationId = causationId
        self.sessionId = sessionId
        self.replyTo = replyTo
        self.timeToLive = timeToLive
        self.scheduledEnqueueTime = scheduledEnqueueTime
        self.applicationProperties = applicationProperties
        self.senderId = senderId
        self.senderSequence = senderSequence
        self.replyToSessionId = replyToSessionId
        self.to = to
        self.annotations = annotations
    }

    private enum CodingKeys: String, CodingKey {
        case messageId, body, contentType, subject, correlationId, causationId, sessionId, replyTo, timeToLive
        case scheduledEnqueueTime, applicationProperties, senderId, senderSequence, replyToSessionId, to, annotations
    }

    /// Decodes a message; the fields added after the first release may be absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            messageId: try container.decode(String.self, forKey: .messageId),
            body: try container.decode(Data.self, forKey: .body),
            contentType: try container.decodeIfPresent(String.self, forKey: .contentType),
            subject: try container.decodeIfPresent(String.self, forKey: .subject),
            correlationId: try container.decodeIfPresent(String.self, forKey: .correlationId),
            causationId: try container.decodeIfPresent(String.self, forKey: .causationId),
            sessionId: try container.decodeIfPresent(String.self, forKey: .sessionId),
            replyTo: try container.decodeIfPresent(String.self, forKey: .replyTo),
            timeToLive: try container.decodeIfPresent(Duration.self, forKey: .timeToLive),
            scheduledEnqueueTime: try container.decodeIfPresent(Date.self, forKey: .scheduledEnqueueTime),
            applicationProperties: try container.decode([String: PropertyValue].self, forKey: .applicationProperties),
            senderId: try container.decodeIfPresent(String.self, forKey: .senderId),
            senderSequence: try container.decodeIfPresent(Int64.self, forKey: .senderSequence),
            replyToSessionId: try container.decodeIfPresent(String.self, forKey: .replyToSessionId),
            to: try container.decodeIfPresent(String.self, forKey: .to),
            annotations: try container.decodeIfPresent([String: PropertyValue].self, forKey: .annotations) ?? [:]
        )
    }

    /// A message whose body is the UTF-8 bytes of `text`.
    public init(messageId: String = RandomIdentifier.uuidString(), text: String, subject: String? = nil, sessionId: String? = nil) {
        self.init(messageId: messageId, body: Data(text.utf8), subject: subject, sessionId: sessionId)
    }
}

/// The value of an application property.
public enum PropertyValue: Hashable, Sendable, Codable, CustomStringConvertible {
    /// A string.
    case string(String)
    /// A 64-bit integer.
    case int(Int64)
    /// A double.
    case double(Double)
    /// A Boolean.
    case bool(Bool)

    /// The bytes the value counts for against the property limits: UTF-8 length of a string,
    /// 8 for numbers, 1 for a Boolean.
    public var encodedSize: Int {
        switch self {
        case .string(let value): value.utf8.count
        case .int, .double: 8
        case .bool: 1
        }
    }

    public var description: String {
        switch self {
        case .string(let value): value
        case .int(let value): String(value)
        case .double(let value): String(value)
        case .bool(let value): String(value)
        }
    }

    /// The key of a double's stored form, `{"double": 172}`.
    private enum DoubleKey: String, CodingKey { case double }

    public init(from decoder: any Decoder) throws {
        // Doubles are written keyed: a whole double written bare (`172`) read back as an int, so a
        // stored filter on a double matched differently after a restart (found by Fuzz/fuzz-wire-bodies).
        // Bare values, as written before, still read as they did.
        if let keyed = try? decoder.container(keyedBy: DoubleKey.self), let value = try? keyed.decode(Double.self, forKey: .double) {
            self = .double(value)
            return
        }
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        if case .double(let value) = self {
            var keyed = encoder.container(keyedBy: DoubleKey.self)
            try keyed.encode(value, forKey: .double)
            return
        }
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double: break
        case .bool(let value): try container.encode(value)
        }
    }
}

extension Message {
    private static func checkIdentifier(_ name: StaticString, _ value: String?) throws(HeraldError) {
        if let value, value.utf8.count > HeraldLimits.maxIdentifierLength {
            throw HeraldError(.identifierTooLong, "\(name) has \(value.utf8.count) bytes; at most \(HeraldLimits.maxIdentifierLength)")
        }
    }

    /// The bytes `values` count for (keys plus values), each at most ``HeraldLimits/maxPropertySize``.
    private static func checkedSize(of values: [String: PropertyValue], _ kind: StaticString) throws(HeraldError) -> Int {
        var total = 0
        for (key, value) in values {
            let size = key.utf8.count + value.encodedSize
            if size > HeraldLimits.maxPropertySize {
                throw HeraldError(.propertyTooLarge, "\(kind) '\(key.prefix(100))' has \(size) bytes; at most \(HeraldLimits.maxPropertySize)")
            }
            total += size
        }
        return total
    }

    /// Checks the message against the limits of GUARANTEES.md §4 and the entity's options.
    ///
    /// - Throws: ``HeraldError/Code/messageTooLarge``, ``HeraldError/Code/identifierTooLong``,
    ///   ``HeraldError/Code/propertyTooLarge``, ``HeraldError/Code/propertiesTooLarge``,
    ///   ``HeraldError/Code/invalidArgument`` or ``HeraldError/Code/sessionRequired``.
    public func validate(against options: EntityOptions) throws(HeraldError) {
        if self.body.count > options.maxMessageSize {
            throw HeraldError(.messageTooLarge, "the body has \(self.body.count) bytes; the entity accepts at most \(options.maxMessageSize)")
        }
        if self.messageId.isEmpty {
            throw HeraldError(.invalidArgument, "messageId must not be empty")
        }
        // One call per field rather than a loop over an array of them: this runs for every message sent.
        try Self.checkIdentifier("messageId", self.messageId)
        try Self.checkIdentifier("sessionId", self.sessionId)
        try Self.checkIdentifier("correlationId", self.correlationId)
        try Self.checkIdentifier("causationId", self.causationId)
        try Self.checkIdentifier("replyTo", self.replyTo)
        try Self.checkIdentifier("replyToSessionId", self.replyToSessionId)
        try Self.checkIdentifier("to", self.to)
        try Self.checkIdentifier("subject", self.subject)
        try Self.checkIdentifier("contentType", self.contentType)
        try Self.checkIdentifier("senderId", self.senderId)
        let total = try Self.checkedSize(of: self.applicationProperties, "property") + Self.checkedSize(of: self.annotations, "annotation")
        if total > HeraldLimits.maxPropertiesSize {
            throw HeraldError(.propertiesTooLarge, "the properties and annotations have \(total) bytes; at most \(HeraldLimits.maxPropertiesSize)")
        }
        if let ttl = self.timeToLive, !EntityOptions.timeToLiveRange.contains(ttl) {
            throw HeraldError(.invalidArgument, "timeToLive must lie in 1 ms...10 years")
        }
        if let time = self.scheduledEnqueueTime, !HeraldLimits.scheduledEnqueueTimeRange.contains(time) {
            throw HeraldError(.invalidArgument, "scheduledEnqueueTime must lie in the years 1 to 9999")
        }
        if (self.senderId == nil) != (self.senderSequence == nil) {
            throw HeraldError(.invalidArgument, "senderId and senderSequence go together")
        }
        if let sequence = self.senderSequence, sequence < 1 {
            throw HeraldError(.invalidArgument, "senderSequence starts at 1")
        }
        if options.requiresSession && self.sessionId == nil {
            throw HeraldError(.sessionRequired, "the entity requires sessions: set sessionId")
        }
    }
}
