public import HeraldCore
import HeraldWire

extension HeraldClient {
    // MARK: Entities

    // Names are checked here, as the embedded brokers check them first, so that a name that could
    // not travel in a URL path fails exactly as it does in a store.

    public func createQueue(_ name: String, options: EntityOptions) async throws {
        try EntityPath.queue(name).validate()
        try options.validate()
        let _: WireEntityInfo = try await self.fetch(.createQueue, ["queue": name], body: WireOptions(options))
    }

    public func deleteQueue(_ name: String) async throws {
        try EntityPath.queue(name).validate()
        try await self.invoke(.deleteQueue, ["queue": name])
    }

    public func listQueues() async throws -> [EntityDescription] {
        let list: WireEntityList = try await self.fetch(.listQueues)
        return try list.items.map { try EntityStatus($0).entityDescription }
    }

    public func createTopic(_ name: String, options: EntityOptions) async throws {
        try EntityPath.topic(name).validate()
        try options.validate()
        let _: WireEntityInfo = try await self.fetch(.createTopic, ["topic": name], body: WireOptions(options))
    }

    public func deleteTopic(_ name: String) async throws {
        try EntityPath.topic(name).validate()
        try await self.invoke(.deleteTopic, ["topic": name])
    }

    public func listTopics() async throws -> [EntityDescription] {
        let list: WireEntityList = try await self.fetch(.listTopics)
        return try list.items.map { try EntityStatus($0).entityDescription }
    }

    public func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws {
        try EntityPath.subscription(name, of: topic).validate()
        try options.validate()
        try filter.validate()
        let request = CreateSubscriptionRequest(options: WireOptions(options), filter: WireFilter(filter))
        let _: WireEntityInfo = try await self.fetch(.createSubscription, ["topic": topic, "subscription": name], body: request)
    }

    public func deleteSubscription(_ name: String, topic: String) async throws {
        try EntityPath.subscription(name, of: topic).validate()
        try await self.invoke(.deleteSubscription, ["topic": topic, "subscription": name])
    }

    public func listSubscriptions(topic: String) async throws -> [SubscriptionDescription] {
        try EntityName.validate(topic)
        let list: WireEntityList = try await self.fetch(.listSubscriptions, ["topic": topic])
        return try list.items.map { try EntityStatus($0).subscriptionDescription }
    }

    // MARK: Inspection

    /// One queue, topic or subscription with its options and, for queues and subscriptions, its
    /// counts (`GET /v1/queues/{queue}` and its siblings).
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/entityNotFound`` when it does not exist.
    public func status(of entity: EntityPath) async throws -> EntityStatus {
        let path = entity.origin
        try path.validate()
        let info: WireEntityInfo
        switch path.kind {
        case .queue: info = try await self.fetch(.getQueue, ["queue": path.name])
        case .topic: info = try await self.fetch(.getTopic, ["topic": path.name])
        case .subscription:
            info = try await self.fetch(.getSubscription, ["topic": path.topic ?? "", "subscription": path.name])
        }
        return try EntityStatus(info)
    }

    /// Every queue, topic and subscription with its options and, for queues and subscriptions,
    /// its counts, in one request (`GET /v1/stats`).
    public func stats() async throws -> [EntityStatus] {
        let list: WireEntityList = try await self.fetch(.stats)
        return try list.items.map(EntityStatus.init)
    }
}
