import HeraldClient
import HeraldCore

/// Lists entities with their counts, the same way for a server and for a data directory: the
/// one place `stats`, `list` and `show` get their data from.
enum Inventory {
    /// Every queue and subscription, and with `includingTopics` every topic, with counts (none for
    /// topics), ordered by path. A server answers in one request (`GET /v1/stats`); a data
    /// directory is listed and counted entity by entity.
    static func all(in broker: any MessageBroker, includingTopics: Bool = false) async throws -> [EntityStatus] {
        var statuses: [EntityStatus]
        if let client = broker as? HeraldClient {
            statuses = try await client.stats()
        } else {
            statuses = []
            for queue in try await broker.listQueues() {
                statuses.append(EntityStatus(path: queue.path, options: queue.options, counts: try await broker.counts(of: queue.path)))
            }
            for topic in try await broker.listTopics() {
                statuses.append(EntityStatus(path: topic.path, options: topic.options))
                for subscription in try await broker.listSubscriptions(topic: topic.path.name) {
                    statuses.append(
                        EntityStatus(
                            path: subscription.path, options: subscription.options, filter: subscription.filter, rules: subscription.rules,
                            counts: try await broker.counts(of: subscription.path)
                        )
                    )
                }
            }
        }
        if !includingTopics { statuses.removeAll { $0.path.kind == .topic } }
        return statuses.sorted { $0.path.description < $1.path.description }
    }

    /// One queue, topic or subscription with its options and (except for a topic) its counts.
    ///
    /// - Throws: ``HeraldCore/HeraldError/Code/entityNotFound`` when it does not exist.
    static func status(of path: EntityPath, in broker: any MessageBroker) async throws -> EntityStatus {
        if let client = broker as? HeraldClient { return try await client.status(of: path) }
        try path.validate()
        let found: EntityStatus?
        switch path.kind {
        case .queue:
            found = try await broker.listQueues().first { $0.path.name == path.name }.map { EntityStatus(path: $0.path, options: $0.options) }
        case .topic:
            found = try await broker.listTopics().first { $0.path.name == path.name }.map { EntityStatus(path: $0.path, options: $0.options) }
        case .subscription:
            found = try await broker.listSubscriptions(topic: path.topic ?? "").first { $0.path.name == path.name }.map {
                EntityStatus(path: $0.path, options: $0.options, filter: $0.filter, rules: $0.rules)
            }
        }
        guard var status = found else {
            throw HeraldError(.entityNotFound, "no \(path.kind.rawValue) '\(path.origin)'")
        }
        if path.kind != .topic { status.counts = try await broker.counts(of: status.path) }
        return status
    }

    /// The entities of one kind (queues, topics, or the subscriptions of `topic`), without counts.
    static func list(_ kind: EntityPath.Kind, topic: String? = nil, in broker: any MessageBroker) async throws -> [EntityStatus] {
        switch kind {
        case .queue: try await broker.listQueues().map { EntityStatus(path: $0.path, options: $0.options) }
        case .topic: try await broker.listTopics().map { EntityStatus(path: $0.path, options: $0.options) }
        case .subscription:
            try await broker.listSubscriptions(topic: topic ?? "").map {
                EntityStatus(path: $0.path, options: $0.options, filter: $0.filter, rules: $0.rules)
            }
        }
    }
}
