public import HeraldCore
import HeraldWire

/// A queue, topic or subscription as the server's management routes describe it: its options,
/// its filter, and its counts where the answer has them.
public struct EntityStatus: Hashable, Sendable {
    /// The entity's path.
    public var path: EntityPath
    /// The entity's options.
    public var options: EntityOptions
    /// A subscription's filter: its `$Default` rule's (see
    /// ``/HeraldCore/SubscriptionDescription/filter``); `nil` for queues and topics.
    public var filter: SubscriptionFilter?
    /// A subscription's rules, in the order they were added; `nil` for queues and topics (and from
    /// a server older than rules).
    public var rules: [SubscriptionRule]?
    /// How many messages it holds, by state; `nil` for topics and in list answers.
    public var counts: EntityCounts?

    /// Creates a status.
    public init(
        path: EntityPath, options: EntityOptions, filter: SubscriptionFilter? = nil, rules: [SubscriptionRule]? = nil, counts: EntityCounts? = nil
    ) {
        self.path = path
        self.options = options
        self.filter = filter
        self.rules = rules
        self.counts = counts
    }

    /// Reads the wire form, checking that its kind agrees with its entity.
    init(_ info: WireEntityInfo) throws {
        let path = try info.entity.path()
        guard info.kind == path.kind.rawValue else {
            throw HeraldClientError.malformedResponse("an entity of kind '\(info.kind)' is named as a \(path.kind.rawValue)")
        }
        self.init(
            path: path, options: info.options.options(), filter: try info.filter?.filter(), rules: try info.rules?.map { try $0.rule() },
            counts: info.counts?.counts)
    }

    /// The queue or topic description (``/HeraldCore/MessageBroker/listQueues()``).
    public var entityDescription: EntityDescription { EntityDescription(path: self.path, options: self.options) }

    /// The subscription description: its rules, or (from a server older than rules) the one rule
    /// `$Default` holding its filter, the match-all filter when none is set.
    public var subscriptionDescription: SubscriptionDescription {
        if let rules = self.rules { return SubscriptionDescription(path: self.path, options: self.options, rules: rules) }
        return SubscriptionDescription(path: self.path, options: self.options, filter: self.filter ?? .all)
    }
}
