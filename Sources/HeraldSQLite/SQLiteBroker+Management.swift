public import HeraldCore

extension SQLiteBroker: ManageableBroker {
    /// How many messages one transaction of a purge deletes.
    static let purgeStep = 1000

    public func updateOptions(of entity: EntityPath, _ change: EntityOptionsChange) async throws -> EntityOptions {
        try await self.committer.perform { try $0.updateOptions(of: entity, change) }
    }

    public func rules(of subscription: EntityPath) async throws -> [SubscriptionRule] {
        try await self.committer.perform(readOnly: true) { try $0.rules(of: subscription) }
    }

    public func addRule(_ rule: SubscriptionRule, to subscription: EntityPath) async throws {
        try subscription.checkRulesTarget()
        try rule.validate()
        try await self.committer.perform { transaction in
            try transaction.changeRules(of: subscription) { rules throws(HeraldError) in try rules.adding(rule, of: subscription) }
        }
    }

    public func removeRule(named name: String, from subscription: EntityPath) async throws {
        try await self.committer.perform { transaction in
            try transaction.changeRules(of: subscription) { rules throws(HeraldError) in try rules.removing(named: name, of: subscription) }
        }
    }

    public func purge(_ entity: EntityPath) async throws -> Int {
        try entity.checkReceiveSource()
        let bound = try await self.committer.perform(readOnly: true) { try $0.lastSequenceNumber(of: entity) }
        var purged = 0
        while true {
            let step = Self.purgeStep
            let deleted = try await self.committer.perform { try $0.purge(entity, upTo: bound, maxCount: step) }
            purged += deleted
            if deleted < step { return purged }
        }
    }

    public func lastSequenceNumber(of entity: EntityPath) async throws -> Int64 {
        try await self.committer.perform(readOnly: true) { try $0.lastSequenceNumber(of: entity) }
    }

    public func sessions(of entity: EntityPath, after: String?, maxCount: Int) async throws -> [SessionInfo] {
        try await self.committer.perform(readOnly: true) { try $0.sessions(of: entity, after: after, maxCount: maxCount) }
    }

    public func startBulkJob(_ action: DeadLetterAction, on entity: EntityPath, selection: DeadLetterSelection) async throws -> BulkJob {
        try action.checkJob(on: entity)
        let deadLetters = entity.deadLetter
        let numbers = try await selection.sequenceNumbers(in: deadLetters) { from, maxCount in
            try await self.peek(deadLetters, fromSequenceNumber: from, maxCount: maxCount)
        }
        let id = RandomIdentifier.uuidString().lowercased()
        let job = try await self.committer.perform { try $0.startBulkJob(id: id, action: action, on: entity, selection: numbers) }
        if !job.isFinished { self.jobs.add(job.id) }
        return job
    }

    public func bulkJob(_ id: String) async throws -> BulkJob {
        try await self.committer.perform(readOnly: true) { try $0.bulkJob(id) }
    }

    public func bulkJobs() async throws -> [BulkJob] {
        try await self.committer.perform(readOnly: true) { try $0.bulkJobs() }
    }

    /// Works through the running bulk jobs until the broker closes (see ``run()``).
    func runBulkJobs() async {
        let committer = self.committer
        let stepSize = max(1, self.configuration.bulkJobStepSize)
        // Only this broker starts jobs on its file: the runner knows them all without looking.
        await self.jobs.run { id in try await committer.perform { try $0.bulkJobStep(id, maxCount: stepSize) }?.isFinished == false }
    }

    public func cancelBulkJob(_ id: String) async throws -> BulkJob {
        try await self.committer.perform { try $0.cancelBulkJob(id) }
    }
}
