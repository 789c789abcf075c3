import Foundation
import HeraldCore
import HeraldPostgres
import HeraldPostgresTesting
import Logging
import PostgresNIO
import Synchronization

/// The database the tests use: `HERALD_POSTGRES_URL`, or a throwaway server this test process
/// starts on first use and stops when it exits (HeraldPostgresTesting).
enum TestDatabase {
    static func url() async throws -> String {
        try await ThrowawayPostgres.sharedURL()
    }

    static func clientConfiguration(maximumConnections: Int = 4) async throws -> PostgresClient.Configuration {
        try PostgresBroker.clientConfiguration(url: try await Self.url(), maximumConnections: maximumConnections)
    }

    /// A fresh schema name.
    static func schemaName(_ prefix: String = "t") -> String {
        "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(24).lowercased())"
    }

    /// Drops `schema` and everything in it.
    static func drop(_ schema: String, client: PostgresClient) async {
        _ = try? await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE")).collect()
    }
}

/// Bounds how many cases run against the database at once (Swift Testing runs the arguments of a
/// parameterized test concurrently): two cores, a bounded number of connections.
actor CaseGate {
    static let shared = CaseGate(width: 6)

    private let width: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(width: Int) { self.width = width }

    func enter() async {
        if self.running < self.width {
            self.running += 1
            return
        }
        await withCheckedContinuation { self.waiting.append($0) }
    }

    func leave() {
        if self.waiting.isEmpty {
            self.running -= 1
        } else {
            self.waiting.removeFirst().resume()
        }
    }

    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await self.enter()
        do {
            let value = try await body()
            self.leave()
            return value
        } catch {
            self.leave()
            throw error
        }
    }
}

/// A client running in a task of its own, for tests that open and close brokers on it.
final class RunningClient: Sendable {
    let client: PostgresClient
    private let task: Task<Void, Never>

    init(_ configuration: PostgresClient.Configuration) {
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "herald.test.postgres"))
        self.client = client
        self.task = Task { await client.run() }
    }

    func stop() async {
        self.task.cancel()
        await self.task.value
    }
}

/// A broker running in a task of its own.
final class RunningBroker: Sendable {
    let broker: PostgresBroker
    private let task: Task<Void, any Error>

    init(client: PostgresClient, configuration: PostgresBroker.Configuration) throws {
        let broker = try PostgresBroker(client: client, configuration: configuration)
        self.broker = broker
        self.task = Task { try await broker.run() }
    }

    func close() async {
        await self.broker.close()
        _ = await self.task.result
    }
}

/// One test's schema, clients and brokers. ``with(_:clients:_:)`` runs the test and then, whether
/// it returned or threw, closes every broker it opened, drops the schema and stops the clients:
/// a failed test leaves no broker running and no schema behind.
final class SchemaFixture: Sendable {
    let schema: String
    let clients: [RunningClient]
    private let opened = Mutex<[RunningBroker]>([])

    private init(schema: String, clients: [RunningClient]) {
        self.schema = schema
        self.clients = clients
    }

    /// Runs `body` with a fresh schema (its name starting with `prefix`) and `clients` clients.
    static func with<T>(_ prefix: String, clients: Int = 1, _ body: (SchemaFixture) async throws -> T) async throws -> T {
        var running: [RunningClient] = []
        for _ in 0..<clients { running.append(RunningClient(try await TestDatabase.clientConfiguration())) }
        let fixture = SchemaFixture(schema: TestDatabase.schemaName(prefix), clients: running)
        do {
            let value = try await body(fixture)
            await fixture.tearDown()
            return value
        } catch {
            await fixture.tearDown()
            throw error
        }
    }

    /// Opens a broker on the schema, through client `client`, configured by `configure`.
    func open(client: Int = 0, _ configure: (inout PostgresBroker.Configuration) -> Void = { _ in }) throws -> RunningBroker {
        var configuration = PostgresBroker.Configuration(schema: self.schema)
        configure(&configuration)
        let broker = try RunningBroker(client: self.clients[client].client, configuration: configuration)
        self.opened.withLock { $0.append(broker) }
        return broker
    }

    private func tearDown() async {
        for broker in self.opened.withLock({ $0 }) { await broker.close() }
        await TestDatabase.drop(self.schema, client: self.clients[0].client)
        for client in self.clients { await client.stop() }
    }
}
