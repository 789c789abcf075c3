import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

extension Handlers {
    /// The management routes: create, read, delete and list queues, topics and subscriptions, and stats.
    func handleEntity(_ route: WireRoute, parameters: [String: String], body: ByteBuffer, caller: Caller) async throws -> Response {
        let queue = parameters["queue"] ?? ""
        let topic = parameters["topic"] ?? ""
        let subscription = parameters["subscription"] ?? ""
        switch route {
        case .listQueues:
            try caller.requireNamespace()
            return try Reply.json(WireEntityList(items: try await self.broker.listQueues().map(EntityListing.info)))
        case .listTopics:
            try caller.requireNamespace()
            return try Reply.json(WireEntityList(items: try await self.broker.listTopics().map(EntityListing.info)))
        case .stats:
            try caller.requireNamespace()
            return try Reply.json(WireEntityList(items: try await EntityListing.stats(self.broker)))

        case .createQueue:
            try caller.requireScope(entityName: queue)
            try EntityName.validate(queue)
            let options = try BodyDecoder.decodeOptional(WireOptions.self, from: body) ?? WireOptions(EntityOptions())
            try await self.broker.createQueue(queue, options: options.options())
            return try Reply.json(try await self.queueInfo(queue), status: 201)
        case .getQueue:
            try caller.requireScope(entityName: queue)
            try EntityName.validate(queue)
            return try Reply.json(try await self.queueInfo(queue))
        case .deleteQueue:
            try caller.requireScope(entityName: queue)
            try EntityName.validate(queue)
            try await self.broker.deleteQueue(queue)
            return Reply.noContent()

        case .createTopic:
            try caller.requireScope(entityName: topic)
            try EntityName.validate(topic)
            let options = try BodyDecoder.decodeOptional(WireOptions.self, from: body) ?? WireOptions(EntityOptions())
            try await self.broker.createTopic(topic, options: options.options())
            return try Reply.json(try await self.topicInfo(topic), status: 201)
        case .getTopic:
            try caller.requireScope(entityName: topic)
            try EntityName.validate(topic)
            return try Reply.json(try await self.topicInfo(topic))
        case .deleteTopic:
            try caller.requireScope(entityName: topic)
            try EntityName.validate(topic)
            try await self.broker.deleteTopic(topic)
            return Reply.noContent()

        case .listSubscriptions:
            try caller.requireScope(entityName: topic)
            try EntityName.validate(topic)
            let items = try await self.broker.listSubscriptions(topic: topic).map { EntityListing.info($0) }
            return try Reply.json(WireEntityList(items: items))
        case .createSubscription:
            try caller.requireScope(entityName: topic)
            try EntityName.validate(topic)
            try EntityName.validate(subscription)
            let request = try BodyDecoder.decodeOptional(CreateSubscriptionRequest.self, from: body)
            let options = (request?.options ?? WireOptions(EntityOptions())).options()
            let filter = try request?.filter?.filter() ?? .all
            try await self.broker.createSubscription(subscription, topic: topic, options: options, filter: filter)
            return try Reply.json(try await self.subscriptionInfo(subscription, topic: topic), status: 201)
        case .getSubscription:
            try caller.requireScope(entityName: topic)
            try EntityName.validate(topic)
            try EntityName.validate(subscription)
            return try Reply.json(try await self.subscriptionInfo(subscription, topic: topic))
        case .deleteSubscription:
            try caller.requireScope(entityName: topic)
            try EntityName.validate(topic)
            try EntityName.validate(subscription)
            try await self.broker.deleteSubscription(subscription, topic: topic)
            return Reply.noContent()
        default:
            throw ServerError.notFound(route.path)
        }
    }

    func queueInfo(_ name: String) async throws -> WireEntityInfo {
        guard let description = try await self.broker.listQueues().first(where: { $0.path.name == name }) else {
            throw HeraldError(.entityNotFound, "no queue '\(name)'")
        }
        var info = EntityListing.info(description, counts: try await self.broker.counts(of: description.path))
        info.lastSequenceNumber = try await self.lastSequenceNumber(of: description.path)
        return info
    }

    func topicInfo(_ name: String) async throws -> WireEntityInfo {
        guard let description = try await self.broker.listTopics().first(where: { $0.path.name == name }) else {
            throw HeraldError(.entityNotFound, "no topic '\(name)'")
        }
        var info = EntityListing.info(description)
        info.lastSequenceNumber = try await self.lastSequenceNumber(of: description.path)
        return info
    }

    func subscriptionInfo(_ name: String, topic: String) async throws -> WireEntityInfo {
        guard let description = try await self.broker.listSubscriptions(topic: topic).first(where: { $0.path.name == name }) else {
            throw HeraldError(.entityNotFound, "no subscription '\(name)' of topic '\(topic)'")
        }
        var info = EntityListing.info(description, counts: try await self.broker.counts(of: description.path))
        info.lastSequenceNumber = try await self.lastSequenceNumber(of: description.path)
        return info
    }

    /// The entity's last sequence number, when the store can tell.
    private func lastSequenceNumber(of path: EntityPath) async throws -> Int64? {
        guard let broker = self.broker as? any ManageableBroker else { return nil }
        return try await broker.lastSequenceNumber(of: path)
    }
}
