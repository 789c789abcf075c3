import Foundation
import GRDB
import HeraldCore

extension EntityRecord: StoredEntity {}

/// One operation's view of the writer: the open transaction, the writer's state and the time the
/// operation runs at. Every broker operation is a method of this type, in the extensions that
/// follow, and runs synchronously on the writer thread.
struct StoreTransaction {
    let db: Database
    let state: WriterState
    /// Wall-clock time, for stamps, schedules, TTL and duplicate windows.
    let now: Date
    /// ``now`` in milliseconds since 1970.
    let nowMilliseconds: Int64
    /// Monotonic nanoseconds, for locks.
    let monotonic: Int64

    init(db: Database, state: WriterState, now: Date, monotonic: Duration) {
        self.db = db
        self.state = state
        self.now = now
        self.nowMilliseconds = now.millisecondsSince1970
        self.monotonic = monotonic.nanoseconds
    }

    /// The wall-clock time at which a monotonic deadline falls, for display.
    func wallTime(ofMonotonic deadline: Int64) -> Date {
        self.now.addingTimeInterval(TimeInterval(deadline - self.monotonic) / 1e9)
    }

    // MARK: Resolving entities

    /// The queue or topic a sender addresses; queues and topics share one namespace.
    func sendTarget(_ path: EntityPath) throws(HeraldError) -> EntityRecord {
        // Hot path: a cached queue or topic was validated when it was created.
        if !path.isDeadLetter, path.kind != .subscription, let record = self.state.entity(path.entityKey), record.path.kind == path.kind {
            return record
        }
        try path.checkSendTarget()
        return try path.resolved(self.state.entity(path.entityKey))
    }

    /// The queue or subscription a receiver addresses (the owner, for a dead-letter path).
    func receiveSource(_ path: EntityPath) throws(HeraldError) -> EntityRecord {
        if let record = self.state.entity(path.entityKey), record.path == path.origin, path.kind != .topic {
            return record
        }
        try path.checkReceiveSource()
        return try path.resolved(self.state.entity(path.entityKey))
    }

    static func nonceData(_ nonce: UUID) -> Data {
        withUnsafeBytes(of: nonce.uuid) { Data($0) }
    }

    /// `numbers` as a JSON array (`[1,2,3]`), the form a statement reads with `json_each` and
    /// `settled_delivery` stores.
    static func jsonArray(_ numbers: some Sequence<Int64>) -> String {
        "[" + numbers.map(String.init).joined(separator: ",") + "]"
    }
}

// MARK: - Message rows

extension StoreTransaction {
    /// The columns every read of whole messages selects, in the order ``decode(_:entity:lockToken:)`` reads.
    static let messageColumns = """
        seq, dlq, state, visible_at, expires_at, delivery_count, lock_nonce, locked_until, session_id, \
        enqueued_at, message_id, content_type, subject, correlation_id, causation_id, reply_to, ttl_ms, \
        scheduled_at, properties, sender_id, sender_seq, body, dl_reason, dl_description, to_address, \
        reply_to_session_id, annotations
        """

    func decode(_ row: Row, entity: EntityRecord) throws -> StoredMessage {
        let sequenceNumber: Int64 = row[0]
        let isDeadLetter: Bool = row[1]
        let state = try StoredState(code: row[2])
        let visibleAt: Int64 = row[3]
        let properties: Data? = row[18]
        var applicationProperties: [String: PropertyValue] = [:]
        if let properties {
            applicationProperties = try PropertyCodec.decode(properties)
        }
        let ttl: Int64? = row[16]
        let scheduledAt: Int64? = row[17]
        let annotations: Data? = row[26]
        let message = Message(
            messageId: row[10],
            body: row[21],
            contentType: row[11],
            subject: row[12],
            correlationId: row[13],
            causationId: row[14],
            sessionId: row[8],
            replyTo: row[15],
            timeToLive: ttl.map { .milliseconds($0) },
            scheduledEnqueueTime: scheduledAt.map { Date(millisecondsSince1970: $0) },
            applicationProperties: applicationProperties,
            senderId: row[19],
            senderSequence: row[20],
            replyToSessionId: row[25],
            to: row[24],
            annotations: try annotations.map(PropertyCodec.decode) ?? [:]
        )
        let lockedUntil: Int64? = row[7]
        let hasLock = (row[6] as Data?) != nil
        let expiresAt: Int64? = row[4]
        let received = ReceivedMessage(
            message: message,
            entity: isDeadLetter ? entity.path.deadLetter : entity.path,
            sequenceNumber: sequenceNumber,
            enqueuedTime: Date(millisecondsSince1970: row[9]),
            deliveryCount: row[5],
            // A scheduled message reads as scheduled until a sweep makes it active (see `sweep`).
            state: state.readState,
            lockToken: nil,
            lockedUntil: hasLock ? lockedUntil.map { self.wallTime(ofMonotonic: $0) } : nil,
            expiresAt: expiresAt.map { Date(millisecondsSince1970: $0) },
            deadLetterReason: row[22],
            deadLetterDescription: row[23]
        )
        return StoredMessage(received: received, visibleAt: visibleAt)
    }

    /// The rows `sql` selects, in order.
    func fetchMessages(_ sql: String, _ arguments: StatementArguments, entity: EntityRecord) throws -> [StoredMessage] {
        var unlimited = ReceiveBudget(maxBytes: .max)
        return try self.fetchMessages(sql, arguments, entity: entity, whileFitting: &unlimited)
    }

    /// The rows `sql` selects, in order, while they fit `budget` (the first always does). With a
    /// limited budget the last column selected is the row's size (``readyMessages``), read before
    /// the row is decoded; the rows after the first that does not fit are not read.
    func fetchMessages(_ sql: String, _ arguments: StatementArguments, entity: EntityRecord, whileFitting budget: inout ReceiveBudget) throws -> [StoredMessage]
    {
        let statement = try self.db.cachedStatement(sql: sql)
        let sizeColumn = statement.columnCount - 1
        var rows: [StoredMessage] = []
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try cursor.next() {
            if budget.isLimited, !budget.admit(row[sizeColumn] as Int) { break }
            rows.append(try self.decode(row, entity: entity))
        }
        return rows
    }

    func execute(_ sql: String, _ arguments: StatementArguments) throws {
        try self.db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    /// Moves a message to its entity's dead-letter queue; parks its session when the entity says so.
    func moveToDeadLetter(_ entity: EntityRecord, sequenceNumber: Int64, sessionId: String?, reason: String, description: String?) throws {
        try self.execute(
            """
            UPDATE message SET dlq = 1, state = 0, lock_nonce = NULL, locked_until = NULL, visible_at = 0,
                dl_reason = ?, dl_description = ? WHERE entity_id = ? AND seq = ?
            """,
            [reason, description, entity.id, sequenceNumber]
        )
        self.state.deadLettersMayBeReady(in: entity.id)
        if entity.options.parkSessionOnDeadLetter, let sessionId {
            try self.execute(
                "INSERT INTO session (entity_id, session_id, parked) VALUES (?, ?, 1) ON CONFLICT DO UPDATE SET parked = 1",
                [entity.id, sessionId]
            )
        }
    }

    /// The most scheduled messages one sweep makes active, and the most expired messages it
    /// removes (or dead-letters). A sweep runs on the writer, inside a receive or a count; a client
    /// that scheduled a million messages for one moment, or let as many expire, would otherwise
    /// hold every operation of every entity for seconds (100,000 took 0.6–0.8 s). What is left waits
    /// for the next sweep, the earliest due first: a receive never delivers an expired message
    /// meanwhile (``readyMessages`` and the session receive check the time to live themselves).
    static let sweepLimit = 1000

    /// Makes up to ``sweepLimit`` due scheduled messages active, the earliest due first
    /// (`entity_id`, now in ms, the limit).
    static let dueScheduled = """
        UPDATE message SET state = 0 WHERE entity_id = ?1 AND seq IN (
            SELECT seq FROM message WHERE entity_id = ?1 AND state = 2 AND visible_at <= ?2 ORDER BY visible_at LIMIT ?3)
        """

    /// Up to ``sweepLimit`` unlocked messages whose time to live passed, the earliest expired first
    /// (`entity_id`, now in ms, the monotonic now, the limit).
    static let expiredMessages = """
        SELECT seq, session_id FROM message WHERE entity_id = ? AND dlq = 0 AND expires_at IS NOT NULL
        AND expires_at <= ? AND (lock_nonce IS NULL OR locked_until <= ?) ORDER BY expires_at LIMIT ?
        """

    /// Makes due scheduled messages active and expires messages whose time-to-live passed
    /// (lazily, on receive and count: no timer per message), up to ``sweepLimit`` of each.
    func sweep(_ entity: EntityRecord) throws {
        // Every receive runs it, and it usually changes nothing: bound directly, not through GRDB.
        var due = try BoundStatement(self.db, sql: Self.dueScheduled)
        due.bind(entity.id)
        due.bind(self.nowMilliseconds)
        due.bind(Self.sweepLimit)
        try due.execute()
        if self.db.changesCount > 0 { self.state.madeReceivableAgain(entity) }
        let expired = try Row.fetchAll(
            self.db.cachedStatement(sql: Self.expiredMessages),
            arguments: [entity.id, self.nowMilliseconds, self.monotonic, Self.sweepLimit]
        )
        for row in expired {
            if entity.options.deadLetterOnExpiration {
                try self.moveToDeadLetter(entity, sequenceNumber: row[0], sessionId: row[1], reason: DeadLetterReason.ttlExpired, description: nil)
            } else {
                try self.execute("DELETE FROM message WHERE entity_id = ? AND seq = ?", [entity.id, row[0] as Int64])
            }
        }
    }
}
