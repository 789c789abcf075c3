public import HeraldCore

extension PostgresBroker: ManageableBroker {
    /// How many messages one transaction of a purge deletes.
    static let purgeStep = 1000

    /// Stores the change; this broker uses the new options at once, and other brokers of the
    /// schema once its notification reaches them (they forget the entity and read it again).
    public func updateOptions(of entity: EntityPath, _ change: EntityOptionsChange) async throws -> EntityOptions {
        let record = try await self.perform("updateOptions") { try await $0.updateOptions(of: entity, change) }
        self.cache.store(record)
        self.waker.announceChange(ofEntity: record.path.entityKey)
        if let topic = record.path.topic, record.path.kind == .subscription { self.waker.announceChange(ofEntity: topic) }
        return record.options
    }

    public func rules(of subscription: EntityPath) async throws -> [SubscriptionRule] {
        try await self.perform("rules", write: false, transaction: false) { try await $0.rules(of: subscription) }
    }

    /// Stores the new rule; this broker's next send to the topic reads the subscriptions again (the
    /// topic row's generation changed), and so do other brokers of the schema.
    public func addRule(_ rule: SubscriptionRule, to subscription: EntityPath) async throws {
        try subscription.checkRulesTarget()
        try rule.validate()
        let record = try await self.perform("addRule") { store in
            try await store.changeRules(of: subscription) { rules throws(HeraldError) in try rules.adding(rule, of: subscription) }
        }
        self.announceRuleChange(record)
    }

    public func removeRule(named name: String, from subscription: EntityPath) async throws {
        let record = try await self.perform("removeRule") { store in
            try await store.changeRules(of: subscription) { rules throws(HeraldError) in try rules.removing(named: name, of: subscription) }
        }
        self.announceRuleChange(record)
    }

    private func announceRuleChange(_ record: CachedEntity) {
        self.cache.store(record)
        self.waker.announceChange(ofEntity: record.path.entityKey)
        if let topic = record.path.topic { self.waker.announceChange(ofEntity: topic) }
    }

    public func purge(_ entity: EntityPath) async throws -> Int {
        try entity.checkReceiveSource()
        let bound = try await self.lastSequenceNumber(of: entity)
        var purged = 0
        while true {
            let step = Self.purgeStep
            let deleted = try await self.perform("purge") { try await $0.purge(entity, upTo: bound, maxCount: step) }
            purged += deleted
            if deleted < step { return purged }
        }
    }

    public func lastSequenceNumber(of entity: EntityPath) async throws -> Int64 {
        try await self.perform("lastSequenceNumber", write: false, transaction: false) { try await $0.lastSequenceNumber(of: entity) }
    }

    public func sessions(of entity: EntityPath, after: String?, maxCount: Int) async throws -> [SessionInfo] {
        try await self.perform("sessions", write: false, transaction: false) { try await $0.sessions(of: entity, after: after, maxCount: maxCount) }
    }

    public func startBulkJob(_ action: DeadLetterAction, on entity: EntityPath, selection: DeadLetterSelection) async throws -> BulkJob {
        try action.checkJob(on: entity)
        let deadLetters = entity.deadLetter
        let numbers = try await selection.sequenceNumbers(in: deadLetters) { from, maxCount in
            try await self.peek(deadLetters, fromSequenceNumber: from, maxCount: maxCount)
        }
        let id = RandomIdentifier.uuidString().lowercased()
        let job = try await self.perform("startBulkJob") { try await $0.startBulkJob(id: id, action: action, on: entity, selection: numbers) }
        if !job.isFinished { self.jobs.add(job.id) }
        return job
    }

    public func bulkJob(_ id: String) async throws -> BulkJob {
        try await self.perform("bulkJob", write: false, transaction: false) { try await $0.bulkJob(id) }
    }

    public func bulkJobs() async throws -> [BulkJob] {
        try await self.perform("bulkJobs", write: false, transaction: false) { try await $0.bulkJobs() }
    }

    public func cancelBulkJob(_ id: String) async throws -> BulkJob {
        try await self.perform("cancelBulkJob") { try await $0.cancelBulkJob(id) }
    }

    /// Works through the running bulk jobs, those other brokers of the schema started included,
    /// until the broker closes (see ``run()``).
    func runBulkJobs() async {
        let stepSize = max(1, self.configuration.bulkJobStepSize)
        await self.jobs.run(
            runningJobs: { try await self.perform("runningBulkJobs", write: false, transaction: false) { try await $0.runningBulkJobs() } },
            step: { id in
                let (job, wake) = try await self.perform("bulkJobStep") { try await $0.bulkJobStep(id, maxCount: stepSize) }
                self.announce(wake)
                return job?.isFinished == false
            }
        )
    }
}
