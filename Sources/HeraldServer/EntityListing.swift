import HeraldCore
import HeraldWire

/// The wire descriptions of entities, and the walk over all of them that stats and metrics share.
enum EntityListing {
    /// A queue or topic.
    static func info(_ description: EntityDescription) -> WireEntityInfo {
        Self.info(description, counts: nil)
    }

    /// A queue or topic, with counts for a queue.
    static func info(_ description: EntityDescription, counts: EntityCounts?) -> WireEntityInfo {
        WireEntityInfo(
            kind: description.path.kind.rawValue, path: description.path.description, entity: WireEntity(description.path),
            options: WireOptions(description.options), counts: counts.map(WireCounts.init)
        )
    }

    /// A subscription, with counts when given.
    static func info(_ description: SubscriptionDescription, counts: EntityCounts? = nil) -> WireEntityInfo {
        WireEntityInfo(
            kind: description.path.kind.rawValue, path: description.path.description, entity: WireEntity(description.path),
            options: WireOptions(description.options), filter: WireFilter(description.filter), rules: description.rules.map(WireRule.init),
            counts: counts.map(WireCounts.init)
        )
    }

    /// Every queue and subscription with its counts.
    static func countedEntities(_ broker: any MessageBroker) async throws -> [(EntityPath, EntityCounts)] {
        var result: [(EntityPath, EntityCounts)] = []
        for queue in try await broker.listQueues() {
            if let counts = try await Self.counts(of: queue.path, broker) { result.append((queue.path, counts)) }
        }
        for topic in try await broker.listTopics() {
            for subscription in try await Self.subscriptions(of: topic.path.name, broker) {
                if let counts = try await Self.counts(of: subscription.path, broker) { result.append((subscription.path, counts)) }
            }
        }
        return result
    }

    /// `GET /v1/stats`: every queue and subscription with counts, and every topic without; each
    /// with its last sequence number when the store can tell (the console's send rate is its change).
    static func stats(_ broker: any MessageBroker) async throws -> [WireEntityInfo] {
        var items: [WireEntityInfo] = []
        for queue in try await broker.listQueues() {
            guard let counts = try await Self.counts(of: queue.path, broker) else { continue }
            items.append(try await Self.withLastSequenceNumber(Self.info(queue, counts: counts), of: queue.path, broker))
        }
        for topic in try await broker.listTopics() {
            items.append(try await Self.withLastSequenceNumber(Self.info(topic), of: topic.path, broker))
            for subscription in try await Self.subscriptions(of: topic.path.name, broker) {
                guard let counts = try await Self.counts(of: subscription.path, broker) else { continue }
                items.append(try await Self.withLastSequenceNumber(Self.info(subscription, counts: counts), of: subscription.path, broker))
            }
        }
        return items
    }

    /// `info` with the last sequence number of `path`; without it when the store cannot tell or
    /// the entity was deleted since it was listed.
    private static func withLastSequenceNumber(_ info: WireEntityInfo, of path: EntityPath, _ broker: any MessageBroker) async throws -> WireEntityInfo {
        guard let manageable = broker as? any ManageableBroker else { return info }
        var info = info
        do {
            info.lastSequenceNumber = try await manageable.lastSequenceNumber(of: path)
        } catch let error as HeraldError where error.code == .entityNotFound {
            info.lastSequenceNumber = nil
        }
        return info
    }

    /// The counts of `path`, or `nil` when it was deleted since it was listed.
    private static func counts(of path: EntityPath, _ broker: any MessageBroker) async throws -> EntityCounts? {
        do {
            return try await broker.counts(of: path)
        } catch let error as HeraldError where error.code == .entityNotFound {
            return nil
        }
    }

    /// The subscriptions of `topic`; none when it was deleted since it was listed.
    private static func subscriptions(of topic: String, _ broker: any MessageBroker) async throws -> [SubscriptionDescription] {
        do {
            return try await broker.listSubscriptions(topic: topic)
        } catch let error as HeraldError where error.code == .entityNotFound {
            return []
        }
    }
}
