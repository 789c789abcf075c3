import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

extension Handlers {
    /// The store's operator operations (GUARANTEES.md §6); both of Herald's stores have them.
    private var manageable: any ManageableBroker {
        get throws {
            guard let broker = self.broker as? any ManageableBroker else {
                throw HeraldError(.invalidArgument, "this server's store cannot update options or rules, purge or run bulk jobs")
            }
            return broker
        }
    }

    /// The routes that change entities and dead letters in bulk: options updates, a subscription's
    /// rules, purges and bulk jobs. Each needs `manage` (checked before) and a scope covering every
    /// entity it names.
    func handleManagement(_ route: WireRoute, parameters: [String: String], body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .updateQueue, .updateTopic, .updateSubscription:
            let path: EntityPath
            switch route {
            case .updateQueue: path = .queue(parameters["queue"] ?? "")
            case .updateTopic: path = .topic(parameters["topic"] ?? "")
            default: path = .subscription(parameters["subscription"] ?? "", of: parameters["topic"] ?? "")
            }
            try caller.requireScope(path)
            try path.validate()
            let change = try BodyDecoder.decode(WireOptions.self, from: body).change()
            _ = try await self.manageable.updateOptions(of: path, change)
            switch path.kind {
            case .queue: return try Reply.json(try await self.queueInfo(path.name))
            case .topic: return try Reply.json(try await self.topicInfo(path.name))
            case .subscription: return try Reply.json(try await self.subscriptionInfo(path.name, topic: path.topic ?? ""))
            }

        case .listRules, .addRule, .removeRule:
            let path = EntityPath.subscription(parameters["subscription"] ?? "", of: parameters["topic"] ?? "")
            try caller.requireScope(path)
            switch route {
            case .listRules:
                return try Reply.json(WireRuleList(items: try await self.manageable.rules(of: path).map(WireRule.init)))
            case .addRule:
                let request = try BodyDecoder.decodeOptional(AddRuleRequest.self, from: body)
                let rule = SubscriptionRule(name: parameters["rule"] ?? "", filter: try request?.filter?.filter() ?? .all)
                try await self.manageable.addRule(rule, to: path)
                return try Reply.json(WireRule(rule), status: 201)
            default:
                try await self.manageable.removeRule(named: parameters["rule"] ?? "", from: path)
                return Reply.noContent()
            }

        case .purge:
            let request = try BodyDecoder.decode(EntityRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            return try Reply.json(PurgeResponse(purged: try await self.manageable.purge(entity)))

        case .startBulkJob:
            let request = try BodyDecoder.decode(StartBulkJobRequest.self, from: body)
            let entity = try request.entity.path()
            let (action, selection) = try request.job()
            try caller.requireScope(entity)
            if let target = action.target { try caller.requireScope(target) }
            let job = try await self.manageable.startBulkJob(action, on: entity, selection: selection)
            return try Reply.json(WireBulkJob(job), status: 202)

        case .listBulkJobs:
            let jobs = try await self.manageable.bulkJobs().filter { caller.sees($0) }
            return try Reply.json(BulkJobList(jobs: jobs.map(WireBulkJob.init)))

        case .getBulkJob, .cancelBulkJob:
            let id = parameters["job"] ?? ""
            let broker = try self.manageable
            let job = try await broker.bulkJob(id)
            // A job outside the key's scope is as unknown to it as one that does not exist.
            guard caller.sees(job) else { throw BulkJob.notFound(id) }
            if route == .getBulkJob { return try Reply.json(WireBulkJob(job)) }
            return try Reply.json(WireBulkJob(try await broker.cancelBulkJob(id)))

        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// The routes that read messages and sessions for people: one message, dead-letter searches
    /// and summaries, sessions. Each needs `listen` (checked before) and a scope covering the entity.
    func handleInspection(_ route: WireRoute, body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .getMessage:
            let request = try BodyDecoder.decode(GetMessageRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            try entity.checkReceiveSource()
            return try Reply.json(WireReceivedMessage(try await self.broker.message(request.sequenceNumber, in: entity)))

        case .searchDeadLetters:
            let request = try BodyDecoder.decode(DeadLetterSearchRequest.self, from: body)
            let entity = try Self.deadLetterOwner(request.entity)
            try caller.requireScope(entity)
            let page = try await self.broker.searchDeadLetters(
                of: entity, matching: try request.filter?.filter() ?? .all, from: request.fromSequenceNumber ?? 0, maxCount: request.maxCount ?? 100,
                maxBytes: self.messageBudget
            )
            return try Reply.json(DeadLetterSearchResponse(messages: page.messages.map(WireReceivedMessage.init), nextSequenceNumber: page.nextSequenceNumber))

        case .listSessions:
            let request = try BodyDecoder.decode(ListSessionsRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let sessions = try await self.manageable.sessions(of: entity, after: request.after, maxCount: request.maxCount ?? 100)
            return try Reply.json(SessionList(sessions: sessions.map(WireSessionInfo.init)))

        case .summarizeDeadLetters:
            let request = try BodyDecoder.decode(DeadLetterSummaryRequest.self, from: body)
            let entity = try Self.deadLetterOwner(request.entity)
            try caller.requireScope(entity)
            let summary = try await self.broker.summarizeDeadLetters(of: entity, matching: try request.filter?.filter() ?? .all)
            return try Reply.json(DeadLetterSummaryResponse(summary))

        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// The queue or subscription whose dead letters a request names (itself, or through its
    /// dead-letter queue).
    private static func deadLetterOwner(_ entity: WireEntity) throws(HeraldError) -> EntityPath {
        let path = try entity.path().origin
        try path.checkReceiveSource()
        return path
    }
}

extension Caller {
    /// Whether the key's scope covers the job's entity and a move's target.
    func sees(_ job: BulkJob) -> Bool {
        guard let key = self.key else { return true }
        return key.covers(entityName: job.entity.scopeName) && (job.action.target.map { key.covers(entityName: $0.scopeName) } ?? true)
    }
}
