import Foundation
import GRDB
import HeraldCore

/// The database schema, as forward-only GRDB migrations.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE entity (
                        id INTEGER PRIMARY KEY,
                        key TEXT NOT NULL UNIQUE,
                        kind TEXT NOT NULL,
                        name TEXT NOT NULL,
                        topic_id INTEGER REFERENCES entity(id),
                        options TEXT NOT NULL,
                        filter TEXT,
                        last_seq INTEGER NOT NULL DEFAULT 0
                    );
                    -- One row per message of a queue or subscription, and per dead letter (dlq = 1).
                    -- state: StoredState (0 active, 1 deferred, 2 scheduled). visible_at, expires_at, enqueued_at,
                    -- scheduled_at: wall-clock milliseconds. locked_until: monotonic nanoseconds of the
                    -- process that locked it; every lock is released when the file is opened.
                    CREATE TABLE message (
                        entity_id INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        dlq INTEGER NOT NULL DEFAULT 0,
                        state INTEGER NOT NULL DEFAULT 0,
                        visible_at INTEGER NOT NULL,
                        expires_at INTEGER,
                        delivery_count INTEGER NOT NULL DEFAULT 0,
                        lock_nonce BLOB,
                        locked_until INTEGER,
                        session_id TEXT,
                        enqueued_at INTEGER NOT NULL,
                        message_id TEXT NOT NULL,
                        content_type TEXT,
                        subject TEXT,
                        correlation_id TEXT,
                        causation_id TEXT,
                        reply_to TEXT,
                        ttl_ms INTEGER,
                        scheduled_at INTEGER,
                        properties BLOB,
                        sender_id TEXT,
                        sender_seq INTEGER,
                        body BLOB NOT NULL,
                        dl_reason TEXT,
                        dl_description TEXT,
                        PRIMARY KEY (entity_id, seq)
                    ) WITHOUT ROWID;
                    CREATE INDEX message_ready ON message(entity_id, dlq, state, seq);
                    CREATE INDEX message_session ON message(entity_id, session_id, seq) WHERE session_id IS NOT NULL;
                    CREATE INDEX message_expiry ON message(entity_id, expires_at) WHERE expires_at IS NOT NULL AND dlq = 0;
                    CREATE INDEX message_scheduled ON message(entity_id, visible_at) WHERE state = 2;
                    CREATE TABLE session (
                        entity_id INTEGER NOT NULL,
                        session_id TEXT NOT NULL,
                        state BLOB,
                        parked INTEGER NOT NULL DEFAULT 0,
                        PRIMARY KEY (entity_id, session_id)
                    ) WITHOUT ROWID;
                    -- Duplicate detection (kind: DuplicateDetection.Kind): 0 keys a messageId, 1 a (senderId, senderSequence) pair.
                    CREATE TABLE dedup (
                        entity_id INTEGER NOT NULL,
                        kind INTEGER NOT NULL,
                        key TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        PRIMARY KEY (entity_id, kind, key)
                    ) WITHOUT ROWID;
                    CREATE INDEX dedup_expiry ON dedup(expires_at);
                    -- The highest sequence each sender has stamped, kept for as long as the entity lives.
                    CREATE TABLE sender (
                        entity_id INTEGER NOT NULL,
                        sender_id TEXT NOT NULL,
                        last_sender_seq INTEGER NOT NULL,
                        last_seq INTEGER NOT NULL,
                        PRIMARY KEY (entity_id, sender_id)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2-cqrs") { db in
            try db.execute(
                sql: """
                    -- Sender sequences are deduplicated by exact pair (table dedup, kind 1), so a
                    -- reordered, lower number is accepted; the high-water mark is no longer kept.
                    DROP TABLE sender;
                    -- Versioned documents: process-manager state, read models, projection checkpoints.
                    CREATE TABLE document (
                        collection TEXT NOT NULL,
                        key TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        data BLOB NOT NULL,
                        PRIMARY KEY (collection, key)
                    ) WITHOUT ROWID;
                    -- The inbox: which handler has handled which message.
                    CREATE TABLE inbox (
                        handler TEXT NOT NULL,
                        message_id TEXT NOT NULL,
                        handled_at INTEGER NOT NULL,
                        PRIMARY KEY (handler, message_id)
                    ) WITHOUT ROWID;
                    -- The event store: position is global and never reused (AUTOINCREMENT).
                    CREATE TABLE event (
                        position INTEGER PRIMARY KEY AUTOINCREMENT,
                        stream TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        type TEXT NOT NULL,
                        data BLOB NOT NULL,
                        correlation_id TEXT,
                        causation_id TEXT,
                        recorded_at INTEGER NOT NULL,
                        UNIQUE (stream, version)
                    );
                    """)
        }
        migrator.registerMigration("v3-settlements") { db in
            try db.execute(
                sql: """
                    -- How each lock token settled its message (kind: SettlementKind) and when (wall-clock
                    -- milliseconds), so that a retried settlement learns that it already happened.
                    -- Forgotten after HeraldLimits.settlementMemory.
                    CREATE TABLE settlement (
                        entity_id INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        nonce BLOB NOT NULL,
                        kind INTEGER NOT NULL,
                        settled_at INTEGER NOT NULL,
                        PRIMARY KEY (entity_id, seq, nonce)
                    ) WITHOUT ROWID;
                    CREATE INDEX settlement_age ON settlement(settled_at);
                    """)
        }
        migrator.registerMigration("v4-bulk-jobs") { db in
            try db.execute(
                sql: """
                    -- Bulk jobs on dead letters (GUARANTEES.md §6): the job's progress, and its frozen
                    -- selection, one row per dead letter not yet looked at (a step deletes the rows it
                    -- handled in the transaction that acts on their dead letters). entity: the path of
                    -- the queue or subscription; target: a move's queue or topic name, target_kind its
                    -- kind. Times: wall-clock milliseconds.
                    CREATE TABLE bulk_job (
                        id TEXT PRIMARY KEY,
                        entity_id INTEGER NOT NULL,
                        entity TEXT NOT NULL,
                        action TEXT NOT NULL,
                        target TEXT,
                        target_kind TEXT,
                        state TEXT NOT NULL,
                        total INTEGER NOT NULL,
                        processed INTEGER NOT NULL DEFAULT 0,
                        applied INTEGER NOT NULL DEFAULT 0,
                        not_found INTEGER NOT NULL DEFAULT 0,
                        failed INTEGER NOT NULL DEFAULT 0,
                        failure TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL
                    );
                    CREATE INDEX bulk_job_state ON bulk_job(state, created_at);
                    CREATE TABLE bulk_job_item (
                        job_id TEXT NOT NULL,
                        position INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        PRIMARY KEY (job_id, position)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v5-message-addressing") { db in
            try db.execute(
                sql: """
                    -- Fields a Service Bus message carries besides Herald's own (NULL when unset):
                    -- `To`, `ReplyToSessionId`, and the sender's own annotations (PropertyCodec).
                    ALTER TABLE message ADD COLUMN to_address TEXT;
                    ALTER TABLE message ADD COLUMN reply_to_session_id TEXT;
                    ALTER TABLE message ADD COLUMN annotations BLOB;
                    """)
        }
        migrator.registerMigration("v6-topic-sequence") { db in
            try db.execute(
                sql: """
                    -- A copy that a send to a topic placed in a subscription keeps the topic's sequence
                    -- number for that send (what the send returned), so that the sender can cancel the
                    -- scheduled message with it (GUARANTEES.md §4.7). NULL for everything else: queue
                    -- messages, copies a bulk job's move placed, and rows older than this migration.
                    -- Dead-lettering and resubmitting keep the row, and so the number; only a copy
                    -- still scheduled (state 2) is ever cancelled through it.
                    ALTER TABLE message ADD COLUMN topic_seq INTEGER;
                    -- The cancel's lookup: a subscription's scheduled copies by topic sequence number.
                    -- Only scheduled copies: the rest of a topic's traffic writes no entry.
                    CREATE INDEX message_topic_scheduled ON message(entity_id, topic_seq) WHERE state = 2 AND topic_seq IS NOT NULL;
                    -- The dedup table also remembers, with kind 2 (DuplicateDetection.Kind.scheduledWithoutCopies),
                    -- a scheduled topic message that no subscription took: key its sequence number as
                    -- text, expires_at its scheduled time. Cancelling it then succeeds, as in Service Bus.
                    """)
        }
        migrator.registerMigration("v7-subscription-rules") { db in
            // A subscription's rules (JSON, StoredJSON) replace its one filter: each existing
            // subscription gets the one rule `$Default` holding its filter. `filter` stays unread.
            try db.execute(sql: "ALTER TABLE entity ADD COLUMN rules TEXT")
            let decoder = JSONDecoder()
            for row in try Row.fetchAll(db, sql: "SELECT id, filter FROM entity WHERE kind = 'subscription'") {
                let filterJSON: String? = row[1]
                let filter = try filterJSON.map { try decoder.decode(SubscriptionFilter.self, from: Data($0.utf8)) }
                let rules = EntityPath.subscription("", of: "").initialRules(filter: filter)
                try db.execute(sql: "UPDATE entity SET rules = ? WHERE id = ?", arguments: [try StoredJSON.encode(rules), row[0] as Int64])
            }
        }
        migrator.registerMigration("v8-delivered-messages") { db in
            try db.execute(
                sql: """
                    -- The messages delivered at least once (every locked message is: each lock counts),
                    -- so that counting the locked ones and finding those whose delivery count is spent
                    -- reads these rather than every message of the entity (and its body).
                    CREATE INDEX message_delivered ON message(entity_id, dlq, delivery_count) WHERE delivery_count > 0;
                    """)
        }
        migrator.registerMigration("v9-settled-deliveries") { db in
            try db.execute(
                sql: """
                    -- The settlement memory, one row per settlement call and delivery instead of one per
                    -- token: the tokens of one receive share a nonce, and completing a batch of them wrote
                    -- a row (and an index entry) for each. `seqs` lists the settled sequence numbers (a JSON
                    -- array, ascending), `first_seq` and `last_seq` bound it for lookups.
                    CREATE TABLE settled_delivery (
                        entity_id INTEGER NOT NULL,
                        nonce BLOB NOT NULL,
                        first_seq INTEGER NOT NULL,
                        last_seq INTEGER NOT NULL,
                        kind INTEGER NOT NULL,
                        settled_at INTEGER NOT NULL,
                        seqs TEXT NOT NULL,
                        PRIMARY KEY (entity_id, nonce, first_seq)
                    ) WITHOUT ROWID;
                    CREATE INDEX settled_delivery_age ON settled_delivery(settled_at);
                    INSERT INTO settled_delivery (entity_id, nonce, first_seq, last_seq, kind, settled_at, seqs)
                        SELECT entity_id, nonce, seq, seq, kind, settled_at, json_array(seq) FROM settlement;
                    DROP TABLE settlement;
                    """)
        }
        return migrator
    }
}
