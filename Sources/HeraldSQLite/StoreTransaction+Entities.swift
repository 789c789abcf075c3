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

    func counts(_ path: EntityPath) throws -> EntityCounts {
        let entity = try self.receiveSource(path.origin)
        try self.sweep(entity)
        try self.deadLetterExhausted(entity)
        var counts = EntityCounts()
        let rows = try Row.fetchAll(
            self.db.cachedStatement(
                sql: """
                    SELECT dlq, state, (lock_nonce IS NOT NULL AND locked_until > ?) AS locked, COUNT(*)
                    FROM message WHERE entity_id = ? GROUP BY 1, 2, 3
                    """),
            arguments: [self.monotonic, entity.id]
        )
        for row in rows {
            // Swept just now: a message still stored as scheduled is scheduled later.
            let state = try StoredState(code: row[1])
            counts.add(row[3], of: path, isDeadLetter: row[0], isLocked: row[2], isDeferred: state == .deferred, isScheduled: state == .scheduled)
        }
        return counts
    }

    /// Dead-letters every visible, unlocked message whose delivery count reached the maximum
    /// (a lock expired on its last allowed delivery).
    func deadLetterExhausted(_ entity: EntityRecord) throws {
        let rows = try Row.fetchAll(
            self.db.cachedStatement(
                sql: """
                    SELECT seq, session_id FROM message WHERE entity_id = ? AND dlq = 0 AND state = 0
                    AND delivery_count >= ? AND (lock_nonce IS NULL OR locked_until <= ?)
                    """),
            arguments: [entity.id, entity.options.maxDeliveryCount, self.monotonic]
        )
        for row in rows {
            try self.deadLetterExhausted(entity, sequenceNumber: row[0], sessionId: row[1])
        }
    }
}
