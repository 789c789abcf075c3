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
public struct SubscriptionDescription: Hashable, Sendable, Codable {
    /// The subscription's path.
    public var path: EntityPath
    /// The subscription's options.
    public var options: EntityOptions
    /// The filter messages must match to be copied into the subscription.
    public var filter: SubscriptionFilter

    /// Creates a description.
    public init(path: EntityPath, options: EntityOptions, filter: SubscriptionFilter) {
        self.path = path
        self.options = options
        self.filter = filter
    }
}

/// Which messages of a topic a subscription receives.
///
/// Every condition that is set must hold (a correlation filter, in Azure Service Bus terms); the
/// empty filter matches every message.
public struct SubscriptionFilter: Hashable, Sendable, Codable {
    /// The message's `subject` (the CQRS message type) must equal this.
    public var subject: String?
    /// The message's `correlationId` must equal this.
    public var correlationId: String?
    /// The message's `contentType` must equal this.
    public var contentType: String?
    /// Each of these application properties must be present with an equal value.
    public var properties: [String: PropertyValue]

    /// Creates a filter; with no arguments, one that matches everything.
    public init(subject: String? = nil, correlationId: String? = nil, contentType: String? = nil, properties: [String: PropertyValue] = [:]) {
        self.subject = subject
        self.correlationId = correlationId
        self.contentType = contentType
        self.properties = properties
    }

    /// The filter that matches every message.
    public static let all = SubscriptionFilter()

    /// Whether `message` passes the filter.
    public func matches(_ message: Message) -> Bool {
        if let subject, message.subject != subject { return false }
        if let correlationId, message.correlationId != correlationId { return false }
        if let contentType, message.contentType != contentType { return false }
        for (key, value) in self.properties where message.applicationProperties[key] != value {
            return false
        }
        return true
    }

    /// Checks the filter's sizes against the message limits.
    public func validate() throws(HeraldError) {
        for case let value? in [self.subject, self.correlationId, self.contentType] where value.utf8.count > HeraldLimits.maxIdentifierLength {
            throw HeraldError(.identifierTooLong, "a filter value has \(value.utf8.count) bytes; at most \(HeraldLimits.maxIdentifierLength)")
        }
        let total = self.properties.reduce(0) { $0 + $1.key.utf8.count + $1.value.encodedSize }
        if total > HeraldLimits.maxPropertiesSize {
            throw HeraldError(.propertiesTooLarge, "the filter's properties have \(total) bytes; at most \(HeraldLimits.maxPropertiesSize)")
        }
    }
}
