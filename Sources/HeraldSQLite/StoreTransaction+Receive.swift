import Foundation
import GRDB
import HeraldCore

extension StoreTransaction {
    func receive(from path: EntityPath, maxCount: Int, maxBytes: Int = .max, mode: ReceiveMode) throws -> [ReceivedMessage] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let entity = try self.receiveSource(path)
        try path.checkReceivesWithoutSession(entity.options)
        if !path.isDeadLetter { try self.sweep(entity) }
        let nonce = try RandomIdentifier.uuid()
        var received: [ReceivedMessage] = []
        var budget = ReceiveBudget(maxBytes: maxBytes)
        let key = ReadyKey(entityId: entity.id, deadLetter: path.isDeadLetter)
        let previous = self.state.readyStart(key, monotonic: self.monotonic, wall: self.nowMilliseconds)
        let start = previous?.sequenceNumber ?? 0
        let readyArguments: StatementArguments = [entity.id, path.isDeadLetter, self.nowMilliseconds, self.monotonic, start]
        var lastTaken: Int64?
        while received.count < maxCount && !budget.isSpent {
            let wanted = maxCount - received.count
            let rows = try self.fetchMessages(Self.readyMessages, readyArguments + [wanted], entity: entity, whileFitting: &budget)
            if rows.isEmpty { break }
            lastTaken = rows.last?.sequenceNumber
            let deliverable = try self.deadLetteringExhausted(rows, of: entity, from: path)
            let delivered = try self.deliver(
                deliverable, of: entity, mode: mode, nonce: nonce, lockedUntil: self.monotonic + entity.options.lockDuration.nanoseconds)
            // The first page (usually the only one) becomes the answer as it is, not copied into it.
            if received.isEmpty { received = delivered } else { received += delivered }
            let skipped = deliverable.count < rows.count
            if !skipped || rows.count < wanted { break }
        }
        if let lastTaken {
            try self.rememberReadyStart(
                key, after: previous, walkedFrom: start, to: lastTaken, taken: mode == .peekLock ? received.count : 0,
                lockDuration: entity.options.lockDuration.nanoseconds)
        }
        return received
    }

    /// Remembers where the next receive's walk may start (``ReadyStart``): past `lastTaken`, for as
    /// long as every message from `walkedFrom` to it is still locked or invisible. `taken` is how
    /// many of them this receive locked; when they are all there are (none was walked over), their
    /// lock is the only limit, and nothing is read.
    private func rememberReadyStart(
        _ key: ReadyKey, after previous: ReadyStart?, walkedFrom start: Int64, to lastTaken: Int64, taken: Int, lockDuration: Int64
    ) throws {
        let arguments: StatementArguments = [key.entityId, key.deadLetter, start, lastTaken]
        let remaining = try Int.fetchOne(self.db.cachedStatement(sql: Self.walkedCount), arguments: arguments) ?? 0
        var earliestLockExpiry: Int64?
        var earliestVisibility: Int64?
        if remaining > taken {
            let row = try Row.fetchOne(self.db.cachedStatement(sql: Self.walkedLimits), arguments: arguments + [self.nowMilliseconds])
            earliestLockExpiry = row?[0]
            earliestVisibility = row?[1]
        } else if taken > 0 {
            earliestLockExpiry = self.monotonic + lockDuration
        }
        let next = ReadyStart.after(
            previous, lastTaken: lastTaken, earliestLockExpiry: earliestLockExpiry, earliestVisibility: earliestVisibility, monotonic: self.monotonic)
        self.state.setReadyStart(next, for: key)
    }

    /// How many ready-state messages (neither deferred nor scheduled) lie in a walked range
    /// (`entity_id`, `dlq`, first and last sequence number), from `message_ready` alone.
    static let walkedCount = """
        SELECT COUNT(*) FROM message INDEXED BY message_ready WHERE entity_id = ?1 AND dlq = ?2 AND state = 0 AND seq BETWEEN ?3 AND ?4
        """

    /// The earliest lock expiry (monotonic) and the earliest end of an abandon delay after now
    /// (wall, `?5`) among the ready-state messages of a walked range.
    static let walkedLimits = """
        SELECT min(CASE WHEN lock_nonce IS NOT NULL THEN locked_until END), min(CASE WHEN visible_at > ?5 THEN visible_at END)
        FROM message WHERE entity_id = ?1 AND +dlq = ?2 AND +state = 0 AND seq <= ?4 AND seq >= max(?3, \(firstCandidate))
        """

    /// The first message of the walk's queue (`entity_id` `?1`, `dlq` `?2`) that is neither deferred
    /// nor scheduled, found by `message_ready` at once.
    private static let firstCandidate = "(SELECT min(seq) FROM message INDEXED BY message_ready WHERE entity_id = ?1 AND dlq = ?2 AND state = 0)"

    /// The messages a receive may take, in order: `entity_id`, `dlq`, now (ms), the monotonic
    /// now, the sequence number to start from at the earliest (``ReadyStart``), and a limit.
    ///
    /// The walk goes along the primary key (the rows in `seq` order, whose lock and visibility it
    /// checks), from the first message of the queue (or dead-letter queue) that is neither
    /// deferred nor scheduled, which `message_ready` finds at once. Without that start, rows before
    /// it were read at every receive: dead letters, deferred and scheduled messages share the
    /// key's order, and a queue behind 20,000 dead letters cost milliseconds per receive. The `+`
    /// keeps the planner on the key, which reads the locked rows ahead of the ready ones faster
    /// than the index does. An expired message the sweep has not reached yet (see
    /// ``sweepLimit``) is passed over; dead letters do not expire.
    static let readyMessages = """
        SELECT \(messageColumns), \(budgetSize) FROM message
        WHERE entity_id = ?1 AND seq >= max(?5, \(firstCandidate))
        AND +dlq = ?2 AND +state = 0 AND visible_at <= ?3 AND (lock_nonce IS NULL OR locked_until <= ?4)
        AND (?2 OR expires_at IS NULL OR expires_at > ?3)
        ORDER BY seq LIMIT ?6
        """

    /// What a stored message counts against a receive's budget: its body and properties. SQLite
    /// reads a blob's length from its record header, without loading it.
    private static let budgetSize = "length(body) + coalesce(length(properties), 0)"

    /// The rows that can be delivered; those whose delivery count would exceed the maximum go to
    /// the dead-letter queue instead (a dead-letter queue's own messages never do).
    private func deadLetteringExhausted(_ rows: [StoredMessage], of entity: EntityRecord, from path: EntityPath) throws -> [StoredMessage] {
        var deliverable: [StoredMessage] = []
        for row in rows {
            if entity.options.isExhausted(deliveryCount: row.deliveryCount, inDeadLetterQueue: path.isDeadLetter) {
                try self.deadLetterExhausted(entity, row)
            } else {
                deliverable.append(row)
            }
        }
        return deliverable
    }

    /// Locks (or, in receive-and-delete mode, removes) the messages of `rows` with one statement.
    private func deliver(_ rows: [StoredMessage], of entity: EntityRecord, mode: ReceiveMode, nonce: UUID, lockedUntil: Int64) throws -> [ReceivedMessage] {
        guard !rows.isEmpty else { return [] }
        let sequenceNumbers = Self.jsonArray(rows.map(\.sequenceNumber))
        switch mode {
        case .peekLock:
            var lock = try BoundStatement(
                self.db,
                sql: """
                    UPDATE message SET lock_nonce = ?, locked_until = ?, delivery_count = delivery_count + 1
                    WHERE entity_id = ? AND seq IN (SELECT value FROM json_each(?))
                    """
            )
            lock.bind(Self.nonceData(nonce))
            lock.bind(lockedUntil)
            lock.bind(entity.id)
            lock.bind(sequenceNumbers)
            try lock.execute()
        case .receiveAndDelete:
            try self.execute("DELETE FROM message WHERE entity_id = ? AND seq IN (SELECT value FROM json_each(?))", [entity.id, sequenceNumbers])
        }
        let lockedUntilDate = self.wallTime(ofMonotonic: lockedUntil)
        return rows.map { row in
            var message = row.received
            message.deliveryCount += 1
            if mode == .peekLock {
                message.lockToken = LockToken(entity: message.entity, sequenceNumber: row.sequenceNumber, nonce: nonce)
                message.lockedUntil = lockedUntilDate
            } else {
                message.lockedUntil = nil
            }
            return message
        }
    }

    /// Moves a message whose delivery count reached the maximum to the dead-letter queue.
    func deadLetterExhausted(_ entity: EntityRecord, sequenceNumber: Int64, sessionId: String?) throws {
        try self.moveToDeadLetter(
            entity, sequenceNumber: sequenceNumber, sessionId: sessionId,
            reason: DeadLetterReason.maxDeliveryCountExceeded, description: entity.options.exhaustedDescription
        )
    }

    func deadLetterExhausted(_ entity: EntityRecord, _ row: StoredMessage) throws {
        try self.deadLetterExhausted(entity, sequenceNumber: row.sequenceNumber, sessionId: row.sessionId)
    }

    /// Locks (or, in receive-and-delete mode, removes) one message for a receiver; returns `nil`
    /// and dead-letters it instead when its delivery count has reached the maximum.
    func deliver(_ row: StoredMessage, of entity: EntityRecord, mode: ReceiveMode, nonce: UUID, lockedUntil: Int64) throws -> ReceivedMessage? {
        if entity.options.isExhausted(deliveryCount: row.deliveryCount, inDeadLetterQueue: row.isDeadLetter) {
            try self.deadLetterExhausted(entity, row)
            return nil
        }
        return try self.deliver([row], of: entity, mode: mode, nonce: nonce, lockedUntil: lockedUntil).first
    }

    func receiveDeferred(from path: EntityPath, sequenceNumbers: [Int64]) throws -> [ReceivedMessage] {
        try HeraldLimits.checkDeferredCount(sequenceNumbers)
        let entity = try self.receiveSource(path)
        try path.checkReceivesWithoutSession(entity.options, deferred: true)
        try path.checkDistinctDeferred(sequenceNumbers)
        var rows: [StoredMessage] = []
        for sequenceNumber in sequenceNumbers {
            let found = try self.fetchMessages(
                """
                SELECT \(Self.messageColumns) FROM message WHERE entity_id = ? AND seq = ? AND dlq = ? AND state = 1
                AND (lock_nonce IS NULL OR locked_until <= ?)
                """,
                [entity.id, sequenceNumber, path.isDeadLetter, self.monotonic],
                entity: entity
            )
            guard let row = found.first else { throw path.deferredNotFound(sequenceNumber) }
            rows.append(row)
        }
        return try self.deliverDeferred(rows, of: entity, from: path, lockedUntil: self.monotonic + entity.options.lockDuration.nanoseconds)
    }

    /// Locks deferred messages found by number, all with one nonce, until `lockedUntil` (their
    /// own lock, or their session's); those whose delivery count would exceed the maximum go to
    /// the dead-letter queue instead and are left out.
    func deliverDeferred(_ rows: [StoredMessage], of entity: EntityRecord, from path: EntityPath, lockedUntil: Int64) throws -> [ReceivedMessage] {
        // Each lock counts (GUARANTEES.md §4.4), even of a message asked for by number.
        let deliverable = try self.deadLetteringExhausted(rows, of: entity, from: path)
        return try self.deliver(deliverable, of: entity, mode: .peekLock, nonce: try RandomIdentifier.uuid(), lockedUntil: lockedUntil)
    }

    func peek(_ path: EntityPath, from sequenceNumber: Int64, maxCount: Int) throws -> [ReceivedMessage] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let entity = try self.receiveSource(path)
        return try self.fetchMessages(
            "SELECT \(Self.messageColumns) FROM message WHERE entity_id = ? AND dlq = ? AND seq >= ? ORDER BY seq LIMIT ?",
            [entity.id, path.isDeadLetter, sequenceNumber, maxCount],
            entity: entity
        ).map(\.received)
    }

    // MARK: Settlement

    /// What settlement needs to know of a locked message.
    struct LockedMessage {
        var entity: EntityRecord
        var deliveryCount: Int
        var sessionId: String?
    }

    /// Checks that `token` holds the current, unexpired lock of its message (GUARANTEES.md §4.3, §4.13).
    func lockedMessage(_ token: LockToken) throws -> LockedMessage {
        let entity = try self.receiveSource(token.entity)
        let row = try Row.fetchOne(
            self.db.cachedStatement(
                sql: """
                    SELECT dlq, lock_nonce, locked_until, session_id, delivery_count FROM message WHERE entity_id = ? AND seq = ?
                    """),
            arguments: [entity.id, token.sequenceNumber]
        )
        guard let row, (row[0] as Bool) == token.entity.isDeadLetter, (row[1] as Data?) == Self.nonceData(token.nonce) else {
            throw token.lockLost
        }
        let sessionId: String? = row[3]
        if token.entity.locksThroughSession(entity.options), let sessionId {
            guard let hold = self.state.sessionLocks[entity.id]?[sessionId], hold.lockedUntil > self.monotonic else {
                throw SessionLock.lost(sessionId, in: token.entity)
            }
        } else if (row[2] as Int64? ?? 0) <= self.monotonic {
            throw token.lockExpired
        }
        return LockedMessage(entity: entity, deliveryCount: row[4], sessionId: sessionId)
    }

    /// Completes `tokens`; tokens that already completed their messages (remembered, see
    /// ``settling(_:as:_:)``) count as completed, and the answer is `alreadySettled` when all had.
    @discardableResult
    func complete(_ tokens: [LockToken]) throws -> SettlementOutcome {
        try HeraldLimits.checkCompletion(tokens)
        // Tokens of one receive share a nonce: settle each such group with one statement, and
        // count the rows it removed; one lost token rejects the whole call (and undoes its writes).
        var alreadyCompleted = 0
        for group in LockToken.groupedByDelivery(tokens) {
            let first = group[0]
            let entity = try self.receiveSource(first.entity)
            if first.entity.locksThroughSession(entity.options) {
                for token in group {
                    let outcome = try self.settling(token, as: .complete) {
                        _ = try self.lockedMessage(token)
                        try self.execute("DELETE FROM message WHERE entity_id = ? AND seq = ?", [entity.id, token.sequenceNumber])
                        return entity
                    }
                    if outcome == .alreadySettled { alreadyCompleted += 1 }
                }
                continue
            }
            let removed = try self.deleteLocked(group, of: entity)
            var completedNow = group
            if removed != group.count {
                // A token whose lock is gone may have completed its message before (a retry).
                let remembered = try self.rememberedSettlements(group).filter { $0.value.kind == .complete && $0.value.isRemembered(now: self.nowMilliseconds) }
                if removed + remembered.count != group.count {
                    throw HeraldError(
                        .lockLost, "\(group.count - removed) of the messages to complete in '\(first.entity)' lost their locks: expired, settled, or superseded"
                    )
                }
                completedNow.removeAll { remembered[$0] != nil }
                alreadyCompleted += remembered.count
            }
            try self.remember(delivery: completedNow, as: .complete, in: entity)
        }
        return alreadyCompleted == tokens.count ? .alreadySettled : .settled
    }

    /// Deletes the messages of `group`, tokens of one delivery (one entity, one nonce), whose
    /// locks they still hold; returns how many it deleted.
    private func deleteLocked(_ group: [LockToken], of entity: EntityRecord) throws -> Int {
        let first = group[0]
        let lockTime = self.state.completionLockTime(self.monotonic)
        guard group.count == 1 else {
            let sequenceNumbers = Self.jsonArray(group.map(\.sequenceNumber))
            try self.execute(
                """
                DELETE FROM message WHERE entity_id = ? AND dlq = ? AND lock_nonce = ? AND locked_until > ?
                AND seq IN (SELECT value FROM json_each(?))
                """,
                [entity.id, first.entity.isDeadLetter, Self.nonceData(first.nonce), lockTime, sequenceNumbers]
            )
            return self.db.changesCount
        }
        // One token (a message handler's commit): by key, without the batch form's JSON list.
        var delete = try BoundStatement(
            self.db, sql: "DELETE FROM message WHERE entity_id = ? AND seq = ? AND dlq = ? AND lock_nonce = ? AND locked_until > ?")
        delete.bind(entity.id)
        delete.bind(first.sequenceNumber)
        delete.bind(first.entity.isDeadLetter)
        delete.bind(Self.nonceData(first.nonce))
        delete.bind(lockTime)
        try delete.execute()
        return self.db.changesCount
    }

    /// Unlocks a message at once and takes its delivery back (not counted).
    @discardableResult
    func release(_ token: LockToken) throws -> SettlementOutcome {
        try self.settling(token, as: .abandon) {
            let locked = try self.lockedMessage(token)
            try self.execute(
                "UPDATE message SET lock_nonce = NULL, locked_until = NULL, visible_at = ?, delivery_count = MAX(delivery_count - 1, 0) WHERE entity_id = ? AND seq = ?",
                [EntityOptions.visibleAt(afterAbandonDelay: nil, now: self.nowMilliseconds), locked.entity.id, token.sequenceNumber]
            )
            self.state.madeReceivableAgain(locked.entity)
            return locked.entity
        }
    }

    @discardableResult
    func abandon(_ token: LockToken, delay: Duration?) throws -> SettlementOutcome {
        try HeraldLimits.checkAbandonDelay(delay)
        return try self.settling(token, as: .abandon) {
            let locked = try self.lockedMessage(token)
            if locked.entity.options.isExhausted(deliveryCount: locked.deliveryCount, inDeadLetterQueue: token.entity.isDeadLetter) {
                try self.deadLetterExhausted(locked.entity, sequenceNumber: token.sequenceNumber, sessionId: locked.sessionId)
                return locked.entity
            }
            try self.execute(
                "UPDATE message SET lock_nonce = NULL, locked_until = NULL, visible_at = ? WHERE entity_id = ? AND seq = ?",
                [EntityOptions.visibleAt(afterAbandonDelay: delay, now: self.nowMilliseconds), locked.entity.id, token.sequenceNumber]
            )
            self.state.madeReceivableAgain(locked.entity)
            return locked.entity
        }
    }

    @discardableResult
    func deferMessage(_ token: LockToken) throws -> SettlementOutcome {
        try self.settling(token, as: .deferral) {
            let locked = try self.lockedMessage(token)
            try token.checkDeferrable()
            try self.execute(
                "UPDATE message SET state = 1, lock_nonce = NULL, locked_until = NULL WHERE entity_id = ? AND seq = ?",
                [locked.entity.id, token.sequenceNumber]
            )
            return locked.entity
        }
    }

    @discardableResult
    func deadLetter(_ token: LockToken, reason: String, description: String?) throws -> SettlementOutcome {
        try HeraldLimits.checkDeadLetterText(reason: reason, description: description)
        return try self.settling(token, as: .deadLetter) {
            let locked = try self.lockedMessage(token)
            try token.checkDeadLetterable()
            try self.moveToDeadLetter(
                locked.entity, sequenceNumber: token.sequenceNumber, sessionId: locked.sessionId, reason: reason, description: description)
            return locked.entity
        }
    }

    func renewLock(_ token: LockToken) throws -> Date {
        let locked = try self.lockedMessage(token)
        var until = self.monotonic + locked.entity.options.lockDuration.nanoseconds
        if token.entity.locksThroughSession(locked.entity.options), let sessionId = locked.sessionId,
            let hold = self.state.sessionLocks[locked.entity.id]?[sessionId]
        {
            until = hold.lockedUntil  // a session message is locked for as long as its session
        }
        try self.execute("UPDATE message SET locked_until = ? WHERE entity_id = ? AND seq = ?", [until, locked.entity.id, token.sequenceNumber])
        return self.wallTime(ofMonotonic: until)
    }

    @discardableResult
    func resubmit(_ token: LockToken) throws -> SettlementOutcome {
        try token.checkResubmittable()
        return try self.settling(token, as: .resubmit) { try self.resubmitLocked(token) }
    }

    private func resubmitLocked(_ token: LockToken) throws -> EntityRecord {
        let locked = try self.lockedMessage(token)
        try self.restoreDeadLetter(of: locked.entity, sequenceNumber: token.sequenceNumber, sessionId: locked.sessionId)
        return locked.entity
    }

    /// Moves a dead letter back to its queue or subscription: its sequence number kept, its
    /// delivery count zero, its time-to-live counted again from now, its session unparked.
    func restoreDeadLetter(of entity: EntityRecord, sequenceNumber: Int64, sessionId: String?) throws {
        try self.execute(
            """
            UPDATE message SET dlq = 0, state = 0, delivery_count = 0, lock_nonce = NULL, locked_until = NULL, visible_at = 0,
                expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE ? + ttl_ms END, dl_reason = NULL, dl_description = NULL
            WHERE entity_id = ? AND seq = ?
            """,
            [self.nowMilliseconds, entity.id, sequenceNumber]
        )
        if let sessionId {
            try self.execute("UPDATE session SET parked = 0 WHERE entity_id = ? AND session_id = ?", [entity.id, sessionId])
        }
        self.state.madeReceivableAgain(entity)
    }
}
