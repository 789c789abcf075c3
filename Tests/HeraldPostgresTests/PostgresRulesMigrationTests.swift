import Foundation
import HeraldCore
import Logging
import PostgresNIO
import Testing

@testable import HeraldPostgres

/// Migration 6 (subscription rules): a schema written before subscriptions had rules is served
/// with each subscription's filter as its one rule `$Default`, and sends fan out by it.
@Suite("PostgresRulesMigrationTests")
struct PostgresRulesMigrationTests {
    @Test func eachFilterBecomesTheDefaultRule() async throws {
        let schema = TestDatabase.schemaName("rmig")
        let running = RunningClient(try await TestDatabase.clientConfiguration())
        let tables = Tables(schema: schema)
        let filter = SubscriptionFilter(subject: "Placed", properties: ["region": .string("eu")])
        let options = try StoredJSON.encode(EntityOptions())
        // The schema as migrations 1 to 4 left it, with a topic and two subscriptions written as then.
        try await running.client.withConnection { connection in
            let logger = Logger(label: "herald.test.postgres")
            func run(_ sql: String) async throws { _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect() }
            try await run("CREATE SCHEMA \(tables.schema)")
            try await run("CREATE TABLE \(tables.migrations) (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            for migration in Schema.migrations where migration.version < 6 {
                for statement in migration.sql(tables) { try await run(statement) }
                try await run("INSERT INTO \(tables.migrations) (version, name) VALUES (\(migration.version), 'before rules')")
            }
            let topic = try await connection.query(
                "INSERT INTO \(unescaped: tables.entity) (key, kind, name, options) VALUES ('events', 'topic', 'events', \(options)) RETURNING id",
                logger: logger
            ).collect()
            let topicId = try topic[0].decode(Int64.self)
            for (name, stored) in [("placed", try StoredJSON.encode(filter)), ("all", try StoredJSON.encode(SubscriptionFilter.all))] {
                _ = try await connection.query(
                    """
                    INSERT INTO \(unescaped: tables.entity) (key, kind, name, topic_id, topic_name, options, filter)
                    VALUES (\("events/subscriptions/\(name)"), 'subscription', \(name), \(topicId), 'events', \(options), \(stored))
                    """,
                    logger: logger
                ).collect()
            }
        }
        let broker = try RunningBroker(client: running.client, configuration: .init(schema: schema))
        let placed = EntityPath.subscription("placed", of: "events")
        #expect(try await broker.broker.rules(of: placed) == [SubscriptionRule(name: "$Default", filter: filter)])
        #expect(try await broker.broker.rules(of: .subscription("all", of: "events")) == [SubscriptionRule(name: "$Default", filter: .all)])
        try await broker.broker.send(
            Message(messageId: "eu", body: Data(), subject: "Placed", applicationProperties: ["region": .string("eu")]), to: .topic("events"))
        try await broker.broker.send(Message(messageId: "us", body: Data(), subject: "Placed"), to: .topic("events"))
        #expect(try await broker.broker.counts(of: placed).active == 1)
        #expect(try await broker.broker.counts(of: .subscription("all", of: "events")).active == 2)
        await broker.close()
        await TestDatabase.drop(schema, client: running.client)
        await running.stop()
    }
}
