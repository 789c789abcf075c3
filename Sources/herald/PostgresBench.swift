import ArgumentParser
import Foundation
import HeraldCore
import HeraldPostgres
import HeraldPostgresTesting
import Logging
import Synchronization

/// The store `herald bench` measures.
enum BenchStore: String, ExpressibleByArgument, Sendable {
    case sqlite
    case postgres
}

/// Opens the PostgreSQL broker a bench run uses: on `--url`, or on a throwaway server started once
/// per `herald bench` (initdb in a temporary folder, a free port on 127.0.0.1, stopped at the end).
/// Each run gets a fresh schema, dropped afterwards.
enum PostgresBenchDatabase {
    private static let server = Mutex<ThrowawayPostgres?>(nil)

    static func with<T: Sendable>(url: String?, _ body: @Sendable (any MessageBroker) async throws -> T) async throws -> T {
        let resolved: String
        if let url {
            resolved = url
        } else if let running = Self.server.withLock({ $0 }) {
            resolved = running.url
        } else {
            let started = try await ThrowawayPostgres.start()
            Self.server.withLock { $0 = started }
            resolved = started.url
        }
        let schema = "herald_bench_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
        // Connections are opened before a run is timed, as a peer's clients connect before theirs.
        let client = try PostgresBroker.clientConfiguration(url: resolved, maximumConnections: 24)
        var logger = Logger(label: "herald.bench.postgres")
        logger.logLevel = .warning
        let result = try await PostgresBroker.withBroker(clientConfiguration: client, configuration: .init(schema: schema, logger: logger)) { broker in
            try await body(broker)
        }
        try await PostgresBroker.dropSchema(schema, clientConfiguration: client)
        return result
    }

    /// Stops the throwaway server, if one was started.
    static func stop() {
        Self.server.withLock { server in
            server?.stop()
            server = nil
        }
    }
}
