import Foundation
import Logging
import PostgresNIO

/// The qualified names of Herald's tables in one schema.
struct Tables: Sendable {
    let schema: String
    let entity: String
    let message: String
    let session: String
    let dedup: String
    let document: String
    let inbox: String
    let event: String
    let eventHead: String
    let settlement: String
    let settledDelivery: String
    let bulkJob: String
    let bulkJobItem: String
    let migrations: String

    init(schema: String) {
        let quoted = "\"\(schema)\""
        self.schema = quoted
        self.entity = "\(quoted).entity"
        self.message = "\(quoted).message"
        self.session = "\(quoted).session"
        self.dedup = "\(quoted).dedup"
        self.document = "\(quoted).document"
        self.inbox = "\(quoted).inbox"
        self.event = "\(quoted).event"
        self.eventHead = "\(quoted).event_head"
        self.settlement = "\(quoted).settlement"
        self.settledDelivery = "\(quoted).settled_delivery"
        self.bulkJob = "\(quoted).bulk_job"
        self.bulkJobItem = "\(quoted).bulk_job_item"
        self.migrations = "\(quoted).herald_migrations"
    }
}

/// Herald's schema as forward-only, numbered migrations, applied by every broker on start.
///
/// Every broker that starts runs ``migrate(_:tables:schema:logger:)`` in one transaction under a
/// transaction-scoped advisory lock keyed by the schema name, so brokers starting at once on many
/// processes or hosts apply each migration exactly once and wait for each other; a broker that
/// finds every migration applied changes nothing. A database migrated by a newer Herald (a version
/// this code does not know) is refused rather than served.
enum Schema {
    struct Migration: Sendable {
        let version: Int64
        let name: String
        let sql: @Sendable (Tables) -> [String]
    }

    static let migrations: [Migration] = [
        Migration(version: 1, name: "messages, sessions, duplicate detection, documents, inbox, events") { t in
            [
                """
                CREATE TABLE \(t.entity) (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    key TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    topic_id BIGINT,
                    topic_name TEXT,
                    options TEXT NOT NULL,
                    filter TEXT,
                    last_seq BIGINT NOT NULL DEFAULT 0,
                    generation BIGINT NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX entity_topic ON \(t.entity) (topic_id) WHERE topic_id IS NOT NULL",
                // One row per message of a queue or subscription, and per dead letter (dlq).
                // state: StoredState (0 active, 1 deferred, 2 scheduled: active once visible_at has passed).
                // visible_at, expires_at, enqueued_at, scheduled_at: wall-clock milliseconds;
                // locked_until: lock-clock milliseconds (see PostgresBroker, "Time").
                // fillfactor 50 leaves room on each page for a second version of every row, so that
                // locking a message (an UPDATE of columns no index covers) is a HOT update that
                // writes no index entry; a message is typically locked once, then deleted.
                """
                CREATE TABLE \(t.message) (
                    entity_id BIGINT NOT NULL,
                    seq BIGINT NOT NULL,
                    dlq BOOLEAN NOT NULL DEFAULT FALSE,
                    state BIGINT NOT NULL DEFAULT 0,
                    visible_at BIGINT NOT NULL,
                    expires_at BIGINT,
                    delivery_count BIGINT NOT NULL DEFAULT 0,
                    lock_nonce UUID,
                    locked_until BIGINT,
                    session_id TEXT,
                    enqueued_at BIGINT NOT NULL,
                    message_id TEXT NOT NULL,
                    content_type TEXT,
                    subject TEXT,
                    correlation_id TEXT,
                    causation_id TEXT,
                    reply_to TEXT,
                    ttl_ms BIGINT,
                    scheduled_at BIGINT,
                    properties BYTEA,
                    sender_id TEXT,
                    sender_seq BIGINT,
                    body BYTEA NOT NULL,
                    dl_reason TEXT,
                    dl_description TEXT,
                    PRIMARY KEY (entity_id, seq)
                ) WITH (
                    fillfactor = 50,
                    autovacuum_vacuum_scale_factor = 0.01,
                    autovacuum_vacuum_threshold = 1000,
                    autovacuum_vacuum_insert_scale_factor = 0.05,
                    autovacuum_analyze_scale_factor = 0.02,
                    autovacuum_vacuum_cost_delay = 0
                )
                """,
                // Receive walks this in sequence order; deferred messages are not in it.
                "CREATE INDEX message_ready ON \(t.message) (entity_id, dlq, seq) WHERE state <> 1",
                "CREATE INDEX message_session ON \(t.message) (entity_id, session_id, seq) WHERE session_id IS NOT NULL",
                // Scheduled messages, for cancellation by message id.
                "CREATE INDEX message_scheduled ON \(t.message) (entity_id, message_id) WHERE state = 2",
                "CREATE INDEX message_expiry ON \(t.message) (entity_id, expires_at) WHERE expires_at IS NOT NULL AND NOT dlq",
                // Session state, parking, and the session lock (lock-clock milliseconds).
                """
                CREATE TABLE \(t.session) (
                    entity_id BIGINT NOT NULL,
                    session_id TEXT NOT NULL,
                    state BYTEA,
                    parked BOOLEAN NOT NULL DEFAULT FALSE,
                    lock_nonce UUID,
                    locked_until BIGINT,
                    PRIMARY KEY (entity_id, session_id)
                )
                """,
                // Duplicate detection (kind: DuplicateDetection.Kind): 0 keys a messageId, 1 a (senderId, senderSequence) pair.
                """
                CREATE TABLE \(t.dedup) (
                    entity_id BIGINT NOT NULL,
                    kind BIGINT NOT NULL,
                    key TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    PRIMARY KEY (entity_id, kind, key)
                ) WITH (autovacuum_vacuum_scale_factor = 0.02)
                """,
                "CREATE INDEX dedup_expiry ON \(t.dedup) (expires_at)",
                """
                CREATE TABLE \(t.document) (
                    collection TEXT NOT NULL,
                    key TEXT NOT NULL,
                    version BIGINT NOT NULL,
                    data BYTEA NOT NULL,
                    PRIMARY KEY (collection, key)
                )
                """,
                """
                CREATE TABLE \(t.inbox) (
                    handler TEXT NOT NULL,
                    message_id TEXT NOT NULL,
                    handled_at BIGINT NOT NULL,
                    PRIMARY KEY (handler, message_id)
                )
                """,
                // Positions come from event_head, whose row lock is held until commit: positions
                // are assigned in commit order, so a reader of readAll never sees a gap fill later.
                """
                CREATE TABLE \(t.event) (
                    position BIGINT PRIMARY KEY,
                    stream TEXT NOT NULL,
                    version BIGINT NOT NULL,
                    type TEXT NOT NULL,
                    data BYTEA NOT NULL,
                    correlation_id TEXT,
                    causation_id TEXT,
                    recorded_at BIGINT NOT NULL,
                    UNIQUE (stream, version)
                )
                """,
                "CREATE TABLE \(t.eventHead) (id BIGINT PRIMARY KEY CHECK (id = 1), last_position BIGINT NOT NULL)",
                // Fails the statement (undoing its writes) when a count is not the one expected:
                // lets one autocommit statement complete a batch of messages all or nothing.
                """
                CREATE FUNCTION \(t.schema).herald_expect_count(actual BIGINT, expected BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
                BEGIN
                    IF actual <> expected THEN
                        RAISE EXCEPTION 'herald: % of % rows matched', actual, expected USING ERRCODE = '\(Self.countMismatch)';
                    END IF;
                    RETURN actual;
                END $$
                """,
                "INSERT INTO \(t.eventHead) (id, last_position) VALUES (1, 0)",
            ]
        },
        Migration(version: 2, name: "settlements remembered for retries") { t in
            [
                // How each lock token settled its message (kind: SettlementKind) and when
                // (wall-clock milliseconds), so that a retried settlement learns that it already
                // happened. Forgotten after HeraldLimits.settlementMemory.
                """
                CREATE TABLE \(t.settlement) (
                    entity_id BIGINT NOT NULL,
                    seq BIGINT NOT NULL,
                    nonce UUID NOT NULL,
                    kind BIGINT NOT NULL,
                    settled_at BIGINT NOT NULL,
                    PRIMARY KEY (entity_id, seq, nonce)
                ) WITH (autovacuum_vacuum_scale_factor = 0.02)
                """,
                "CREATE INDEX settlement_age ON \(t.settlement) (settled_at)",
            ]
        },
        Migration(version: 3, name: "bulk jobs on dead letters") { t in
            [
                // A job's progress (GUARANTEES.md §6). entity: the path of the queue or subscription;
                // target: a move's queue or topic name, target_kind its kind. Times: wall-clock ms.
                """
                CREATE TABLE \(t.bulkJob) (
                    id TEXT PRIMARY KEY,
                    entity_id BIGINT NOT NULL,
                    entity TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT,
                    target_kind TEXT,
                    state TEXT NOT NULL,
                    total BIGINT NOT NULL,
                    processed BIGINT NOT NULL DEFAULT 0,
                    applied BIGINT NOT NULL DEFAULT 0,
                    not_found BIGINT NOT NULL DEFAULT 0,
                    failed BIGINT NOT NULL DEFAULT 0,
                    failure TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX bulk_job_state ON \(t.bulkJob) (state, created_at)",
                // Its frozen selection: one row per dead letter not yet looked at; a step deletes the
                // rows it handled in the transaction that acts on their dead letters.
                """
                CREATE TABLE \(t.bulkJobItem) (
                    job_id TEXT NOT NULL,
                    position BIGINT NOT NULL,
                    seq BIGINT NOT NULL,
                    PRIMARY KEY (job_id, position)
                )
                """,
            ]
        },
        Migration(version: 4, name: "message addressing: to, reply-to session, annotations") { t in
            [
                // Fields a Service Bus message carries besides Herald's own (NULL when unset):
                // `To`, `ReplyToSessionId`, and the sender's own annotations (PropertyCodec).
                "ALTER TABLE \(t.message) ADD COLUMN to_address TEXT, ADD COLUMN reply_to_session_id TEXT, ADD COLUMN annotations BYTEA"
            ]
        },
        Migration(version: 5, name: "topic sequence numbers of subscription copies") { t in
            [
                // A copy that a send to a topic placed in a subscription keeps the topic's sequence
                // number for that send (what the send returned), so that the sender can cancel the
                // scheduled message with it (GUARANTEES.md §4.7). NULL for everything else: queue
                // messages, copies a bulk job's move placed, and rows older than this migration.
                // Dead-lettering and resubmitting keep the row, and so the number; only a copy still
                // scheduled (state 2) is ever cancelled through it. Adding a nullable column without
                // a default rewrites nothing.
                "ALTER TABLE \(t.message) ADD COLUMN topic_seq BIGINT",
                // The cancel's lookup: scheduled copies by topic sequence number. Only scheduled
                // copies: the rest of a topic's traffic writes no entry.
                "CREATE INDEX message_topic_scheduled ON \(t.message) (entity_id, topic_seq) WHERE state = 2 AND topic_seq IS NOT NULL",
                // The dedup table also remembers, with kind 2 (DuplicateDetection.Kind.scheduledWithoutCopies),
                // a scheduled topic message that no subscription took: key its sequence number as
                // text, expires_at its scheduled time. Cancelling it then succeeds, as in Service Bus.
            ]
        },
        Migration(version: 6, name: "subscription rules") { t in
            [
                // A subscription's rules (JSON) replace its one filter: each existing subscription
                // gets the one rule `$Default` holding its filter. `filter` stays unread.
                "ALTER TABLE \(t.entity) ADD COLUMN rules TEXT",
                """
                UPDATE \(t.entity) SET rules = json_build_array(json_build_object(
                    'filter', COALESCE(filter, '{"properties":{}}')::json, 'name', '$Default'))::text
                WHERE kind = 'subscription'
                """,
            ]
        },
        Migration(version: 7, name: "the settlement memory keeps a row per settlement call and delivery") { t in
            [
                // One row per settlement call and delivery instead of one per token: the tokens of
                // one receive share a nonce, and completing a batch of them wrote a row and two index
                // entries for each. `seqs` lists the settled sequence numbers. The table before is
                // dropped: every broker of a schema runs the same version.
                """
                CREATE TABLE \(t.settledDelivery) (
                    entity_id BIGINT NOT NULL,
                    nonce UUID NOT NULL,
                    kind BIGINT NOT NULL,
                    settled_at BIGINT NOT NULL,
                    seqs BIGINT[] NOT NULL
                ) WITH (autovacuum_vacuum_scale_factor = 0.02)
                """,
                "CREATE INDEX settled_delivery_nonce ON \(t.settledDelivery) (entity_id, nonce)",
                "CREATE INDEX settled_delivery_age ON \(t.settledDelivery) (settled_at)",
                """
                INSERT INTO \(t.settledDelivery) (entity_id, nonce, kind, settled_at, seqs)
                SELECT entity_id, nonce, kind, settled_at, array_agg(seq ORDER BY seq) FROM \(t.settlement)
                GROUP BY entity_id, nonce, kind, settled_at
                """,
                "DROP TABLE \(t.settlement)",
            ]
        },
    ]

    /// The SQLSTATE `herald_expect_count` raises.
    static let countMismatch = "HL001"

    /// A 64-bit key for the advisory lock that serializes the migrations of `schema` (FNV-1a).
    static func advisoryKey(_ schema: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "herald.migrations.\(schema)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    /// Creates the schema if needed and applies every migration it lacks, in one transaction.
    static func migrate(_ connection: PostgresConnection, tables: Tables, schema: String, logger: Logger) async throws {
        func run(_ sql: String) async throws {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        }
        try await run("BEGIN")
        do {
            _ = try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryKey(schema)))", logger: logger).collect()
            try await run("CREATE SCHEMA IF NOT EXISTS \(tables.schema)")
            try await run(
                "CREATE TABLE IF NOT EXISTS \(tables.migrations) (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            var applied: Set<Int64> = []
            for row in try await connection.query(PostgresQuery(unsafeSQL: "SELECT version FROM \(tables.migrations)"), logger: logger).collect() {
                applied.insert(try row.decode(Int64.self))
            }
            let known = Set(Self.migrations.map(\.version))
            if let unknown = applied.subtracting(known).max() {
                throw MigrationError(description: "schema \(schema) was migrated to version \(unknown), which this Herald does not know; refusing to use it")
            }
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.sql(tables) { try await run(statement) }
                _ = try await connection.query(
                    "INSERT INTO \(unescaped: tables.migrations) (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                ).collect()
                logger.info("herald applied a migration", metadata: ["herald.schema": "\(schema)", "herald.migration": "\(migration.version)"])
            }
            try await run("COMMIT")
        } catch {
            try? await run("ROLLBACK")
            throw error
        }
    }

    struct MigrationError: Error, CustomStringConvertible {
        let description: String
    }
}
