import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// One attempt of one operation: a connection (in a transaction, or not), the broker, and the
/// time the attempt runs at. Every broker operation is a method of this type, in the extensions
/// that follow.
struct Store: Sendable {
    let connection: PostgresConnection
    let broker: PostgresBroker
    let now: Now
    /// In a transaction that writes: whether its last statement committed it (see ``rowsThenCommit(_:if:)``).
    var chainedCommit: ChainedCommit? = nil

    var tables: Tables { self.broker.tables }
    var logger: Logger { self.broker.configuration.logger }

    @discardableResult
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await self.connection.query(query, logger: self.logger).collect()
    }

    func execute(_ sql: String) async throws {
        _ = try await self.rows(PostgresQuery(unsafeSQL: sql))
    }

    // MARK: Resolving entities

    static let entityColumns = "id, kind, name, topic_id, topic_name, options, rules"

    static func decodeEntity(_ row: PostgresRow) throws -> CachedEntity {
        let (id, kind, name, topicId, topicName, optionsJSON, rulesJSON) = try row.decode(
            (Int64, String, String, Int64?, String?, String, String?).self
        )
        let decoder = JSONDecoder()
        let options = try decoder.decode(EntityOptions.self, from: Data(optionsJSON.utf8))
        let rules = try rulesJSON.map { try decoder.decode([SubscriptionRule].self, from: Data($0.utf8)) } ?? []
        let path: EntityPath
        switch kind {
        case "queue": path = .queue(name)
        case "topic": path = .topic(name)
        default: path = .subscription(name, of: topicName ?? "")
        }
        return CachedEntity(id: id, path: path, options: options, rules: rules, topicId: topicId)
    }

    /// The entity with `key`: from the cache, or from the database.
    func lookup(_ key: String) async throws -> CachedEntity? {
        if let cached = self.broker.cache.entity(key) { return cached }
        return try await self.fetch(key)
    }

    /// The entity with `key` as the database has it now; refreshes the cache.
    func fetch(_ key: String) async throws -> CachedEntity? {
        let rows = try await self.rows("SELECT \(unescaped: Self.entityColumns) FROM \(unescaped: self.tables.entity) WHERE key = \(key)")
        guard let row = rows.first else {
            self.broker.cache.forget(key)
            return nil
        }
        let record = try Self.decodeEntity(row)
        self.broker.cache.store(record)
        return record
    }

    /// The queue or topic a sender addresses; queues and topics share one namespace.
    func sendTarget(_ path: EntityPath, fresh: Bool = false) async throws -> CachedEntity {
        try path.checkSendTarget()
        return try path.resolved(fresh ? try await self.fetch(path.entityKey) : try await self.lookup(path.entityKey))
    }

    /// The queue or subscription a receiver addresses (the owner, for a dead-letter path).
    func receiveSource(_ path: EntityPath, fresh: Bool = false) async throws -> CachedEntity {
        try path.checkReceiveSource()
        return try path.resolved(fresh ? try await self.fetch(path.entityKey) : try await self.lookup(path.entityKey))
    }

    /// The key a waiting receiver of `path` waits on.
    func waitKey(_ path: EntityPath) async throws -> String {
        try await self.receiveSource(path).waitKey(deadLetter: path.isDeadLetter)
    }

    /// After an empty answer from a cached entity: checks that the entity still exists with that
    /// id (another process may have deleted or recreated it); `true` when the cache was stale.
    func cacheWasStale(_ record: CachedEntity) async throws -> Bool {
        let fresh = try await self.fetch(record.path.entityKey)
        return fresh?.id != record.id
    }

}

// MARK: - Message rows

extension Store {
    static let messageColumnNames = [
        "seq", "dlq", "state", "visible_at", "expires_at", "delivery_count", "lock_nonce", "locked_until", "session_id",
        "enqueued_at", "message_id", "content_type", "subject", "correlation_id", "causation_id", "reply_to", "ttl_ms",
        "scheduled_at", "properties", "sender_id", "sender_seq", "body", "dl_reason", "dl_description", "to_address",
        "reply_to_session_id", "annotations",
    ]

    /// The columns every read of whole messages selects, in the order ``decode(_:entity:)`` reads.
    static func messageColumns(_ prefix: String = "") -> String {
        Self.messageColumnNames.map { prefix + $0 }.joined(separator: ", ")
    }

    /// Decodes the message columns, in ``messageColumnNames`` order.
    func decode(_ row: PostgresRow, entity: CachedEntity) throws -> StoredMessage {
        // One variadic decode walks the row once, with no cell per column (a receive's hot path).
        let (
            sequenceNumber, isDeadLetter, state, visibleAt, expiresAt, deliveryCount, nonce, lockedUntil, sessionId,
            enqueuedAt, messageId, contentType, subject, correlationId, causationId, replyTo, ttl,
            scheduledAt, properties, senderId, senderSequence, body, deadLetterReason, deadLetterDescription, to,
            replyToSessionId, annotations
        ) = try row.decode(
            (
                Int64, Bool, Int64, Int64, Int64?, Int64, UUID?, Int64?, String?,
                Int64, String, String?, String?, String?, String?, String?, Int64?,
                Int64?, Data?, String?, Int64?, Data, String?, String?, String?,
                String?, Data?
            ).self
        )
        let message = Message(
            messageId: messageId,
            body: body,
            contentType: contentType,
            subject: subject,
            correlationId: correlationId,
            causationId: causationId,
            sessionId: sessionId,
            replyTo: replyTo,
            timeToLive: ttl.map { .milliseconds($0) },
            scheduledEnqueueTime: scheduledAt.map { Date(millisecondsSince1970: $0) },
            applicationProperties: try properties.map { try PropertyCodec.decode($0) } ?? [:],
            senderId: senderId,
            senderSequence: senderSequence,
            replyToSessionId: replyToSessionId,
            to: to,
            annotations: try annotations.map { try PropertyCodec.decode($0) } ?? [:]
        )
        let received = ReceivedMessage(
            message: message,
            entity: isDeadLetter ? entity.path.deadLetter : entity.path,
            sequenceNumber: sequenceNumber,
            enqueuedTime: Date(millisecondsSince1970: enqueuedAt),
            deliveryCount: Int(deliveryCount),
            state: try StoredState(code: state).readState(visibleAt: visibleAt, now: self.now.wall),
            lockToken: nil,
            lockedUntil: nonce != nil ? lockedUntil.map { self.now.display(lock: $0) } : nil,
            expiresAt: expiresAt.map { Date(millisecondsSince1970: $0) },
            deadLetterReason: deadLetterReason,
            deadLetterDescription: deadLetterDescription
        )
        return StoredMessage(received: received, visibleAt: visibleAt)
    }

    /// The SET clause that moves a message to the dead-letter queue.
    static let deadLetterAssignments = "dlq = TRUE, state = 0, lock_nonce = NULL, locked_until = NULL, visible_at = 0"

    /// Moves a message to its entity's dead-letter queue; parks its session when the entity says so.
    func moveToDeadLetter(_ entity: CachedEntity, sequenceNumber: Int64, sessionId: String?, reason: String, description: String?) async throws {
        try await self.rows(
            """
            UPDATE \(unescaped: self.tables.message) SET \(unescaped: Self.deadLetterAssignments), dl_reason = \(reason), dl_description = \(description)
            WHERE entity_id = \(entity.id) AND seq = \(sequenceNumber)
            """
        )
        if entity.options.parkSessionOnDeadLetter, let sessionId {
            try await self.park(entity, [sessionId])
        }
    }

    func park(_ entity: CachedEntity, _ sessionIds: [String]) async throws {
        guard !sessionIds.isEmpty else { return }
        try await self.rows(
            """
            INSERT INTO \(unescaped: self.tables.session) (entity_id, session_id, parked)
            SELECT \(entity.id), s, TRUE FROM unnest(\(Array(Set(sessionIds)))::text[]) AS s
            ON CONFLICT (entity_id, session_id) DO UPDATE SET parked = TRUE
            """
        )
    }

    /// Expires every unlocked message of `entity` whose time-to-live passed: dead-letters it (or
    /// drops it); lazily, on receive and count, with no timer per message. Returns whether any did.
    @discardableResult
    func sweepExpired(_ entity: CachedEntity) async throws -> Bool {
        let rows: [PostgresRow]
        if entity.options.deadLetterOnExpiration {
            rows = try await self.rows(
                """
                UPDATE \(unescaped: self.tables.message) SET \(unescaped: Self.deadLetterAssignments), dl_reason = \(DeadLetterReason.ttlExpired), dl_description = NULL
                WHERE entity_id = \(entity.id) AND seq IN (
                    SELECT seq FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND NOT dlq AND expires_at IS NOT NULL
                    AND expires_at <= \(self.now.wall) AND (lock_nonce IS NULL OR locked_until <= \(self.now.lock))
                    FOR UPDATE SKIP LOCKED)
                RETURNING session_id
                """
            )
        } else {
            rows = try await self.rows(
                """
                DELETE FROM \(unescaped: self.tables.message)
                WHERE entity_id = \(entity.id) AND seq IN (
                    SELECT seq FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND NOT dlq AND expires_at IS NOT NULL
                    AND expires_at <= \(self.now.wall) AND (lock_nonce IS NULL OR locked_until <= \(self.now.lock))
                    FOR UPDATE SKIP LOCKED)
                RETURNING session_id
                """
            )
        }
        if entity.options.parkSessionOnDeadLetter && entity.options.deadLetterOnExpiration {
            try await self.park(entity, try rows.compactMap { try $0.decode(String?.self) })
        }
        return !rows.isEmpty && entity.options.deadLetterOnExpiration
    }

    /// Moves a message whose delivery count reached the maximum to the dead-letter queue.
    func deadLetterExhausted(_ entity: CachedEntity, sequenceNumber: Int64, sessionId: String?) async throws {
        try await self.moveToDeadLetter(
            entity, sequenceNumber: sequenceNumber, sessionId: sessionId,
            reason: DeadLetterReason.maxDeliveryCountExceeded, description: entity.options.exhaustedDescription
        )
    }

    /// Dead-letters every visible, unlocked message whose delivery count reached the maximum (a
    /// lock expired on its last allowed delivery). Returns whether any was.
    @discardableResult
    func deadLetterExhausted(_ entity: CachedEntity) async throws -> Bool {
        let rows = try await self.rows(
            """
            UPDATE \(unescaped: self.tables.message) SET \(unescaped: Self.deadLetterAssignments),
                dl_reason = \(DeadLetterReason.maxDeliveryCountExceeded), dl_description = \(entity.options.exhaustedDescription)
            WHERE entity_id = \(entity.id) AND seq IN (
                SELECT seq FROM \(unescaped: self.tables.message) WHERE entity_id = \(entity.id) AND NOT dlq AND state = 0
                AND delivery_count >= \(Int64(entity.options.maxDeliveryCount)) AND (lock_nonce IS NULL OR locked_until <= \(self.now.lock))
                FOR UPDATE SKIP LOCKED)
            RETURNING session_id
            """
        )
        if entity.options.parkSessionOnDeadLetter {
            try await self.park(entity, try rows.compactMap { try $0.decode(String?.self) })
        }
        return !rows.isEmpty
    }
}
