public import HeraldCore
import HeraldWire

extension HeraldClient: ManageableBroker {
    public func updateOptions(of entity: EntityPath, _ change: EntityOptionsChange) async throws -> EntityOptions {
        try entity.validate()
        let body = WireOptions(change)
        let info: WireEntityInfo
        switch entity.kind {
        case .queue: info = try await self.fetch(.updateQueue, ["queue": entity.name], body: body)
        case .topic: info = try await self.fetch(.updateTopic, ["topic": entity.name], body: body)
        case .subscription: info = try await self.fetch(.updateSubscription, ["topic": entity.topic ?? "", "subscription": entity.name], body: body)
        }
        return info.options.options()
    }

    public func rules(of subscription: EntityPath) async throws -> [SubscriptionRule] {
        try subscription.checkRulesTarget()
        let list: WireRuleList = try await self.fetch(.listRules, Self.ruleParameters(subscription))
        return try list.items.map { try $0.rule() }
    }

    public func addRule(_ rule: SubscriptionRule, to subscription: EntityPath) async throws {
        try subscription.checkRulesTarget()
        try rule.validate()
        let _: WireRule = try await self.fetch(
            .addRule, Self.ruleParameters(subscription, rule: rule.name), body: AddRuleRequest(filter: WireFilter(rule.filter)))
    }

    public func removeRule(named name: String, from subscription: EntityPath) async throws {
        try subscription.checkRulesTarget()
        try await self.invoke(.removeRule, Self.ruleParameters(subscription, rule: name))
    }

    /// The path parameters of the rule routes of `subscription`.
    private static func ruleParameters(_ subscription: EntityPath, rule: String? = nil) -> [String: String] {
        var parameters = ["topic": subscription.topic ?? "", "subscription": subscription.name]
        parameters["rule"] = rule
        return parameters
    }

    public func purge(_ entity: EntityPath) async throws -> Int {
        let response: PurgeResponse = try await self.fetch(.purge, body: EntityRequest(entity: WireEntity(entity)))
        return response.purged
    }

    public func lastSequenceNumber(of entity: EntityPath) async throws -> Int64 {
        guard let number = try await self.info(of: entity).lastSequenceNumber else {
            throw HeraldClientError.malformedResponse("the server did not tell the last sequence number of '\(entity.origin)'")
        }
        return number
    }

    public func sessions(of entity: EntityPath, after: String?, maxCount: Int) async throws -> [SessionInfo] {
        let list: SessionList = try await self.fetch(.listSessions, body: ListSessionsRequest(entity: WireEntity(entity), after: after, maxCount: maxCount))
        return list.sessions.map(\.session)
    }

    public func startBulkJob(_ action: DeadLetterAction, on entity: EntityPath, selection: DeadLetterSelection) async throws -> BulkJob {
        let job: WireBulkJob = try await self.fetch(.startBulkJob, body: StartBulkJobRequest(action, on: entity, selection: selection))
        return try Self.read(job)
    }

    public func bulkJob(_ id: String) async throws -> BulkJob {
        try Self.check(id)
        return try Self.read(try await self.fetch(.getBulkJob, ["job": id]))
    }

    public func bulkJobs() async throws -> [BulkJob] {
        let list: BulkJobList = try await self.fetch(.listBulkJobs)
        return try list.jobs.map(Self.read)
    }

    public func cancelBulkJob(_ id: String) async throws -> BulkJob {
        try Self.check(id)
        return try Self.read(try await self.fetch(.cancelBulkJob, ["job": id]))
    }

    // MARK: Inspection

    /// One page of the dead letters of `entity` that match `filter` (`POST /v1/dead-letters/search`),
    /// in one request; the server stops early at its answer budget.
    public func searchDeadLetters(
        of entity: EntityPath, matching filter: DeadLetterFilter, from sequenceNumber: Int64, maxCount: Int
    ) async throws -> DeadLetterPage {
        let request = DeadLetterSearchRequest(
            entity: WireEntity(entity.origin), filter: filter.isEmpty ? nil : WireDeadLetterFilter(filter), fromSequenceNumber: sequenceNumber,
            maxCount: maxCount)
        let response: DeadLetterSearchResponse = try await self.fetch(.searchDeadLetters, body: request)
        do {
            return DeadLetterPage(messages: try response.messages.map { try $0.received() }, nextSequenceNumber: response.nextSequenceNumber)
        } catch {
            throw HeraldClientError.malformedResponse("searchDeadLetters: \(error)")
        }
    }

    /// How the dead letters of `entity` that match `filter` group (`POST /v1/dead-letters/summary`).
    public func summarizeDeadLetters(of entity: EntityPath, matching filter: DeadLetterFilter) async throws -> DeadLetterSummary {
        let request = DeadLetterSummaryRequest(entity: WireEntity(entity.origin), filter: filter.isEmpty ? nil : WireDeadLetterFilter(filter))
        let response: DeadLetterSummaryResponse = try await self.fetch(.summarizeDeadLetters, body: request)
        return response.summary
    }

    /// The message with `sequenceNumber` in `entity` (`POST /v1/messages/get`).
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/messageNotFound`` when there is none.
    public func message(_ sequenceNumber: Int64, in entity: EntityPath) async throws -> ReceivedMessage {
        let wire: WireReceivedMessage = try await self.fetch(.getMessage, body: GetMessageRequest(entity: WireEntity(entity), sequenceNumber: sequenceNumber))
        do {
            return try wire.received()
        } catch {
            throw HeraldClientError.malformedResponse("getMessage: \(error)")
        }
    }

    // MARK: Helpers

    /// The `GET` answer of the queue, topic or subscription of `entity` (its dead-letter queue's owner).
    private func info(of entity: EntityPath) async throws -> WireEntityInfo {
        let path = entity.origin
        try path.validate()
        switch path.kind {
        case .queue: return try await self.fetch(.getQueue, ["queue": path.name])
        case .topic: return try await self.fetch(.getTopic, ["topic": path.name])
        case .subscription: return try await self.fetch(.getSubscription, ["topic": path.topic ?? "", "subscription": path.name])
        }
    }

    /// A job id that can travel in a URL path: the stores' ids never need escaping, and an empty
    /// one would name the list instead.
    private static func check(_ id: String) throws(HeraldError) {
        if id.isEmpty || id.utf8.count > 100 { throw BulkJob.notFound(id) }
    }

    private static func read(_ job: WireBulkJob) throws -> BulkJob {
        do {
            return try job.job()
        } catch {
            throw HeraldClientError.malformedResponse("a bulk job: \(error)")
        }
    }
}
