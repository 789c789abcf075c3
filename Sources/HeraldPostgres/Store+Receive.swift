import Foundation
import HeraldCore
import PostgresNIO

/// What a receive returned, and the wait keys of dead-letter queues it filled on the way.
struct ReceiveOutcome: Sendable {
    var messages: [ReceivedMessage]
    var wake: Set<String>
}

/// Builds a statement whose parameters are bound as they are written.
struct StatementBuilder {
    var bindings = PostgresBindings()

    /// Binds `value` and returns its placeholder, cast to the value's type: a prepared statement
    /// is parsed without the types of its parameters, and PostgreSQL must not guess them.
    mutating func bind<T: PostgresThrowingDynamicTypeEncodable>(_ value: T) throws -> String {
        try self.bindings.append(value)
        guard let type = value.psqlType.knownSQLName else { return "$\(self.bindings.count)" }
        return "$\(self.bindings.count)::\(type)"
    }

    func query(_ sql: String) -> PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: self.bindings) }
}

extension Store {
    func receive(from path: EntityPath, maxCount: Int, maxBytes: Int = .max, mode: ReceiveMode) async throws -> ReceiveOutcome {
        try HeraldLimits.checkReceiveCount(maxCount)
        var entity = try await self.receiveSource(path)
        try path.checkReceivesWithoutSession(entity.options)
        let nonce = try RandomIdentifier.uuid()
        let lockedUntil = self.now.lock + entity.options.lockDuration.milliseconds
        var received: [ReceivedMessage] = []
        var wake: Set<String> = []
        var checkedCache = false
        // Expired messages are never delivered; moving them to the dead-letter queue (or dropping
        // them) can wait: a receive sweeps at most once a second (of the broker's clock) per
        // entity and broker, and counts always does.
        if !path.isDeadLetter && self.broker.shouldSweep(entity.id, self.now), try await self.sweepExpired(entity) {
            wake.insert(entity.waitKey(deadLetter: true))
        }
        var budget = ReceiveBudget(maxBytes: maxBytes)
        while received.count < maxCount && !budget.isSpent {
            let wanted = maxCount - received.count
            let (rows, deadLettered) = try await self.claim(
                entity, deadLetter: path.isDeadLetter, count: wanted, maxBytes: budget.isLimited ? maxBytes - budget.usedBytes : nil,
                mode: mode, nonce: nonce, lockedUntil: lockedUntil
            )
            if rows.isEmpty && deadLettered == 0 && received.isEmpty && !checkedCache && self.broker.shouldCheckCache(entity.id) {
                checkedCache = true
                if try await self.cacheWasStale(entity) {
                    entity = try await self.receiveSource(path, fresh: true)
                    continue
                }
            }
            if deadLettered > 0 {
                wake.insert(entity.waitKey(deadLetter: true))
            }
            for var message in rows.sorted(by: { $0.sequenceNumber < $1.sequenceNumber }).map(\.received) {
                if mode == .peekLock {
                    message.lockToken = LockToken(entity: message.entity, sequenceNumber: message.sequenceNumber, nonce: nonce)
                } else {
                    message.deliveryCount += 1
                    message.lockedUntil = nil
                }
                received.append(message)
            }
            if budget.isLimited && budget.admit(rows.map(\.received.message.budgetSize)) < rows.count { break }
            if deadLettered == 0 || rows.count + deadLettered < wanted { break }
        }
        if mode == .peekLock {
            self.broker.locks.add(
                nonce: nonce, entityId: entity.id, deadLetter: path.isDeadLetter, sequenceNumbers: received.map(\.sequenceNumber),
                lockedUntil: lockedUntil, lockNow: self.now.lock
            )
        }
        return ReceiveOutcome(messages: received, wake: wake)
    }

    /// One statement that picks the next `count` visible messages with `FOR UPDATE SKIP LOCKED`,
    /// dead-letters those whose delivery count reached the maximum and locks (or deletes) the rest.
    /// Locks (or deletes) up to `count` deliverable rows in sequence order; with `maxBytes`, only
    /// those whose bodies and properties fit in it (the first always does).
    private func claim(
        _ entity: CachedEntity, deadLetter: Bool, count: Int, maxBytes: Int?, mode: ReceiveMode, nonce: UUID, lockedUntil: Int64
    ) async throws -> (rows: [StoredMessage], deadLettered: Int) {
        var statement = StatementBuilder()
        let table = self.tables.message
        let entityId = try statement.bind(entity.id)
        let now = try statement.bind(self.now.wall)
        // Expired messages are never claimed; the sweep that dead-letters them runs apart (see receive).
        let notExpired = deadLetter ? "" : "AND (expires_at IS NULL OR expires_at > \(now))"
        var candidates = """
            SELECT seq, delivery_count FROM \(table) WHERE entity_id = \(entityId) AND dlq = \(try statement.bind(deadLetter)) AND state <> 1
                AND visible_at <= \(now) AND (lock_nonce IS NULL OR locked_until <= \(try statement.bind(self.now.lock))) \(notExpired)
                ORDER BY seq LIMIT \(try statement.bind(Int64(count))) FOR UPDATE SKIP LOCKED
            """
        if let maxBytes {
            // The rows are locked first (FOR UPDATE cannot sit beside a window function), then cut
            // where the running size passes the budget.
            let sized = candidates.replacingOccurrences(
                of: "SELECT seq, delivery_count FROM",
                with: "SELECT seq, delivery_count, octet_length(body) + coalesce(octet_length(properties), 0) AS size FROM"
            )
            candidates = """
                sized AS (\(sized)),
                c AS (SELECT seq, delivery_count FROM (SELECT seq, delivery_count, row_number() OVER (ORDER BY seq) AS n,
                    sum(size) OVER (ORDER BY seq) AS total FROM sized) r WHERE n = 1 OR total <= \(try statement.bind(Int64(maxBytes))))
                """
        } else {
            candidates = "c AS (\(candidates))"
        }
        // Binds the dead-letter reason and description of an exhausted message.
        func exhaustedText() throws -> (reason: String, description: String) {
            (try statement.bind(DeadLetterReason.maxDeliveryCountExceeded), try statement.bind(entity.options.exhaustedDescription))
        }
        let returning = Self.messageColumns("m.")
        let sql: String
        switch mode {
        case .peekLock:
            // One UPDATE locks the deliverable and dead-letters the exhausted (returned with dlq set).
            let exhausted = "c.delivery_count >= \(try statement.bind(entity.options.exhaustionThreshold(inDeadLetterQueue: deadLetter)))"
            let (reason, description) = try exhaustedText()
            sql = """
                WITH \(candidates)
                UPDATE \(table) m SET state = 0, dlq = m.dlq OR \(exhausted),
                    lock_nonce = CASE WHEN \(exhausted) THEN NULL ELSE \(try statement.bind(nonce)) END,
                    locked_until = CASE WHEN \(exhausted) THEN NULL ELSE \(try statement.bind(lockedUntil)) END,
                    delivery_count = CASE WHEN \(exhausted) THEN m.delivery_count ELSE m.delivery_count + 1 END,
                    visible_at = CASE WHEN \(exhausted) THEN 0 ELSE m.visible_at END,
                    dl_reason = CASE WHEN \(exhausted) THEN \(reason) ELSE m.dl_reason END,
                    dl_description = CASE WHEN \(exhausted) THEN \(description) ELSE m.dl_description END
                FROM c WHERE m.entity_id = \(entityId) AND m.seq = c.seq RETURNING \(returning)
                """
        case .receiveAndDelete where deadLetter:
            sql = "WITH \(candidates) DELETE FROM \(table) m USING c WHERE m.entity_id = \(entityId) AND m.seq = c.seq RETURNING \(returning)"
        case .receiveAndDelete:
            let threshold = try statement.bind(entity.options.exhaustionThreshold(inDeadLetterQueue: false))
            let (reason, description) = try exhaustedText()
            sql = """
                WITH \(candidates),
                dead AS (UPDATE \(table) m SET \(Self.deadLetterAssignments), dl_reason = \(reason), dl_description = \(description)
                    FROM c WHERE m.entity_id = \(entityId) AND m.seq = c.seq AND c.delivery_count >= \(threshold) RETURNING \(returning)),
                gone AS (DELETE FROM \(table) m USING c WHERE m.entity_id = \(entityId) AND m.seq = c.seq AND c.delivery_count < \(threshold)
                    RETURNING \(returning))
                SELECT * FROM dead UNION ALL SELECT * FROM gone
                """
        }
        var messages: [StoredMessage] = []
        var deadLettered = 0
        // Prepared: a receive's statement costs PostgreSQL more to parse and plan than to run. Its
        // text varies only with the mode, the queue kind and whether a byte budget applies.
        for row in try await self.rows(PreparedSQL(sql), statement.bindings) {
            let message = try self.decode(row, entity: entity)
            // A row of the queue that comes back as a dead letter was exhausted, not received.
            if message.isDeadLetter && !deadLetter {
                deadLettered += 1
            } else {
                messages.append(message)
            }
        }
        return (messages, deadLettered)
    }

    func receiveDeferred(from path: EntityPath, sequenceNumbers: [Int64]) async throws -> ReceiveOutcome {
        try HeraldLimits.checkDeferredCount(sequenceNumbers)
        let entity = try await self.receiveSource(path)
        try path.checkReceivesWithoutSession(entity.options, deferred: true)
        try path.checkDistinctDeferred(sequenceNumbers)
        return try await self.lockDeferred(
            sequenceNumbers, of: entity, from: path, sessionId: nil, lockedUntil: self.now.lock + entity.options.lockDuration.milliseconds)
    }

    /// Locks deferred, unlocked messages of `entity` (of its session `sessionId`, if any) by number
    /// until `lockedUntil` (their own lock, or their session's), with one statement; those whose
    /// count would exceed the maximum go to the dead-letter queue instead (and park their session
    /// if the entity says so) and are left out. Throws ``/HeraldCore/HeraldError/Code/messageNotFound``
    /// when a number is not such a message: the transaction then undoes the statement.
    func lockDeferred(
        _ sequenceNumbers: [Int64], of entity: CachedEntity, from path: EntityPath, sessionId: String?, lockedUntil: Int64
    ) async throws -> ReceiveOutcome {
        let nonce = try RandomIdentifier.uuid()
        // Each lock counts (GUARANTEES.md §4.4), even of a message asked for by number: one whose count
        // would exceed the maximum goes to the dead-letter queue instead, as in `claim`. Inside a
        // held session, a locked message is one its holder locked (an accept unlocks the previous
        // holder's), and its lock lasts as long as the session's.
        let max = entity.options.exhaustionThreshold(inDeadLetterQueue: path.isDeadLetter)
        let rows = try await self.rows(
            """
            UPDATE \(unescaped: self.tables.message) SET
                state = CASE WHEN delivery_count >= \(max) THEN 0 ELSE state END, dlq = dlq OR delivery_count >= \(max),
                lock_nonce = CASE WHEN delivery_count >= \(max) THEN NULL ELSE \(nonce) END,
                locked_until = CASE WHEN delivery_count >= \(max) THEN NULL ELSE \(lockedUntil) END,
                visible_at = CASE WHEN delivery_count >= \(max) THEN 0 ELSE visible_at END,
                dl_reason = CASE WHEN delivery_count >= \(max) THEN \(DeadLetterReason.maxDeliveryCountExceeded) ELSE dl_reason END,
                dl_description = CASE WHEN delivery_count >= \(max) THEN \(entity.options.exhaustedDescription) ELSE dl_description END,
                delivery_count = CASE WHEN delivery_count >= \(max) THEN delivery_count ELSE delivery_count + 1 END
            WHERE entity_id = \(entity.id) AND seq = ANY(\(sequenceNumbers)) AND dlq = \(path.isDeadLetter) AND state = 1
            AND (lock_nonce IS NULL OR locked_until <= \(self.now.lock))
            AND (\(sessionId == nil) OR session_id = \(sessionId ?? ""))
            RETURNING \(unescaped: Self.messageColumns())
            """
        )
        var bySequence: [Int64: ReceivedMessage] = [:]
        var exhausted: Set<Int64> = []
        for row in rows {
            let decoded = try self.decode(row, entity: entity)
            if decoded.isDeadLetter && !path.isDeadLetter {
                exhausted.insert(decoded.sequenceNumber)
                continue
            }
            var message = decoded.received
            message.lockToken = LockToken(entity: message.entity, sequenceNumber: message.sequenceNumber, nonce: nonce)
            bySequence[message.sequenceNumber] = message
        }
        var received: [ReceivedMessage] = []
        for sequenceNumber in sequenceNumbers {
            guard exhausted.contains(sequenceNumber) || bySequence[sequenceNumber] != nil else {
                throw path.deferredNotFound(sequenceNumber, sessionId: sessionId)
            }
            if let message = bySequence[sequenceNumber] { received.append(message) }
        }
        if let sessionId, !exhausted.isEmpty, entity.options.parkSessionOnDeadLetter {
            try await self.park(entity, [sessionId])
        }
        self.broker.locks.add(
            nonce: nonce, entityId: entity.id, deadLetter: path.isDeadLetter, sequenceNumbers: received.map(\.sequenceNumber),
            lockedUntil: lockedUntil, lockNow: self.now.lock
        )
        return ReceiveOutcome(messages: received, wake: exhausted.isEmpty ? [] : [entity.waitKey(deadLetter: true)])
    }

    func peek(_ path: EntityPath, from sequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let entity = try await self.receiveSource(path)
        return try await self.rows(
            """
            SELECT \(unescaped: Self.messageColumns()) FROM \(unescaped: self.tables.message)
            WHERE entity_id = \(entity.id) AND dlq = \(path.isDeadLetter) AND seq >= \(sequenceNumber) ORDER BY seq LIMIT \(Int64(maxCount))
            """
        ).map { try self.decode($0, entity: entity).received }
    }

    // MARK: Settlement

    /// What settlement needs to know of a locked message.
    struct LockedMessage {
        var entity: CachedEntity
        var deliveryCount: Int
        var sessionId: String?
    }

    /// Checks, with the row locked, that `token` holds the current, unexpired lock of its message
    /// (GUARANTEES.md §4.3, §4.13).
    func lockedMessage(_ token: LockToken) async throws -> LockedMessage {
        let entity = try await self.receiveSource(token.entity)
        let rows = try await self.rows(
            """
            SELECT dlq, lock_nonce, locked_until, session_id, delivery_count FROM \(unescaped: self.tables.message)
            WHERE entity_id = \(entity.id) AND seq = \(token.sequenceNumber) FOR UPDATE
            """
        )
        guard let row = rows.first else { throw token.lockLost }
        let (isDeadLetter, nonce, lockedUntil, sessionId, deliveryCount) = try row.decode((Bool, UUID?, Int64?, String?, Int64).self)
        guard isDeadLetter == token.entity.isDeadLetter, nonce == token.nonce else { throw token.lockLost }
        if token.entity.locksThroughSession(entity.options), let sessionId {
            let session = try await self.rows(
                """
                SELECT lock_nonce, locked_until FROM \(unescaped: self.tables.session)
                WHERE entity_id = \(entity.id) AND session_id = \(sessionId) FOR SHARE
                """
            )
            let (holder, until) = try session.first?.decode((UUID?, Int64?).self) ?? (nil, nil)
            guard holder != nil, let until, until > self.now.lock else { throw SessionLock.lost(sessionId, in: token.entity) }
        } else if (lockedUntil ?? 0) <= self.now.lock {
            throw token.lockExpired
        }
        return LockedMessage(entity: entity, deliveryCount: Int(deliveryCount), sessionId: sessionId)
    }

    /// Whether `tokens` are one receive's tokens of a non-session entity (`entity`), which one
    /// statement completes.
    static func canCompleteInOneStatement(_ tokens: [LockToken], entity: CachedEntity) -> Bool {
        guard let first = tokens.first, (try? HeraldLimits.checkCompletion(tokens)) != nil,
            tokens.allSatisfy({ $0.nonce == first.nonce && $0.entity == first.entity })
        else { return false }
        return !first.entity.locksThroughSession(entity.options)
    }

    func canCompleteInOneStatement(_ tokens: [LockToken]) async throws -> Bool {
        guard let first = tokens.first else { return false }
        return Self.canCompleteInOneStatement(tokens, entity: try await self.receiveSource(first.entity))
    }

    /// Deletes the messages of one group of tokens (same entity, same nonce) if every one of them
    /// is still locked by it, and remembers them completed, or none (the statement fails, undoing
    /// its writes); throws ``/HeraldCore/HeraldError/Code/lockLost`` then.
    private func deleteLocked(_ entity: CachedEntity, _ tokens: [LockToken]) async throws {
        let first = tokens[0]
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(entity.id)
        bindings.append(first.entity.isDeadLetter)
        bindings.append(tokens.map(\.sequenceNumber))
        bindings.append(first.nonce)
        bindings.append(self.now.lock)
        bindings.append(self.now.wall)
        bindings.append(Int64(tokens.count))
        do {
            try await self.rows(self.broker.statements.complete, bindings)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == Schema.countMismatch {
            throw HeraldError(.lockLost, "messages to complete in '\(first.entity)' lost their locks: expired, settled, or superseded")
        }
    }

    /// Completes one group of tokens (same entity, same nonce) inside a transaction, remembering
    /// them completed; tokens that completed their messages before (a retry) count as completed.
    /// Returns how many had; throws ``/HeraldCore/HeraldError/Code/lockLost`` when another token is lost.
    private func completeGroup(_ entity: CachedEntity, _ tokens: [LockToken]) async throws -> Int {
        let first = tokens[0]
        let rows = try await self.rows(
            """
            WITH d AS (DELETE FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND dlq = \(first.entity.isDeadLetter)
                AND seq = ANY(\(tokens.map(\.sequenceNumber))) AND lock_nonce = \(first.nonce) AND locked_until > \(self.now.lock) RETURNING seq),
            r AS (INSERT INTO \(unescaped: self.tables.settledDelivery) (entity_id, nonce, kind, settled_at, seqs)
                SELECT \(entity.id), \(first.nonce), \(Int64(SettlementKind.complete.rawValue)), \(self.now.wall), array_agg(seq ORDER BY seq) FROM d
                HAVING count(*) > 0)
            SELECT seq FROM d
            """
        )
        if rows.count == tokens.count { return 0 }
        let removed = Set(try rows.map { try $0.decode(Int64.self) })
        let others = tokens.filter { !removed.contains($0.sequenceNumber) }
        let remembered = try await self.rememberedSettlements(of: entity, others).filter {
            $0.value.kind == .complete && $0.value.isRemembered(now: self.now.wall)
        }
        guard remembered.count == others.count else {
            throw HeraldError(
                .lockLost,
                "\(others.count - remembered.count) of the messages to complete in '\(first.entity)' lost their locks: expired, settled, or superseded")
        }
        return remembered.count
    }

    func completeInOneStatement(_ tokens: [LockToken]) async throws {
        try await self.deleteLocked(try await self.receiveSource(tokens[0].entity), tokens)
    }

    /// Completes `tokens` inside a transaction; tokens that already completed their messages count
    /// as completed, and the answer is `alreadySettled` when all had.
    func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome {
        try HeraldLimits.checkCompletion(tokens)
        // Tokens of one receive share a nonce: settle each such group with one statement; one
        // lost token rejects the whole call (and the transaction undoes its writes).
        var alreadyCompleted = 0
        for group in LockToken.groupedByDelivery(tokens) {
            let first = group[0]
            let entity = try await self.receiveSource(first.entity)
            if first.entity.locksThroughSession(entity.options) {
                for token in group {
                    let (outcome, _) = try await self.settling(token, as: .complete, retried: ()) {
                        _ = try await self.lockedMessage(token)
                        try await self.rows("DELETE FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND seq = \(token.sequenceNumber)")
                        return (entity, ())
                    }
                    if outcome == .alreadySettled { alreadyCompleted += 1 }
                }
                continue
            }
            alreadyCompleted += try await self.completeGroup(entity, group)
        }
        return alreadyCompleted == tokens.count ? .alreadySettled : .settled
    }

    /// Unlocks a message at once and takes its delivery back (not counted).
    func release(_ token: LockToken) async throws -> (outcome: SettlementOutcome, value: Set<String>) {
        try await self.settling(token, as: .abandon, retried: []) {
            let locked = try await self.lockedMessage(token)
            let visibleAt = EntityOptions.visibleAt(afterAbandonDelay: nil, now: self.now.wall)
            try await self.rows(
                """
                UPDATE \(unescaped: self.tables.message)
                SET lock_nonce = NULL, locked_until = NULL, visible_at = \(visibleAt), delivery_count = GREATEST(delivery_count - 1, 0)
                WHERE entity_id = \(locked.entity.id) AND seq = \(token.sequenceNumber)
                """
            )
            return (locked.entity, [locked.entity.waitKey(deadLetter: token.entity.isDeadLetter)])
        }
    }

    func abandon(_ token: LockToken, delay: Duration?) async throws -> (outcome: SettlementOutcome, value: Set<String>) {
        try HeraldLimits.checkAbandonDelay(delay)
        return try await self.settling(token, as: .abandon, retried: []) {
            let locked = try await self.lockedMessage(token)
            if locked.entity.options.isExhausted(deliveryCount: locked.deliveryCount, inDeadLetterQueue: token.entity.isDeadLetter) {
                try await self.deadLetterExhausted(locked.entity, sequenceNumber: token.sequenceNumber, sessionId: locked.sessionId)
                return (locked.entity, [locked.entity.waitKey(deadLetter: true)])
            }
            let visibleAt = EntityOptions.visibleAt(afterAbandonDelay: delay, now: self.now.wall)
            try await self.rows(
                """
                UPDATE \(unescaped: self.tables.message) SET lock_nonce = NULL, locked_until = NULL, visible_at = \(visibleAt)
                WHERE entity_id = \(locked.entity.id) AND seq = \(token.sequenceNumber)
                """
            )
            return (locked.entity, [locked.entity.waitKey(deadLetter: token.entity.isDeadLetter)])
        }
    }

    func deferMessage(_ token: LockToken) async throws -> SettlementOutcome {
        try await self.settling(token, as: .deferral, retried: ()) {
            let locked = try await self.lockedMessage(token)
            try token.checkDeferrable()
            try await self.rows(
                """
                UPDATE \(unescaped: self.tables.message) SET state = 1, lock_nonce = NULL, locked_until = NULL
                WHERE entity_id = \(locked.entity.id) AND seq = \(token.sequenceNumber)
                """
            )
            return (locked.entity, ())
        }.outcome
    }

    func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> (outcome: SettlementOutcome, value: Set<String>) {
        try HeraldLimits.checkDeadLetterText(reason: reason, description: description)
        return try await self.settling(token, as: .deadLetter, retried: []) {
            let locked = try await self.lockedMessage(token)
            try token.checkDeadLetterable()
            try await self.moveToDeadLetter(
                locked.entity, sequenceNumber: token.sequenceNumber, sessionId: locked.sessionId, reason: reason, description: description)
            return (locked.entity, [locked.entity.waitKey(deadLetter: true)])
        }
    }

    func renewLock(_ token: LockToken) async throws -> (Int64, Date) {
        let locked = try await self.lockedMessage(token)
        var until = self.now.lock + locked.entity.options.lockDuration.milliseconds
        if token.entity.locksThroughSession(locked.entity.options), let sessionId = locked.sessionId {
            // A session message is locked for as long as its session.
            let rows = try await self.rows(
                "SELECT locked_until FROM \(unescaped: self.tables.session) WHERE entity_id = \(locked.entity.id) AND session_id = \(sessionId)"
            )
            if let sessionUntil = try rows.first?.decode(Int64?.self) { until = sessionUntil }
        }
        try await self.rows(
            "UPDATE \(unescaped: self.tables.message) SET locked_until = \(until) WHERE entity_id = \(locked.entity.id) AND seq = \(token.sequenceNumber)"
        )
        return (until, self.now.display(lock: until))
    }

    func resubmit(_ token: LockToken) async throws -> (outcome: SettlementOutcome, value: Set<String>) {
        try token.checkResubmittable()
        return try await self.settling(token, as: .resubmit, retried: []) { try await self.resubmitLocked(token) }
    }

    private func resubmitLocked(_ token: LockToken) async throws -> (entity: CachedEntity, value: Set<String>) {
        let locked = try await self.lockedMessage(token)
        try await self.rows(
            """
            UPDATE \(unescaped: self.tables.message) SET dlq = FALSE, state = 0, delivery_count = 0, lock_nonce = NULL, locked_until = NULL,
                visible_at = 0, expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE \(self.now.wall) + ttl_ms END,
                dl_reason = NULL, dl_description = NULL
            WHERE entity_id = \(locked.entity.id) AND seq = \(token.sequenceNumber)
            """
        )
        if let sessionId = locked.sessionId {
            try await self.rows(
                "UPDATE \(unescaped: self.tables.session) SET parked = FALSE WHERE entity_id = \(locked.entity.id) AND session_id = \(sessionId)"
            )
        }
        return (locked.entity, [locked.entity.waitKey(deadLetter: false)])
    }
}
