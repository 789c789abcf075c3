import Foundation
public import HeraldCore
import Logging
public import PostgresNIO

extension PostgresBroker {
    /// A client configuration from a URL of the form
    /// `postgres://user:password@host:port/database?sslmode=disable`.
    ///
    /// `sslmode` is `disable`, `prefer` (the default) or `require`. The port defaults to 5432 and
    /// the database to the user's name.
    ///
    /// - Parameters:
    ///   - url: The URL; `postgres` and `postgresql` schemes are accepted.
    ///   - maximumConnections: The pool's size; postgres-nio's default (20) when `nil`. The broker
    ///     keeps one connection for LISTEN.
    ///   - minimumConnections: Connections the pool keeps open even when idle (0 when `nil`), so that a
    ///     burst of work does not wait for connections to be established.
    /// - Returns: The configuration, with postgres-nio's keep-alive queries off: it arms a timer
    ///   each time a connection returns to the pool. A connection that died is noticed when it is
    ///   used (or closed by the server) and replaced; set `options.keepAliveBehavior` to have idle
    ///   connections checked instead.
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` when the URL cannot be read.
    public static func clientConfiguration(
        url: String, maximumConnections: Int? = nil, minimumConnections: Int? = nil
    ) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql", let host = components.host, !host.isEmpty
        else {
            throw HeraldError(.invalidArgument, "not a PostgreSQL URL (postgres://user@host:port/database)")
        }
        let user = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding }
        var database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if database.isEmpty { database = user }
        let sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        default: throw HeraldError(.invalidArgument, "unknown sslmode '\(sslMode)'")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: password, database: database, tls: tls)
        if let maximumConnections { configuration.options.maximumConnections = max(2, maximumConnections) }
        if let minimumConnections {
            configuration.options.minimumConnections = min(minimumConnections, configuration.options.maximumConnections)
        }
        // postgres-nio arms a keep-alive timer (a task group of two tasks and a Dispatch timer) each
        // time a connection goes back to the pool and cancels it at the next lease: about a tenth
        // of this process's CPU per send.
        configuration.options.keepAliveBehavior = nil
        return configuration
    }

    /// Runs a client and a broker on it for the duration of `body`, then closes the broker
    /// (releasing its locks) and stops the client.
    ///
    /// `body` runs once the broker has started (reached the database and applied its migrations);
    /// when it cannot start within ``Configuration/startTimeout``, `body` does not run.
    ///
    /// - Parameters:
    ///   - clientConfiguration: Where the database is.
    ///   - configuration: The broker's schema, clock and logger.
    ///   - body: What to do with the broker.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws, or ``/HeraldCore/HeraldError/Code/storeFailed`` when the broker cannot start.
    public static func withBroker<T: Sendable>(
        clientConfiguration: PostgresClient.Configuration,
        configuration: Configuration = Configuration(),
        _ body: @Sendable (PostgresBroker) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: configuration.logger)
        let broker = try PostgresBroker(client: client, configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            group.addTask { try await broker.run() }
            do {
                try await broker.started()
                let result = try await body(broker)
                await broker.close()
                group.cancelAll()
                return result
            } catch {
                await broker.close()
                group.cancelAll()
                throw error
            }
        }
    }
}

extension PostgresBroker {
    /// Drops `schema` and everything in it: the broker's tables, messages and state.
    ///
    /// - Parameters:
    ///   - schema: The schema a broker used.
    ///   - clientConfiguration: Where the database is.
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` for a schema name outside the rule,
    ///   or the database's error.
    public static func dropSchema(_ schema: String, clientConfiguration: PostgresClient.Configuration) async throws {
        try Self.validateSchema(schema)
        var logger = Logger(label: "herald.postgres")
        logger.logLevel = .error
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            _ = try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE")).collect()
        }
    }
}

extension MessageBroker where Self == PostgresBroker {
    /// A broker on `client`, which the caller runs; run the broker too (see ``PostgresBroker``).
    ///
    /// - Parameters:
    ///   - client: The connection pool.
    ///   - configuration: The broker's schema, clock and logger.
    /// - Returns: The broker.
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` for a schema name outside the rule.
    public static func postgres(client: PostgresClient, configuration: PostgresBroker.Configuration = .init()) throws -> PostgresBroker {
        try PostgresBroker(client: client, configuration: configuration)
    }
}
