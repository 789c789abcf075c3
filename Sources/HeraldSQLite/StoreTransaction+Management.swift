import Foundation
import GRDB
import HeraldCore

// The operator's operations (GUARANTEES.md §6): options updates, purges, and the steps of bulk
// jobs on dead letters.

extension StoreTransaction {
    // MARK: Options

    func updateOptions(of path: EntityPath, _ change: EntityOptionsChange) throws -> EntityOptions {
        try path.validate()
        if path.isDeadLetter { throw HeraldError(.invalidArgument, "a dead-letter queue has the options of its queue or subscription") }
        let record = try path.resolved(self.state.entity(path.entityKey))
        let options = try change.applied(to: record.options)
        try self.execute("UPDATE entity SET options = ? WHERE id = ?", [try StoredJSON.encode(options), record.id])
        // Last: nothing after this can fail, so the cache never runs ahead of the file.
        record.options = options
        return options
    }

    // MARK: Rules

    func rules(of path: EntityPath) throws -> [SubscriptionRule] {
        try path.checkRulesTarget()
        return try path.resolved(self.state.entity(path.entityKey)).rules
    }

    /// Stores `change` applied to the rules of `path`; the writer's next send fans out by them.
    func changeRules(of path: EntityPath, _ change: ([SubscriptionRule]) throws(HeraldError) -> [SubscriptionRule]) throws {
        try path.checkRulesTarget()
        let record = try path.resolved(self.state.entity(path.entityKey))
        let rules = try change(record.rules)
        try self.execute("UPDATE entity SET rules = ? WHERE id = ?", [try StoredJSON.encode(rules), record.id])
        // Last: nothing after this can fail, so the cache never runs ahead of the file.
        record.rules = rules
    }

    func lastSequenceNumber(of path: EntityPath) throws -> Int64 {
        try path.validate()
        return try path.origin.resolved(self.state.entity(path.entityKey)).lastSequence
    }

    // MARK: Sessions

    func sessions(of path: EntityPath, after: String?, maxCount: Int) throws -> [SessionInfo] {
        try HeraldLimits.checkReceiveCount(maxCount)
        try path.checkSessionPath()
        let entity = try self.receiveSource(path)
        try path.checkSessionsEnabled(entity.options)
        let after = after ?? ""
        var messages: [String: Int] = [:]
        for row in try Row.fetchAll(
            self.db.cachedStatement(
                sql: """
                    SELECT session_id, COUNT(*) FROM message WHERE entity_id = ? AND dlq = 0 AND session_id > ?
                    GROUP BY session_id ORDER BY session_id LIMIT ?
                    """),
            arguments: [entity.id, after, maxCount]
        ) {
            messages[row[0]] = row[1]
        }
        var stored: [String: (stateSize: Int?, isParked: Bool)] = [:]
        for row in try Row.fetchAll(
            self.db.cachedStatement(
                sql: "SELECT session_id, length(state), parked FROM session WHERE entity_id = ? AND session_id > ? ORDER BY session_id LIMIT ?"),
            arguments: [entity.id, after, maxCount]
        ) {
            let (size, parked): (Int?, Bool) = (row[1], row[2])
            if size != nil || parked { stored[row[0]] = (size, parked) }
        }
        var locks: [String: Date] = [:]
        for (id, hold) in self.state.sessionLocks[entity.id] ?? [:] where hold.lockedUntil > self.monotonic && id > after {
            locks[id] = self.wallTime(ofMonotonic: hold.lockedUntil)
        }
        return SessionInfo.merge(messages: messages, stored: stored, locks: locks, after: after, maxCount: maxCount)
    }

    // MARK: Purge

    /// Deletes up to `maxCount` of the waiting messages (or, on a dead-letter path, dead letters)
    /// of `path` with sequence numbers up to `bound`; returns how many it deleted.
    func purge(_ path: EntityPath, upTo bound: Int64, maxCount: Int) throws -> Int {
        let entity = try self.receiveSource(path)
        if !path.isDeadLetter { try self.sweep(entity) }
        try self.execute(
            """
            DELETE FROM message WHERE entity_id = ? AND seq IN (
                SELECT seq FROM message WHERE entity_id = ? AND dlq = ? AND state = 0 AND seq <= ?
                AND (lock_nonce IS NULL OR locked_until <= ?) ORDER BY seq LIMIT ?)
            """,
            [entity.id, entity.id, path.isDeadLetter, bound, self.monotonic, maxCount]
        )
        return self.db.changesCount
    }

    // MARK: Bulk jobs

    static let jobColumns =
        "id, entity_id, entity, action, target, target_kind, state, total, processed, applied, not_found, failed, failure, created_at, updated_at"

    /// Starts a job on the dead letters of `path` with the frozen `selection`, stored whole in
    /// this transaction; forgets finished jobs past their retention.
    func startBulkJob(id: String, action: DeadLetterAction, on path: EntityPath, selection: [Int64]) throws -> BulkJob {
        try action.checkJob(on: path)
        let entity = try path.resolved(self.state.entity(path.entityKey))
        if let target = action.target { _ = try target.resolved(self.state.entity(target.entityKey)) }
        try self.execute(
            "DELETE FROM bulk_job WHERE state <> 'running' AND updated_at < ?",
            [self.nowMilliseconds - BulkJob.retention.milliseconds]
        )
        let job = BulkJob(
            id: id, entity: entity.path, action: action, state: selection.isEmpty ? .completed : .running, total: selection.count,
            createdAt: Date(millisecondsSince1970: self.nowMilliseconds), updatedAt: Date(millisecondsSince1970: self.nowMilliseconds)
        )
        try self.execute(
            """
            INSERT INTO bulk_job (id, entity_id, entity, action, target, target_kind, state, total, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                id, entity.id, entity.path.entityKey, action.name, action.target?.entityKey, action.target?.kind.rawValue, job.state.rawValue,
                selection.count, self.nowMilliseconds, self.nowMilliseconds,
            ]
        )
        for start in stride(from: 0, to: selection.count, by: 10_000) {
            let chunk = selection[start..<min(start + 10_000, selection.count)]
            // json_each numbers the array's elements from 0 (its `key`).
            try self.execute(
                "INSERT INTO bulk_job_item (job_id, position, seq) SELECT ?, ? + key, value FROM json_each(?)",
                [id, start, Self.jsonArray(chunk)]
            )
        }
        return job
    }

    /// The job `id` with the id of its entity.
    private func loadJob(_ id: String) throws -> (job: BulkJob, entityId: Int64)? {
        guard let row = try Row.fetchOne(self.db.cachedStatement(sql: "SELECT \(Self.jobColumns) FROM bulk_job WHERE id = ?"), arguments: [id]) else {
            return nil
        }
        return (try Self.decodeJob(row), row[1])
    }

    static func decodeJob(_ row: Row) throws -> BulkJob {
        let targetKey: String? = row[4]
        let targetKind: String? = row[5]
        let target = try targetKey.map { key throws(HeraldError) in try EntityPath(parsing: key, isTopic: targetKind == "topic") }
        return BulkJob(
            id: row[0], entity: try EntityPath(parsing: row[2]), action: try DeadLetterAction(name: row[3], target: target),
            state: try BulkJob.State(stored: row[6]), total: row[7], processed: row[8], applied: row[9], notFound: row[10], failed: row[11],
            failure: row[12], createdAt: Date(millisecondsSince1970: row[13]), updatedAt: Date(millisecondsSince1970: row[14])
        )
    }

    func bulkJob(_ id: String) throws -> BulkJob {
        guard let (job, _) = try self.loadJob(id) else { throw BulkJob.notFound(id) }
        return job
    }

    func bulkJobs() throws -> [BulkJob] {
        try Row.fetchAll(
            self.db.cachedStatement(sql: "SELECT \(Self.jobColumns) FROM bulk_job ORDER BY created_at DESC, id LIMIT ?"),
            arguments: [BulkJob.listLimit]
        ).map(Self.decodeJob)
    }

    func cancelBulkJob(_ id: String) throws -> BulkJob {
        guard var job = try self.loadJob(id)?.job else { throw BulkJob.notFound(id) }
        guard !job.isFinished else { return job }
        job.state = .cancelled
        job.updatedAt = Date(millisecondsSince1970: self.nowMilliseconds)
        try self.save(job)
        return job
    }

    /// Writes the job's state and counts; a finished job's selection goes.
    private func save(_ job: BulkJob) throws {
        try self.execute(
            """
            UPDATE bulk_job SET state = ?, processed = ?, applied = ?, not_found = ?, failed = ?, failure = ?, updated_at = ? WHERE id = ?
            """,
            [job.state.rawValue, job.processed, job.applied, job.notFound, job.failed, job.failure, job.updatedAt.millisecondsSince1970, job.id]
        )
        if job.isFinished { try self.execute("DELETE FROM bulk_job_item WHERE job_id = ?", [job.id]) }
    }

    /// One step of the job `id`: acts on up to `maxCount` of its selected dead letters and
    /// advances its progress, in this transaction. Returns the job, or `nil` when it is gone.
    func bulkJobStep(_ id: String, maxCount: Int) throws -> BulkJob? {
        guard let loaded = try self.loadJob(id) else { return nil }
        var job = loaded.job
        let entityId = loaded.entityId
        guard !job.isFinished else { return job }
        let now = Date(millisecondsSince1970: self.nowMilliseconds)
        guard let entity = self.state.entity(job.entity.entityKey), entity.id == entityId, entity.path.kind == job.entity.kind else {
            return try self.fail(&job, BulkJob.entityGone(job.entity), now: now)
        }
        var target: EntityRecord?
        if let path = job.action.target {
            guard let found = self.state.entity(path.entityKey), found.path.kind == path.kind else {
                return try self.fail(&job, BulkJob.targetGone(path), now: now)
            }
            target = found
        }
        let items = try Row.fetchAll(
            self.db.cachedStatement(sql: "SELECT position, seq FROM bulk_job_item WHERE job_id = ? ORDER BY position LIMIT ?"),
            arguments: [id, maxCount]
        )
        var (applied, notFound, failed) = (0, 0, 0)
        var failure: String?
        for item in items {
            let sequenceNumber: Int64 = item[1]
            let found = try self.fetchMessages(
                "SELECT \(Self.messageColumns) FROM message WHERE entity_id = ? AND seq = ? AND dlq = 1", [entity.id, sequenceNumber], entity: entity)
            guard let deadLetter = found.first else {
                notFound += 1
                continue
            }
            switch job.action {
            case .resubmit:
                try self.restoreDeadLetter(of: entity, sequenceNumber: sequenceNumber, sessionId: deadLetter.sessionId)
                applied += 1
            case .purge:
                try self.execute("DELETE FROM message WHERE entity_id = ? AND seq = ?", [entity.id, sequenceNumber])
                applied += 1
            case .move:
                guard let target else { continue }
                do {
                    try self.move(deadLetter.received.message, to: target)
                } catch let error as HeraldError {
                    failed += 1
                    failure = "dead letter \(sequenceNumber): \(error.message)"
                    continue
                }
                try self.execute("DELETE FROM message WHERE entity_id = ? AND seq = ?", [entity.id, sequenceNumber])
                applied += 1
            }
        }
        if let last = items.last {
            try self.execute("DELETE FROM bulk_job_item WHERE job_id = ? AND position <= ?", [id, last[0] as Int64])
        }
        job.record(applied: applied, notFound: notFound, failed: failed, failure: failure, now: now)
        if items.count < maxCount { job.state = .completed }
        try self.save(job)
        return job
    }

    private func fail(_ job: inout BulkJob, _ reason: String, now: Date) throws -> BulkJob {
        job.state = .failed
        job.failure = reason
        job.updatedAt = now
        try self.save(job)
        return job
    }

    /// Enqueues `message` in the queue `target`, or in each matching subscription of the topic
    /// `target`, as a new message; checked as a send is, without duplicate detection.
    private func move(_ message: Message, to target: EntityRecord) throws {
        let subscriptions = target.path.kind == .topic ? self.state.subscriptions(of: target) : []
        try Message.checkBatch([message], against: target.options, subscriptions: subscriptions)
        let sequenceNumber = self.state.nextSequence(target)
        if target.path.kind == .queue {
            try self.insert(message, into: target, sequenceNumber: sequenceNumber, defaultTimeToLive: target.options.defaultTimeToLive)
            return
        }
        for subscription in subscriptions where subscription.rules.matches(message) {
            try self.insert(
                message, into: subscription, sequenceNumber: self.state.nextSequence(subscription),
                defaultTimeToLive: target.options.defaultTimeToLive ?? subscription.options.defaultTimeToLive
            )
        }
    }
}
