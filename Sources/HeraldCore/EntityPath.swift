/// The address of something a broker sends to or receives from.
///
/// A queue, a topic, a subscription of a topic, or the dead-letter queue of a queue or
/// subscription. Its ``description`` is the Azure Service Bus style path:
/// `orders`, `events`, `events/subscriptions/audit`, `orders/$deadletterqueue`.
public struct EntityPath: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The kind of entity a path names.
    public enum Kind: String, Hashable, Sendable, Codable {
        /// A point-to-point queue.
        case queue
        /// A publish/subscribe topic (send only).
        case topic
        /// A subscription of a topic (receive only).
        case subscription
    }

    /// The kind of entity.
    public let kind: Kind
    /// The queue, topic or subscription name.
    public let name: String
    /// The topic of a subscription; `nil` otherwise.
    public let topic: String?
    /// Whether the path names the dead-letter queue of its queue or subscription.
    public let isDeadLetter: Bool

    private init(kind: Kind, name: String, topic: String?, isDeadLetter: Bool) {
        self.kind = kind
        self.name = name
        self.topic = topic
        self.isDeadLetter = isDeadLetter
    }

    /// The queue called `name`.
    public static func queue(_ name: String) -> EntityPath {
        EntityPath(kind: .queue, name: name, topic: nil, isDeadLetter: false)
    }

    /// The topic called `name`.
    public static func topic(_ name: String) -> EntityPath {
        EntityPath(kind: .topic, name: name, topic: nil, isDeadLetter: false)
    }

    /// The subscription `name` of `topic`.
    public static func subscription(_ name: String, of topic: String) -> EntityPath {
        EntityPath(kind: .subscription, name: name, topic: topic, isDeadLetter: false)
    }

    /// The dead-letter queue of this queue or subscription (itself if it already is one).
    public var deadLetter: EntityPath {
        EntityPath(kind: self.kind, name: self.name, topic: self.topic, isDeadLetter: true)
    }

    /// The queue or subscription that owns this dead-letter queue (itself otherwise).
    public var origin: EntityPath {
        EntityPath(kind: self.kind, name: self.name, topic: self.topic, isDeadLetter: false)
    }

    /// Whether messages can be received from this path (queues, subscriptions and their dead letters).
    public var isReceivable: Bool { self.kind != .topic }

    /// The path of the entity as stored, without the dead-letter suffix.
    public var entityKey: String {
        switch self.kind {
        case .queue, .topic: self.name
        case .subscription: "\(self.topic ?? "")/subscriptions/\(self.name)"
        }
    }

    public var description: String {
        self.isDeadLetter ? "\(self.entityKey)/$deadletterqueue" : self.entityKey
    }

    /// Checks every name in the path against GUARANTEES.md §2 and the kind rules.
    ///
    /// - Throws: ``HeraldError/Code/invalidName`` for a bad name, ``HeraldError/Code/invalidArgument``
    ///   for the dead-letter queue of a topic.
    public func validate() throws(HeraldError) {
        try EntityName.validate(self.name)
        if let topic { try EntityName.validate(topic) }
        if self.kind == .topic && self.isDeadLetter {
            throw HeraldError(.invalidArgument, "a topic has no dead-letter queue; its subscriptions do")
        }
    }

    /// The error for an operation on this path when the store holds no entity of its kind under
    /// its name. Queues and topics share one namespace, so `found` (the kind of the entity the
    /// store holds under that name instead, if any) is named in the message: `.topic("orders")`
    /// never reaches the queue `orders`.
    public func notFoundError(found: Kind? = nil) -> HeraldError {
        var message =
            switch self.kind {
            case .queue, .topic: "no \(self.kind.rawValue) named '\(self.name)'"
            case .subscription: "no subscription named '\(self.name)' of topic '\(self.topic ?? "")'"
            }
        if let found, found != self.kind { message += " ('\(self.name)' is a \(found.rawValue))" }
        return HeraldError(.entityNotFound, message)
    }

    /// Parses a path of the form `description` gives; `isTopic` tells a topic from a queue,
    /// which share a namespace and cannot be told apart by the path alone.
    public init(parsing string: String, isTopic: Bool = false) throws(HeraldError) {
        var parts = string.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var deadLetter = false
        if parts.last == "$deadletterqueue" {
            deadLetter = true
            parts.removeLast()
        }
        switch parts.count {
        case 1:
            self.init(kind: isTopic ? .topic : .queue, name: parts[0], topic: nil, isDeadLetter: deadLetter)
        case 3 where parts[1] == "subscriptions":
            self.init(kind: .subscription, name: parts[2], topic: parts[0], isDeadLetter: deadLetter)
        default:
            throw HeraldError(.invalidName, "'\(string.prefix(300))' is not an entity path")
        }
        try self.validate()
    }
}

/// The rule every queue, topic and subscription name follows.
public enum EntityName {
    /// The longest name accepted.
    public static let maxLength = 128

    /// Checks `name`: 1–128 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    ///
    /// - Throws: ``HeraldError/Code/invalidName`` when it breaks the rule.
    public static func validate(_ name: String) throws(HeraldError) {
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= maxLength else {
            throw HeraldError(.invalidName, "a name has 1 to \(maxLength) characters; got \(bytes.count)")
        }
        for (index, byte) in bytes.enumerated() {
            let isAlphanumeric = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            let isPunctuation = byte == 0x2E || byte == 0x5F || byte == 0x2D
            if index == 0 ? !isAlphanumeric : !(isAlphanumeric || isPunctuation) {
                throw HeraldError(.invalidName, "'\(name.prefix(200))' is not a valid name: use A-Z a-z 0-9 . _ - and start with a letter or digit")
            }
        }
    }
}
