import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// A database file an earlier Herald wrote opens with the current schema (the migrations are
/// forward-only and run at open), and keeps its messages.
@Suite struct SQLiteMigrationTests {
    /// The migrations, in order: a new one is added at the end, never inserted or renamed.
    @Test func knowsItsMigrations() {
        #expect(
            Schema.migrator.migrations == [
                "v1", "v2-cqrs", "v3-settlements", "v4-bulk-jobs", "v5-message-addressing", "v6-topic-sequence", "v7-subscription-rules",
                "v8-delivered-messages", "v9-settled-deliveries",
            ])
    }

    /// A file of the schema before the topic sequence numbers (v4-bulk-jobs), holding a scheduled
    /// copy of a topic message: it opens, the copy stays scheduled, and since it does not record
    /// the topic's number it cannot be cancelled through the topic; what is scheduled afterwards can.
    @Test func aFileOfThePreviousSchemaOpensAndKeepsItsMessages() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let topic = EntityPath.topic("events")
        let subscription = EntityPath.subscription("all", of: topic.name)
        let scheduledAt = Int64((Date().timeIntervalSince1970 + 3600) * 1000)

        // The file as the previous schema left it: the topic's send 1 placed copy 1 in the subscription.
        do {
            let database = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(database, upTo: "v4-bulk-jobs")
            let options = try StoredJSON.encode(EntityOptions())
            try await database.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO entity (id, key, kind, name, topic_id, options, filter, last_seq)
                        VALUES (1, ?, 'topic', ?, NULL, ?, NULL, 1), (2, ?, 'subscription', ?, 1, ?, NULL, 1)
                        """,
                    arguments: [topic.entityKey, topic.name, options, subscription.entityKey, subscription.name, options]
                )
                try db.execute(
                    sql: """
                        INSERT INTO message (entity_id, seq, state, visible_at, enqueued_at, message_id, scheduled_at, body)
                        VALUES (2, 1, 2, ?, ?, 'old', ?, ?)
                        """,
                    arguments: [scheduledAt, scheduledAt, scheduledAt, Data("old".utf8)]
                )
            }
            try database.close()
        }

        let broker = try SQLiteBroker.running(path: path)
        let peeked = try await broker.peek(subscription, fromSequenceNumber: 1, maxCount: 10)
        #expect(peeked.map(\.message.messageId) == ["old"])
        #expect(peeked.map(\.state) == [.scheduled])
        await #expect {
            try await broker.cancelScheduled([1], in: topic)
        } throws: { ($0 as? HeraldError)?.code == .messageNotFound }
        #expect(try await broker.counts(of: subscription) == EntityCounts(scheduled: 1), "the old copy is still scheduled")

        var later = Message(messageId: "new", text: "new")
        later.scheduledEnqueueTime = Date(timeIntervalSince1970: Double(scheduledAt) / 1000)
        let receipt = try await broker.send(later, to: topic)
        #expect(receipt.sequenceNumber == 2, "the topic goes on from its last number")
        try await broker.cancelScheduled([2], in: topic)
        #expect(try await broker.peek(subscription, fromSequenceNumber: 1, maxCount: 10).map(\.message.messageId) == ["old"])
        await broker.close()

        let applied = try await DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(Set(applied) == Set(Schema.migrator.migrations), "every migration applied")
    }
}
