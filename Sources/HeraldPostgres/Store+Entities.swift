import Foundation
import HeraldCore
import PostgresNIO

extension Store {
    func createEntity(_ path: EntityPath, options: EntityOptions, filter: SubscriptionFilter?) async throws {
        try path.checkCreation(options: options, filter: filter)
        var topic: CachedEntity?
        if path.kind == .subscription {
            // Locks the topic row: sends to the topic, which lock it too, see the new
            // subscription from their next statement on (and the generation tells their caches).
            let rows = try await self.rows(
                """
                UPDATE \(unescaped: self.tables.entity) SET generation = generation + 1 WHERE key = \(path.topic ?? "") AND kind = 'topic'
                RETURNING \(unescaped: Self.entityColumns)
                """
            )
            guard let row = rows.first else {
                throw EntityPath.topic(path.topic ?? "").notFoundError(found: try await self.fetch(path.topic ?? "")?.path.kind)
            }
            topic = try Self.decodeEntity(row)
        }
        let optionsJSON = try StoredJSON.encode(options)
        let rulesJSON = path.kind == .subscription ? try StoredJSON.encode(path.initialRules(filter: filter)) : nil
        let rows = try await self.rows(
            """
            INSERT INTO \(unescaped: self.tables.entity) (key, kind, name, topic_id, topic_name, options, rules)
            VALUES (\(path.entityKey), \(path.kind.rawValue), \(path.name), \(topic?.id), \(path.topic), \(optionsJSON), \(rulesJSON))
            ON CONFLICT (key) DO NOTHING
            RETURNING \(unescaped: Self.entityColumns)
            """
        )
        guard let row = rows.first else {
            let existing = try await self.fetch(path.entityKey)
            throw path.alreadyExistsError(existing: existing?.path.kind)
        }
        self.broker.cache.store(try Self.decodeEntity(row))
    }

    func deleteEntity(_ path: EntityPath) async throws {
        try path.validate()
        if path.kind == .subscription {
            // Lock the topic first, as sends and creations do.
            try await self.rows("UPDATE \(unescaped: self.tables.entity) SET generation = generation + 1 WHERE key = \(path.topic ?? "") AND kind = 'topic'")
        }
        let rows = try await self.rows(
            "DELETE FROM \(unescaped: self.tables.entity) WHERE key = \(path.entityKey) AND kind = \(path.kind.rawValue) RETURNING id"
        )
        self.broker.cache.forget(path.entityKey)
        guard let row = rows.first else {
            throw path.notFoundError(found: try await self.fetch(path.entityKey)?.path.kind)
        }
        var ids = [try row.decode(Int64.self)]
        if path.kind == .topic {
            for subscription in try await self.rows("DELETE FROM \(unescaped: self.tables.entity) WHERE topic_id = \(ids[0]) RETURNING id, key") {
                let (id, key) = try subscription.decode((Int64, String).self)
                ids.append(id)
                self.broker.cache.forget(key)
            }
        }
        for table in [self.tables.message, self.tables.session, self.tables.dedup, self.tables.settledDelivery] {
            try await self.rows("DELETE FROM \(unescaped: table) WHERE entity_id = ANY(\(ids))")
        }
    }

    func listEntities(kind: EntityPath.Kind, topic: String?) async throws -> [SubscriptionDescription] {
        let rows: [PostgresRow]
        if let topic {
            try EntityName.validate(topic)
            let record = try EntityPath.topic(topic).resolved(try await self.fetch(topic))
            rows = try await self.rows("SELECT \(unescaped: Self.entityColumns) FROM \(unescaped: self.tables.entity) WHERE topic_id = \(record.id)")
        } else {
            rows = try await self.rows("SELECT \(unescaped: Self.entityColumns) FROM \(unescaped: self.tables.entity) WHERE kind = \(kind.rawValue)")
        }
        return try rows.map(Self.decodeEntity)
            .map { SubscriptionDescription(path: $0.path, options: $0.options, rules: $0.rules) }
            .sorted { $0.path.name < $1.path.name }
    }

    func counts(_ path: EntityPath) async throws -> (EntityCounts, Set<String>) {
        let entity = try await self.receiveSource(path.origin, fresh: true)
        let expired = try await self.sweepExpired(entity)
        let exhausted = try await self.deadLetterExhausted(entity)
        var counts = EntityCounts()
        let rows = try await self.rows(
            """
            SELECT dlq, state = 1, (lock_nonce IS NOT NULL AND locked_until > \(self.now.lock)), (state = 2 AND visible_at > \(self.now.wall)), count(*)
            FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) GROUP BY 1, 2, 3, 4
            """
        )
        for row in rows {
            let (isDeadLetter, isDeferred, isLocked, isScheduled, count) = try row.decode((Bool, Bool, Bool, Bool, Int64).self)
            counts.add(Int(count), of: path, isDeadLetter: isDeadLetter, isLocked: isLocked, isDeferred: isDeferred, isScheduled: isScheduled)
        }
        return (counts, expired || exhausted ? [entity.waitKey(deadLetter: true)] : [])
    }
}
