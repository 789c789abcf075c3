import Foundation
import HeraldCore
import HeraldPostgres
import PostgresNIO
import Testing

/// A database error's full account (the statement, its parameters, the server's message) stays in
/// the log: the ``HeraldError`` that reaches a client (over HTTP too) names only its SQLSTATE.
@Suite("DatabaseErrorMessageTests")
struct DatabaseErrorMessageTests {
    /// A statement that fails for a reason of the database's own stops the broker with a short message.
    @Test func failStopNamesTheSQLStateOnly() async throws {
        let schema = TestDatabase.schemaName("err")
        let client = RunningClient(try await TestDatabase.clientConfiguration())
        let running = try RunningBroker(client: client.client, configuration: .init(schema: schema))
        try await running.broker.createQueue("q")
        try await running.broker.send(Message(text: "first"), to: .queue("q"))
        _ = try await client.client.query(PostgresQuery(unsafeSQL: "DROP TABLE \"\(schema)\".message CASCADE")).collect()
        let error = await #expect(throws: HeraldError.self) {
            try await running.broker.send(Message(text: "second"), to: .queue("q"))
        }
        #expect(error?.code == .storeFailed)
        let message = error?.message ?? ""
        #expect(message.contains("SQLSTATE 42P01"), "\(message)")
        for leak in ["PSQLError", "INSERT", "binds", "does not exist"] {
            #expect(!message.contains(leak), "the message shows '\(leak)': \(message)")
        }
        await running.close()
        await TestDatabase.drop(schema, client: client.client)
        await client.stop()
    }

    /// Migrations that fail for a reason of the database's own fail the start with a short message.
    @Test func failedMigrationNamesTheSQLStateOnly() async throws {
        let schema = TestDatabase.schemaName("mig")
        let client = RunningClient(try await TestDatabase.clientConfiguration())
        _ = try await client.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \"\(schema)\"")).collect()
        _ = try await client.client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \"\(schema)\".herald_migrations (unrelated INT)")).collect()
        let broker = try PostgresBroker(client: client.client, configuration: .init(schema: schema))
        let error = await #expect(throws: HeraldError.self) { try await broker.run() }
        #expect(error?.code == .storeFailed)
        let message = error?.message ?? ""
        #expect(message.contains("cannot apply Herald's migrations") && message.contains("SQLSTATE 42703"), "\(message)")
        for leak in ["PSQLError", "SELECT", "does not exist"] {
            #expect(!message.contains(leak), "the message shows '\(leak)': \(message)")
        }
        await broker.close()
        await TestDatabase.drop(schema, client: client.client)
        await client.stop()
    }
}
