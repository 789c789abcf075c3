import ArgumentParser
import Foundation
import HeraldCore
import HeraldPostgres
import Logging

/// The store `herald bench` measures.
enum BenchStore: String, ExpressibleByArgument, Sendable {
    case sqlite
    case postgres
    /// A running `herald serve`, through `HeraldClient`.
    case http
}

/// Opens the PostgreSQL broker a bench run uses, on `--url`. Each run gets a fresh schema,
/// dropped afterwards.
enum PostgresBenchDatabase {
    static func with<T: Sendable>(url: String, _ body: @Sendable (any MessageBroker) async throws -> T) async throws -> T {
        let schema = "herald_bench_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
        // Connections are opened before a run is timed, as a peer's clients connect before theirs.
        let client = try PostgresBroker.clientConfiguration(url: url, maximumConnections: 24)
        var logger = Logger(label: "herald.bench.postgres")
        logger.logLevel = .warning
        let result = try await PostgresBroker.withBroker(clientConfiguration: client, configuration: .init(schema: schema, logger: logger)) { broker in
            try await body(broker)
        }
        try await PostgresBroker.dropSchema(schema, clientConfiguration: client)
        return result
    }
}
