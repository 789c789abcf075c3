import Foundation
import GRDB
import HeraldCore

extension StoreTransaction {
    func createEntity(_ path: EntityPath, options: EntityOptions, filter: SubscriptionFilter?) throws {
        try path.checkCreation(options: options, filter: filter)
        var topic: EntityRecord?
        if path.kind == .subscription {
            topic = try EntityPath.topic(path.topic ?? "").resolved(self.state.entity(path.topic ?? ""))
        }
        if let existing = self.state.entity(path.entityKey) { throw path.alreadyExistsError(existing: existing.path.kind) }
        let optionsJSON = try StoredJSON.encode(options)
        let rules = path.initialRules(filter: filter)
        let rulesJSON = path.kind == .subscription ? try StoredJSON.encode(rules) : nil
        try self.execute(
            "INSERT INTO entity (key, kind, name, topic_id, options, rules) VALUES (?, ?, ?, ?, ?, ?)",
            [path.entityKey, path.kind.rawValue, path.name, topic?.id, optionsJSON, rulesJSON]
        )
        let record = EntityRecord(
            id: self.db.lastInsertedRowID, path: path, options: options, rules: rules,
            topicId: topic?.id, lastSequence: 0
        )
        self.state.add(record)
    }

    func deleteEntity(_ path: EntityPath) throws {
        try path.validate()
        let record = try path.resolved(self.state.entity(path.entityKey))
        let ids = [record.id] + self.state.subscriptions(of: record).map(\.id)
        for id in ids {
            for table in ["message", "session", "dedup"] {
                try self.execute("DELETE FROM \(table) WHERE entity_id = ?", [id])
            }
            try self.execute("DELETE FROM entity WHERE id = ?", [id])
        }
        self.state.remove(record)
    }

    func listEntities(kind: EntityPath.Kind, topic: String?) throws -> [SubscriptionDescription] {
        var topicRecord: EntityRecord?
        if let topic {
            try EntityName.validate(topic)
            topicRecord = try EntityPath.topic(topic).resolved(self.state.entity(topic))
        }
        let records =
            topicRecord.map { self.state.subscriptions(of: $0) }
            ?? self.state.entitiesByKey.values.filter { $0.path.kind == kind }
        return
            records
            .map { SubscriptionDescription(path: $0.path, options: $0.options, rules: $0.rules) }
            .sorted { $0.path.name < $1.path.name }
    }

    /// Counts `path`'s messages after sweeping it. Two reads that never touch a message's row for
    /// the many unlocked messages: the messages per dead-letter flag and state, from
    /// `message_ready` alone, and the locked ones among those delivered (`message_delivered`).
    func counts(_ path: EntityPath) throws -> EntityCounts {
        let entity = try self.receiveSource(path.origin)
        try self.sweep(entity)
        try self.deadLetterExhausted(entity)
        let stored = try Row.fetchAll(self.db.cachedStatement(sql: Self.storedCounts), arguments: [entity.id])
        let locked = try Row.fetchAll(self.db.cachedStatement(sql: Self.lockedCounts), arguments: [entity.id, self.monotonic])
        var lockedByBucket: [StateBucket: Int] = [:]
        for row in locked { lockedByBucket[StateBucket(deadLetter: row[0], state: row[1])] = row[2] }
        var counts = EntityCounts()
        for row in stored {
            let isDeadLetter: Bool = row[0]
            // Swept just now: a message still stored as scheduled is scheduled later.
            let state = try StoredState(code: row[1])
            let lockedCount = lockedByBucket[StateBucket(deadLetter: isDeadLetter, state: row[1])] ?? 0
            for (count, isLocked) in [(row[2] - lockedCount, false), (lockedCount, true)] where count > 0 {
                counts.add(count, of: path, isDeadLetter: isDeadLetter, isLocked: isLocked, isDeferred: state == .deferred, isScheduled: state == .scheduled)
            }
        }
        return counts
    }

    /// Messages of one dead-letter flag and stored state, as ``counts(_:)`` groups them.
    private struct StateBucket: Hashable {
        var deadLetter: Bool
        var state: Int64
    }

    /// An entity's messages by dead-letter flag and state (`entity_id`), read from the index alone.
    static let storedCounts = "SELECT dlq, state, COUNT(*) FROM message INDEXED BY message_ready WHERE entity_id = ? GROUP BY 1, 2"

    /// An entity's locked messages by dead-letter flag and state (`entity_id`, the monotonic now),
    /// among those delivered at least once.
    static let lockedCounts = """
        SELECT dlq, state, COUNT(*) FROM message INDEXED BY message_delivered
        WHERE entity_id = ? AND delivery_count > 0 AND lock_nonce IS NOT NULL AND locked_until > ? GROUP BY 1, 2
        """

    /// An entity's visible, unlocked messages whose delivery count reached the maximum
    /// (`entity_id`, the maximum, the monotonic now), among those delivered at least once.
    static let exhaustedMessages = """
        SELECT seq, session_id FROM message INDEXED BY message_delivered
        WHERE entity_id = ? AND dlq = 0 AND delivery_count > 0 AND delivery_count >= ?
        AND state = 0 AND (lock_nonce IS NULL OR locked_until <= ?)
        """

    /// Dead-letters every visible, unlocked message whose delivery count reached the maximum
    /// (a lock expired on its last allowed delivery).
    func deadLetterExhausted(_ entity: EntityRecord) throws {
        let rows = try Row.fetchAll(
            self.db.cachedStatement(sql: Self.exhaustedMessages),
            arguments: [entity.id, entity.options.maxDeliveryCount, self.monotonic]
        )
        for row in rows {
            try self.deadLetterExhausted(entity, sequenceNumber: row[0], sessionId: row[1])
        }
    }
}
