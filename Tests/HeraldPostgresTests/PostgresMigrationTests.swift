import Foundation
import HeraldCore
import PostgresNIO
import Testing

@testable import HeraldPostgres

/// A schema an earlier Herald migrated opens with the current migrations (applied by the broker at
/// start), and keeps its messages.
@Suite("PostgresMigrationTests")
struct PostgresMigrationTests {
    /// A schema at version 3 (before the topic sequence numbers), holding a scheduled copy of a
    /// topic message: the broker applies versions 4 to 7, the copy stays scheduled, and since it does not
    /// record the topic's number it cannot be cancelled through the topic; what is scheduled
    /// afterwards can. A settlement remembered in the table version 7 replaces is still remembered.
    @Test func aSchemaOfThePreviousVersionUpgradesAndKeepsItsMessages() async throws {
        let schema = TestDatabase.schemaName("upg")
        let running = RunningClient(try await TestDatabase.clientConfiguration())
        let client = running.client
        let tables = Tables(schema: schema)
        let topic = EntityPath.topic("events")
        let subscription = EntityPath.subscription("all", of: topic.name)
        let scheduledAt = Int64((Date().timeIntervalSince1970 + 3600) * 1000)

        // The schema as the previous Herald left it: the topic's send 1 placed copy 1 in the subscription.
        func run(_ sql: String) async throws { _ = try await client.query(PostgresQuery(unsafeSQL: sql)).collect() }
        try await run("CREATE SCHEMA \(tables.schema)")
        try await run("CREATE TABLE \(tables.migrations) (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for migration in Schema.migrations where migration.version <= 3 {
            for statement in migration.sql(tables) { try await run(statement) }
            _ = try await client.query("INSERT INTO \(unescaped: tables.migrations) (version, name) VALUES (\(migration.version), \(migration.name))").collect()
        }
        let options = try StoredJSON.encode(EntityOptions())
        let topicId = try await client.query(
            """
            INSERT INTO \(unescaped: tables.entity) (key, kind, name, options, last_seq)
            VALUES (\(topic.entityKey), \(topic.kind.rawValue), \(topic.name), \(options), 1) RETURNING id
            """
        ).collect()[0].decode(Int64.self)
        let subscriptionId = try await client.query(
            """
            INSERT INTO \(unescaped: tables.entity) (key, kind, name, topic_id, topic_name, options, last_seq)
            VALUES (\(subscription.entityKey), \(subscription.kind.rawValue), \(subscription.name), \(topicId), \(topic.name), \(options), 1) RETURNING id
            """
        ).collect()[0].decode(Int64.self)
        _ = try await client.query(
            """
            INSERT INTO \(unescaped: tables.message) (entity_id, seq, state, visible_at, enqueued_at, message_id, scheduled_at, body)
            VALUES (\(subscriptionId), 1, 2, \(scheduledAt), \(scheduledAt), 'old', \(scheduledAt), \(Data("old".utf8)))
            """
        ).collect()
        let settledNonce = UUID()
        _ = try await client.query(
            """
            INSERT INTO \(unescaped: tables.settlement) (entity_id, seq, nonce, kind, settled_at)
            VALUES (\(subscriptionId), 7, \(settledNonce), \(Int64(SettlementKind.complete.rawValue)), \(Int64(Date().timeIntervalSince1970 * 1000)))
            """
        ).collect()

        let started = try RunningBroker(client: client, configuration: .init(schema: schema))
        let broker = started.broker
        let peeked = try await broker.peek(subscription, fromSequenceNumber: 1, maxCount: 10)
        #expect(peeked.map(\.message.messageId) == ["old"])
        #expect(peeked.map(\.state) == [.scheduled])
        await #expect {
            try await broker.cancelScheduled([1], in: topic)
        } throws: { ($0 as? HeraldError)?.code == .messageNotFound }
        #expect(try await broker.counts(of: subscription) == EntityCounts(scheduled: 1), "the old copy is still scheduled")
        #expect(try await broker.complete(LockToken(entity: subscription, sequenceNumber: 7, nonce: settledNonce)) == .alreadySettled)
        await #expect {
            try await broker.complete(LockToken(entity: subscription, sequenceNumber: 7, nonce: UUID()))
        } throws: { ($0 as? HeraldError)?.code == .lockLost }

        var later = Message(messageId: "new", text: "new")
        later.scheduledEnqueueTime = Date(timeIntervalSince1970: Double(scheduledAt) / 1000)
        let receipt = try await broker.send(later, to: topic)
        #expect(receipt.sequenceNumber == 2, "the topic goes on from its last number")
        try await broker.cancelScheduled([2], in: topic)
        #expect(try await broker.peek(subscription, fromSequenceNumber: 1, maxCount: 10).map(\.message.messageId) == ["old"])
        await started.close()

        let versions = try await client.query(PostgresQuery(unsafeSQL: "SELECT version FROM \(tables.migrations) ORDER BY version")).collect()
        #expect(try versions.map { try $0.decode(Int64.self) } == Schema.migrations.map(\.version), "every migration applied once")
        await TestDatabase.drop(schema, client: client)
        await running.stop()
    }
}
