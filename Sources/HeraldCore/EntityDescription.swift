/// A queue or topic as listed by a broker.
public struct EntityDescription: Hashable, Sendable, Codable {
    /// The entity's path.
    public var path: EntityPath
    /// The entity's options.
    public var options: EntityOptions

    /// Creates a description.
    public init(path: EntityPath, options: EntityOptions) {
        self.path = path
        self.options = options
    }
}

/// A subscription as listed by a broker.
///
/// A subscription receives a copy of each message sent to its topic that any of its ``rules``
/// matches (GUARANTEES.md §3.2). ``filter`` is the filter of the rule named
/// ``SubscriptionRule/defaultName`` (`$Default`): a subscription created with one filter, as
/// ``MessageBroker/createSubscription(_:topic:options:filter:)`` creates it, has exactly that rule,
/// so callers that know only filters read theirs back unchanged. A subscription whose rules were
/// changed (``ManageableBroker/addRule(_:to:)``) is described fully by ``rules`` only.
public struct SubscriptionDescription: Hashable, Sendable, Codable {
    /// The subscription's path.
    public var path: EntityPath
    /// The subscription's options.
    public var options: EntityOptions
    /// The subscription's rules, in the order they were added.
    public var rules: [SubscriptionRule]

    /// The filter of the `$Default` rule, or ``SubscriptionFilter/none`` when the subscription has
    /// no rule of that name (see ``rules`` for the others).
    public var filter: SubscriptionFilter {
        self.rules.first { $0.name == SubscriptionRule.defaultName }?.filter ?? .none
    }

    /// Creates the description of a subscription with the one rule `$Default` holding `filter`.
    public init(path: EntityPath, options: EntityOptions, filter: SubscriptionFilter) {
        self.init(path: path, options: options, rules: [SubscriptionRule(name: SubscriptionRule.defaultName, filter: filter)])
    }

    /// Creates the description of a subscription with `rules`.
    public init(path: EntityPath, options: EntityOptions, rules: [SubscriptionRule]) {
        self.path = path
        self.options = options
        self.rules = rules
    }

    private enum CodingKeys: String, CodingKey {
        case path, options, rules, filter
    }

    /// Decodes a description; one written before subscriptions had rules (a `filter` only) gets
    /// the one rule `$Default` holding it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let path = try container.decode(EntityPath.self, forKey: .path)
        let options = try container.decode(EntityOptions.self, forKey: .options)
        if let rules = try container.decodeIfPresent([SubscriptionRule].self, forKey: .rules) {
            self.init(path: path, options: options, rules: rules)
        } else {
            self.init(path: path, options: options, filter: try container.decodeIfPresent(SubscriptionFilter.self, forKey: .filter) ?? .all)
        }
    }

    /// Encodes the path, the options, the rules and (for readers that know only filters) the filter.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.path, forKey: .path)
        try container.encode(self.options, forKey: .options)
        try container.encode(self.rules, forKey: .rules)
        try container.encode(self.filter, forKey: .filter)
    }
}

/// A named filter of a subscription (a rule, in Azure Service Bus terms): the subscription receives
/// a message when any of its rules' filters matches it.
public struct SubscriptionRule: Hashable, Sendable, Codable {
    /// The rule's name: 1 to ``HeraldLimits/maxRuleNameLength`` characters, unique within the
    /// subscription.
    public var name: String
    /// The filter a message must match for this rule to copy it into the subscription.
    public var filter: SubscriptionFilter

    /// The name of the rule a subscription is created with: `$Default`.
    public static let defaultName = "$Default"

    /// Creates a rule.
    public init(name: String, filter: SubscriptionFilter) {
        self.name = name
        self.filter = filter
    }

    /// Checks the rule's name and its filter's sizes.
    ///
    /// - Throws: ``HeraldError/Code/invalidName`` for a name that is empty, longer than
    ///   ``HeraldLimits/maxRuleNameLength`` characters, or holds a control character or one of
    ///   `/ \ ? # %` (which would not survive a URL path); the filter's errors otherwise.
    public func validate() throws(HeraldError) {
        let count = self.name.count
        guard count >= 1, count <= HeraldLimits.maxRuleNameLength else {
            throw HeraldError(.invalidName, "a rule name has 1 to \(HeraldLimits.maxRuleNameLength) characters; got \(count)")
        }
        let refused: Set<Character> = ["/", "\\", "?", "#", "%"]
        if self.name.contains(where: { refused.contains($0) || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) {
            throw HeraldError(.invalidName, "a rule name holds no control character and none of / \\ ? # %")
        }
        try self.filter.validate()
    }
}

extension Array where Element == SubscriptionRule {
    /// Whether any of the rules matches `message`; no rules match nothing.
    public func matches(_ message: Message) -> Bool {
        self.contains { $0.filter.matches(message) }
    }
}

/// Which messages of a topic a subscription's rule takes.
///
/// Every condition that is set must hold (a correlation filter, in Azure Service Bus terms); the
/// empty filter, ``all``, matches every message (a `TrueFilter`, SQL `1=1`), and ``none`` matches
/// none (a `FalseFilter`, SQL `1=0`).
public struct SubscriptionFilter: Hashable, Sendable, Codable {
    /// The message's `subject` (the CQRS message type; Service Bus's `Label`) must equal this.
    public var subject: String?
    /// The message's `correlationId` must equal this.
    public var correlationId: String?
    /// The message's `contentType` must equal this.
    public var contentType: String?
    /// The message's `messageId` must equal this.
    public var messageId: String?
    /// The message's `to` must equal this.
    public var to: String?
    /// The message's `replyTo` must equal this.
    public var replyTo: String?
    /// The message's `sessionId` must equal this.
    public var sessionId: String?
    /// The message's `replyToSessionId` must equal this.
    public var replyToSessionId: String?
    /// Each of these application properties must be present with an equal value.
    public var properties: [String: PropertyValue]
    /// When `true` the filter matches no message, whatever else it holds.
    public var matchesNothing: Bool

    /// Creates a filter; with no arguments, one that matches everything.
    public init(
        subject: String? = nil,
        correlationId: String? = nil,
        contentType: String? = nil,
        properties: [String: PropertyValue] = [:],
        messageId: String? = nil,
        to: String? = nil,
        replyTo: String? = nil,
        sessionId: String? = nil,
        replyToSessionId: String? = nil,
        matchesNothing: Bool = false
    ) {
        self.subject = subject
        self.correlationId = correlationId
        self.contentType = contentType
        self.properties = properties
        self.messageId = messageId
        self.to = to
        self.replyTo = replyTo
        self.sessionId = sessionId
        self.replyToSessionId = replyToSessionId
        self.matchesNothing = matchesNothing
    }

    /// The filter that matches every message.
    public static let all = SubscriptionFilter()

    /// The filter that matches no message.
    public static let none = SubscriptionFilter(matchesNothing: true)

    /// The identifier conditions with the message field each compares, for checks and matching.
    private var identifiers: [(condition: String?, field: (Message) -> String?)] {
        [
            (self.subject, \.subject), (self.correlationId, \.correlationId), (self.contentType, \.contentType),
            (self.messageId, { $0.messageId }), (self.to, \.to), (self.replyTo, \.replyTo), (self.sessionId, \.sessionId),
            (self.replyToSessionId, \.replyToSessionId),
        ]
    }

    /// Whether `message` passes the filter.
    public func matches(_ message: Message) -> Bool {
        if self.matchesNothing { return false }
        for (condition, field) in self.identifiers {
            if let condition, field(message) != condition { return false }
        }
        for (key, value) in self.properties where message.applicationProperties[key] != value {
            return false
        }
        return true
    }

    /// Checks the filter's sizes against the message limits.
    public func validate() throws(HeraldError) {
        for case let value? in self.identifiers.map(\.condition) where value.utf8.count > HeraldLimits.maxIdentifierLength {
            throw HeraldError(.identifierTooLong, "a filter value has \(value.utf8.count) bytes; at most \(HeraldLimits.maxIdentifierLength)")
        }
        let total = self.properties.reduce(0) { $0 + $1.key.utf8.count + $1.value.encodedSize }
        if total > HeraldLimits.maxPropertiesSize {
            throw HeraldError(.propertiesTooLarge, "the filter's properties have \(total) bytes; at most \(HeraldLimits.maxPropertiesSize)")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case subject, correlationId, contentType, messageId, to, replyTo, sessionId, replyToSessionId, properties, matchesNothing
    }

    /// Decodes a filter; fields left out are unset (a filter stored before a field existed
    /// decodes as it matched then).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            subject: try container.decodeIfPresent(String.self, forKey: .subject),
            correlationId: try container.decodeIfPresent(String.self, forKey: .correlationId),
            contentType: try container.decodeIfPresent(String.self, forKey: .contentType),
            properties: try container.decodeIfPresent([String: PropertyValue].self, forKey: .properties) ?? [:],
            messageId: try container.decodeIfPresent(String.self, forKey: .messageId),
            to: try container.decodeIfPresent(String.self, forKey: .to),
            replyTo: try container.decodeIfPresent(String.self, forKey: .replyTo),
            sessionId: try container.decodeIfPresent(String.self, forKey: .sessionId),
            replyToSessionId: try container.decodeIfPresent(String.self, forKey: .replyToSessionId),
            matchesNothing: try container.decodeIfPresent(Bool.self, forKey: .matchesNothing) ?? false
        )
    }

    /// Encodes the conditions that are set (and `matchesNothing` only when it holds), so a filter
    /// of the fields older versions knew encodes as they encoded it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(self.subject, forKey: .subject)
        try container.encodeIfPresent(self.correlationId, forKey: .correlationId)
        try container.encodeIfPresent(self.contentType, forKey: .contentType)
        try container.encodeIfPresent(self.messageId, forKey: .messageId)
        try container.encodeIfPresent(self.to, forKey: .to)
        try container.encodeIfPresent(self.replyTo, forKey: .replyTo)
        try container.encodeIfPresent(self.sessionId, forKey: .sessionId)
        try container.encodeIfPresent(self.replyToSessionId, forKey: .replyToSessionId)
        try container.encode(self.properties, forKey: .properties)
        if self.matchesNothing { try container.encode(true, forKey: .matchesNothing) }
    }
}
