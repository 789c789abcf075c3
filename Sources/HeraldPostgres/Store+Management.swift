import Foundation
import HeraldCore
import PostgresNIO

// The operator's operations (GUARANTEES.md §6): options updates, purges, and the steps of bulk
// jobs on dead letters.

extension Store {
    // MARK: Options

    /// Stores the changed options of `path` and returns them with the entity as it is now.
    func updateOptions(of path: EntityPath, _ change: EntityOptionsChange) async throws -> CachedEntity {
        try path.validate()
        if path.isDeadLetter { throw HeraldError(.invalidArgument, "a dead-letter queue has the options of its queue or subscription") }
        if path.kind == .subscription {
            // Sends to the topic read its subscriptions (their options included) at the topic row's
            // generation: a new one makes them read again.
            try await self.rows(
                "UPDATE \(unescaped: self.tables.entity) SET generation = generation + 1 WHERE key = \(path.topic ?? "") AND kind = 'topic'")
        }
        let rows = try await self.rows(
            """
            SELECT \(unescaped: Self.entityColumns) FROM \(unescaped: self.tables.entity) WHERE key = \(path.entityKey) AND kind = \(path.kind.rawValue)
            FOR UPDATE
            """
        )
        guard let row = rows.first else { throw path.notFoundError(found: try await self.fetch(path.entityKey)?.path.kind) }
        let record = try Self.decodeEntity(row)
        let options = try change.applied(to: record.options)
        let updated = try await self.rows(
            """
            UPDATE \(unescaped: self.tables.entity) SET options = \(try StoredJSON.encode(options)), generation = generation + 1
            WHERE id = \(record.id) RETURNING \(unescaped: Self.entityColumns)
            """
        )
        guard let stored = updated.first else { throw path.notFoundError() }
        return try Self.decodeEntity(stored)
    }

    // MARK: Rules

    func rules(of path: EntityPath) async throws -> [SubscriptionRule] {
        try path.checkRulesTarget()
        return try path.resolved(try await self.fetch(path.entityKey)).rules
    }

    /// Stores `change` applied to the rules of `path` and returns the entity as it is now.
    func changeRules(
        of path: EntityPath, _ change: @Sendable ([SubscriptionRule]) throws(HeraldError) -> [SubscriptionRule]
    ) async throws -> CachedEntity {
        try path.checkRulesTarget()
        // Sends to the topic read its subscriptions (their rules included) at the topic row's
        // generation: a new one makes them read again. Locking the topic row first, as sends do,
        // orders the change before or after each send.
        try await self.rows(
            "UPDATE \(unescaped: self.tables.entity) SET generation = generation + 1 WHERE key = \(path.topic ?? "") AND kind = 'topic'")
        let rows = try await self.rows(
            """
            SELECT \(unescaped: Self.entityColumns) FROM \(unescaped: self.tables.entity) WHERE key = \(path.entityKey) AND kind = \(path.kind.rawValue)
            FOR UPDATE
            """
        )
        guard let row = rows.first else { throw path.notFoundError(found: try await self.fetch(path.entityKey)?.path.kind) }
        let rules = try change(try Self.decodeEntity(row).rules)
        let updated = try await self.rows(
            """
            UPDATE \(unescaped: self.tables.entity) SET rules = \(try StoredJSON.encode(rules)), generation = generation + 1
            WHERE key = \(path.entityKey) AND kind = \(path.kind.rawValue) RETURNING \(unescaped: Self.entityColumns)
            """
        )
        guard let stored = updated.first else { throw path.notFoundError() }
        return try Self.decodeEntity(stored)
    }

    func lastSequenceNumber(of path: EntityPath) async throws -> Int64 {
        try path.validate()
        let origin = path.origin
        let rows = try await self.rows(
            "SELECT last_seq FROM \(unescaped: self.tables.entity) WHERE key = \(origin.entityKey) AND kind = \(origin.kind.rawValue)")
        guard let row = rows.first else { throw origin.notFoundError(found: try await self.fetch(origin.entityKey)?.path.kind) }
        return try row.decode(Int64.self)
    }

    // MARK: Sessions

    func sessions(of path: EntityPath, after: String?, maxCount: Int) async throws -> [SessionInfo] {
        try HeraldLimits.checkReceiveCount(maxCount)
        try path.checkSessionPath()
        let entity = try await self.receiveSource(path)
        try path.checkSessionsEnabled(entity.options)
        let after = after ?? ""
        var messages: [String: Int] = [:]
        for row in try await self.rows(
            """
            SELECT session_id, count(*) FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND NOT dlq AND session_id > \(after)
            GROUP BY session_id ORDER BY session_id LIMIT \(Int64(maxCount))
            """
        ) {
            let (id, count) = try row.decode((String, Int64).self)
            messages[id] = Int(count)
        }
        var stored: [String: (stateSize: Int?, isParked: Bool)] = [:]
        var locks: [String: Date] = [:]
        for row in try await self.rows(
            """
            SELECT session_id, length(state), parked, lock_nonce IS NOT NULL AND locked_until > \(self.now.lock), locked_until
            FROM \(unescaped: self.tables.session) WHERE entity_id = \(entity.id) AND session_id > \(after) ORDER BY session_id LIMIT \(Int64(maxCount))
            """
        ) {
            let (id, size, parked, locked, until) = try row.decode((String, Int32?, Bool, Bool, Int64?).self)
            if size != nil || parked { stored[id] = (size.map(Int.init), parked) }
            if locked, let until { locks[id] = self.now.display(lock: until) }
        }
        return SessionInfo.merge(messages: messages, stored: stored, locks: locks, after: after, maxCount: maxCount)
    }

    // MARK: Purge

    /// Deletes up to `maxCount` of the waiting messages (or, on a dead-letter path, dead letters)
    /// of `path` with sequence numbers up to `bound`; returns how many it deleted.
    func purge(_ path: EntityPath, upTo bound: Int64, maxCount: Int) async throws -> Int {
        let entity = try await self.receiveSource(path, fresh: true)
        if !path.isDeadLetter { try await self.sweepExpired(entity) }
        let rows = try await self.rows(
            """
            DELETE FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND seq IN (
                SELECT seq FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND dlq = \(path.isDeadLetter)
                AND (state = 0 OR (state = 2 AND visible_at <= \(self.now.wall))) AND seq <= \(bound)
                AND (lock_nonce IS NULL OR locked_until <= \(self.now.lock))
                ORDER BY seq LIMIT \(Int64(maxCount)) FOR UPDATE SKIP LOCKED)
            RETURNING seq
            """
        )
        return rows.count
    }

    // MARK: Bulk jobs

    static let jobColumns =
        "id, entity_id, entity, action, target, target_kind, state, total, processed, applied, not_found, failed, failure, created_at, updated_at"

    static func decodeJob(_ row: PostgresRow) throws -> (job: BulkJob, entityId: Int64) {
        let (id, entityId, entity, action, targetKey, targetKind, state, total, processed, applied, notFound, failed, failure, created, updated) =
            try row.decode((String, Int64, String, String, String?, String?, String, Int64, Int64, Int64, Int64, Int64, String?, Int64, Int64).self)
        let target = try targetKey.map { key throws(HeraldError) in try EntityPath(parsing: key, isTopic: targetKind == "topic") }
        let job = BulkJob(
            id: id, entity: try EntityPath(parsing: entity), action: try DeadLetterAction(name: action, target: target),
            state: try BulkJob.State(stored: state), total: Int(total), processed: Int(processed), applied: Int(applied),
            notFound: Int(notFound), failed: Int(failed), failure: failure,
            createdAt: Date(millisecondsSince1970: created), updatedAt: Date(millisecondsSince1970: updated)
        )
        return (job, entityId)
    }

    /// Starts a job on the dead letters of `path` with the frozen `selection`, stored whole in
    /// this transaction; forgets finished jobs past their retention.
    func startBulkJob(id: String, action: DeadLetterAction, on path: EntityPath, selection: [Int64]) async throws -> BulkJob {
        try action.checkJob(on: path)
        let entity = try path.resolved(try await self.fetch(path.entityKey))
        if let target = action.target { _ = try target.resolved(try await self.fetch(target.entityKey)) }
        try await self.rows(
            """
            DELETE FROM \(unescaped: self.tables.bulkJob) WHERE state <> 'running' AND updated_at < \(self.now.wall - BulkJob.retention.milliseconds)
            """
        )
        let state: BulkJob.State = selection.isEmpty ? .completed : .running
        try await self.rows(
            """
            INSERT INTO \(unescaped: self.tables.bulkJob) (id, entity_id, entity, action, target, target_kind, state, total, created_at, updated_at)
            VALUES (\(id), \(entity.id), \(entity.path.entityKey), \(action.name), \(action.target?.entityKey), \(action.target?.kind.rawValue),
                \(state.rawValue), \(Int64(selection.count)), \(self.now.wall), \(self.now.wall))
            """
        )
        for start in stride(from: 0, to: selection.count, by: 10_000) {
            let chunk = Array(selection[start..<min(start + 10_000, selection.count)])
            try await self.rows(
                """
                INSERT INTO \(unescaped: self.tables.bulkJobItem) (job_id, position, seq)
                SELECT \(id), \(Int64(start)) + o - 1, s FROM unnest(\(chunk)::int8[]) WITH ORDINALITY AS u(s, o)
                """
            )
        }
        return BulkJob(
            id: id, entity: entity.path, action: action, state: state, total: selection.count, createdAt: self.now.date, updatedAt: self.now.date)
    }

    /// The job `id` with the id of its entity; with `locking`, its row locked until the end of
    /// the transaction (steps of one job, in any process, run one after the other).
    private func loadJob(_ id: String, locking: Bool = false) async throws -> (job: BulkJob, entityId: Int64)? {
        let rows = try await self.rows(
            "SELECT \(unescaped: Self.jobColumns) FROM \(unescaped: self.tables.bulkJob) WHERE id = \(id) \(unescaped: locking ? "FOR UPDATE" : "")")
        return try rows.first.map(Self.decodeJob)
    }

    func bulkJob(_ id: String) async throws -> BulkJob {
        guard let (job, _) = try await self.loadJob(id) else { throw BulkJob.notFound(id) }
        return job
    }

    func bulkJobs() async throws -> [BulkJob] {
        try await self.rows(
            """
            SELECT \(unescaped: Self.jobColumns) FROM \(unescaped: self.tables.bulkJob) ORDER BY created_at DESC, id LIMIT \(Int64(BulkJob.listLimit))
            """
        ).map { try Self.decodeJob($0).job }
    }

    func runningBulkJobs() async throws -> [String] {
        try await self.rows("SELECT id FROM \(unescaped: self.tables.bulkJob) WHERE state = 'running' ORDER BY created_at, id").map {
            try $0.decode(String.self)
        }
    }

    func cancelBulkJob(_ id: String) async throws -> BulkJob {
        guard var job = try await self.loadJob(id, locking: true)?.job else { throw BulkJob.notFound(id) }
        guard !job.isFinished else { return job }
        job.state = .cancelled
        job.updatedAt = self.now.date
        try await self.save(job)
        return job
    }

    /// Writes the job's state and counts; a finished job's selection goes.
    private func save(_ job: BulkJob) async throws {
        try await self.rows(
            """
            UPDATE \(unescaped: self.tables.bulkJob) SET state = \(job.state.rawValue), processed = \(Int64(job.processed)),
                applied = \(Int64(job.applied)), not_found = \(Int64(job.notFound)), failed = \(Int64(job.failed)), failure = \(job.failure),
                updated_at = \(job.updatedAt.millisecondsSince1970)
            WHERE id = \(job.id)
            """
        )
        if job.isFinished { try await self.rows("DELETE FROM \(unescaped: self.tables.bulkJobItem) WHERE job_id = \(job.id)") }
    }

    private func fail(_ job: inout BulkJob, _ reason: String) async throws -> BulkJob {
        job.state = .failed
        job.failure = reason
        job.updatedAt = self.now.date
        try await self.save(job)
        return job
    }

    /// One step of the job `id`: acts on up to `maxCount` of its selected dead letters and
    /// advances its progress, in this transaction. Returns the job (`nil` when it is gone) and
    /// the wait keys of the entities that got messages.
    func bulkJobStep(_ id: String, maxCount: Int) async throws -> (job: BulkJob?, wake: Set<String>) {
        guard let loaded = try await self.loadJob(id, locking: true) else { return (nil, []) }
        var job = loaded.job
        let entityId = loaded.entityId
        guard !job.isFinished else { return (job, []) }
        guard let entity = try await self.fetch(job.entity.entityKey), entity.id == entityId, entity.path.kind == job.entity.kind else {
            return (try await self.fail(&job, BulkJob.entityGone(job.entity)), [])
        }
        var target: CachedEntity?
        if let path = job.action.target {
            guard let found = try await self.fetch(path.entityKey), found.path.kind == path.kind else {
                return (try await self.fail(&job, BulkJob.targetGone(path)), [])
            }
            target = found
        }
        let items = try await self.rows(
            """
            SELECT position, seq FROM \(unescaped: self.tables.bulkJobItem) WHERE job_id = \(id) ORDER BY position LIMIT \(Int64(maxCount))
            """
        ).map { try $0.decode((Int64, Int64).self) }
        let numbers = items.map(\.1)
        // The selected dead letters still there, locked against receivers of the dead-letter queue.
        var deadLetters: [Int64: StoredMessage] = [:]
        if !numbers.isEmpty {
            for row in try await self.rows(
                """
                SELECT \(unescaped: Self.messageColumns()) FROM \(unescaped: self.tables.message)
                WHERE entity_id = \(entity.id) AND dlq AND seq = ANY(\(numbers)) FOR UPDATE
                """
            ) {
                let message = try self.decode(row, entity: entity)
                deadLetters[message.sequenceNumber] = message
            }
        }
        let present = numbers.filter { deadLetters[$0] != nil }
        var wake: Set<String> = []
        var (applied, failed) = (0, 0)
        var failure: String?
        switch job.action {
        case .resubmit:
            if !present.isEmpty {
                let sessions = try await self.rows(
                    """
                    UPDATE \(unescaped: self.tables.message) SET dlq = FALSE, state = 0, delivery_count = 0, lock_nonce = NULL, locked_until = NULL,
                        visible_at = 0, expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE \(self.now.wall) + ttl_ms END,
                        dl_reason = NULL, dl_description = NULL
                    WHERE entity_id = \(entity.id) AND seq = ANY(\(present)) RETURNING session_id
                    """
                ).compactMap { try $0.decode(String?.self) }
                if !sessions.isEmpty {
                    try await self.rows(
                        """
                        UPDATE \(unescaped: self.tables.session) SET parked = FALSE
                        WHERE entity_id = \(entity.id) AND session_id = ANY(\(Array(Set(sessions))))
                        """
                    )
                }
                wake.insert(entity.waitKey(deadLetter: false))
            }
            applied = present.count
        case .purge:
            if !present.isEmpty {
                try await self.rows("DELETE FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND seq = ANY(\(present))")
            }
            applied = present.count
        case .move:
            guard let target else { break }
            var moving: [Int64] = []
            var messages: [Message] = []
            let subscriptions = target.path.kind == .topic ? try await self.lockedSubscriptions(of: target) : []
            for number in present {
                guard let message = deadLetters[number]?.received.message else { continue }
                do {
                    try Message.checkBatch([message], against: target.options, subscriptions: subscriptions)
                    moving.append(number)
                    messages.append(message)
                } catch {
                    failed += 1
                    failure = "dead letter \(number): \(error.message)"
                }
            }
            if !messages.isEmpty {
                wake = try await self.move(messages, to: target, subscriptions: subscriptions)
                try await self.rows("DELETE FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND seq = ANY(\(moving))")
            }
            applied = moving.count
        }
        if let last = items.last {
            try await self.rows("DELETE FROM \(unescaped: self.tables.bulkJobItem) WHERE job_id = \(id) AND position <= \(last.0)")
        }
        job.record(applied: applied, notFound: numbers.count - present.count, failed: failed, failure: failure, now: self.now.date)
        if items.count < maxCount { job.state = .completed }
        try await self.save(job)
        return (job, wake)
    }

    /// The subscriptions of the topic `target`, with the topic's row locked as a send locks it.
    private func lockedSubscriptions(of target: CachedEntity) async throws -> [CachedEntity] {
        let locked = try await self.rows("SELECT generation FROM \(unescaped: self.tables.entity) WHERE id = \(target.id) FOR UPDATE")
        guard let row = locked.first else { throw HeraldError(.entityNotFound, BulkJob.targetGone(target.path)) }
        return try await self.subscriptions(of: target, generation: try row.decode(Int64.self))
    }

    /// Enqueues `messages` in the queue `target`, or in the matching `subscriptions` of the topic
    /// `target`, as new messages, without duplicate detection; returns the wait keys to wake.
    private func move(_ messages: [Message], to target: CachedEntity, subscriptions: [CachedEntity]) async throws -> Set<String> {
        var wake: Set<String> = []
        let bumped = try await self.rows(
            """
            UPDATE \(unescaped: self.tables.entity) SET last_seq = last_seq + \(Int64(messages.count)) WHERE id = \(target.id) RETURNING last_seq
            """
        )
        guard let row = bumped.first else { throw HeraldError(.entityNotFound, BulkJob.targetGone(target.path)) }
        if target.path.kind == .queue {
            let base = try row.decode(Int64.self) - Int64(messages.count)
            if try await self.insert(messages, into: target, numbering: .after(base), defaultTimeToLive: target.options.defaultTimeToLive) == true {
                wake.insert(target.waitKey(deadLetter: false))
            }
            return wake
        }
        for subscription in subscriptions {
            let matching = messages.filter { subscription.rules.matches($0) }
            if matching.isEmpty { continue }
            if try await self.insert(
                matching, into: subscription, numbering: .fromCounter,
                defaultTimeToLive: target.options.defaultTimeToLive ?? subscription.options.defaultTimeToLive
            ) == true {
                wake.insert(subscription.waitKey(deadLetter: false))
            }
        }
        return wake
    }
}
