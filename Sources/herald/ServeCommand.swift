import ArgumentParser
import Foundation
import HeraldAMQPServer
import HeraldCore
import HeraldPostgres
import HeraldSQLite
import HeraldServer
import HeraldServiceBusAdministration
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `herald serve`: the broker over HTTP, on the embedded store or on PostgreSQL, until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the broker over HTTP (the API of openapi.yaml).",
        discussion: """
            The embedded store lives in the --data folder (herald.sqlite), with the access keys in \
            keys.json beside it; with --postgres, the keys are in --keys (./herald-keys.json by default). \
            Create keys with `herald keys create`; the server refuses to start without one unless \
            --insecure-local is given, which serves without keys on a loopback address only.

            Once listening, it prints one line: `herald listening on http://HOST:PORT (store: …)`. \
            SIGTERM or SIGINT stops it gracefully: it stops accepting connections, ends long polls, \
            answers the requests in flight, then closes the store.
            """
    )

    @Option(help: "The folder of the embedded store, created if needed.")
    var data: String = "./herald-data"

    @Option(help: "Serve a PostgreSQL database instead of the embedded store: postgres://user:password@host:port/database.")
    var postgres: String?

    @Option(help: "The key file (default: <data>/keys.json; with --postgres, ./herald-keys.json).")
    var keys: String?

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on; 0 picks a free one (printed once listening).")
    var port: Int = 8080

    @Flag(help: "Serve without access keys; allowed only on a loopback --host.")
    var insecureLocal: Bool = false

    @Option(help: "The largest request body in bytes; larger ones are answered 413.")
    var maxBodySize: Int = 2 * 1024 * 1024

    @Option(help: "The most connections open at once (held below the descriptor limit less what the store needs); past it, new clients wait.")
    var maxConnections: Int = 1000

    @Option(help: "Seconds a connection may wait for its next request (or for the rest of a request head) before it is closed.")
    var idleTimeout: Int = 60

    @Option(help: "Seconds reading one request body may take; a slower one is answered 408 and closed.")
    var requestReadTimeout: Int = 30

    @Option(help: "The byte budget of an answer with messages (receive, peek): it holds fewer messages rather than grow past it.")
    var maxResponseSize: Int = 8 * 1024 * 1024

    @Option(
        help:
            "What the messages of all answers prepared at once may take together, in bytes: with many concurrent receives and peeks, each answer holds fewer messages."
    )
    var maxAnswerMemory: Int = 128 * 1024 * 1024

    @Flag(help: "Serve GET /metrics without a key (by default it needs a manage key without an entity scope).")
    var metricsPublic: Bool = false

    @Option(help: "The log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(
        help: """
            Also listen for AMQP 1.0, Azure Service Bus's protocol, on this port of --host (0 picks a free \
            one; 5672 by convention); off by default. Service Bus clients connect with the connection \
            string `herald keys create` prints.
            """
    )
    var amqpPort: Int?

    @Option(
        help: """
            Also listen for AMQP 1.0 over TLS on this port of --host (5671 by convention), with \
            --tls-certificate and --tls-key; off by default.
            """
    )
    var amqpsPort: Int?

    @Option(
        help: """
            Also serve Azure Service Bus's administration API (the Atom XML API of the SDKs' \
            ServiceBusAdministrationClient: queues, topics, subscriptions, rules) on this port of --host; \
            over TLS with --tls-certificate and --tls-key (the SDKs speak HTTPS to it); off by default.
            """
    )
    var servicebusAdminPort: Int?

    @Option(help: "The PEM file of the certificate chain (leaf first) of --amqps-port and --servicebus-admin-port.")
    var tlsCertificate: String?

    @Option(help: "The PEM file of the private key of --tls-certificate.")
    var tlsKey: String?

    @Option(
        help: """
            The embedded store's free-disk watermark: below it, sends and other changes that grow the \
            store are answered 507 (receives and settlements still run) until space is freed. Bytes, \
            or with a unit: 512MiB, 2GiB, 100MB; 0 turns it off. Not used with --postgres: PostgreSQL \
            manages its own disk.
            """
    )
    var minFreeDisk: ByteSizeArgument = ByteSizeArgument(bytes: SQLiteBroker.Configuration.defaultMinimumFreeDiskBytes)

    @Option(
        help: """
            How many dead letters one step of a bulk job (resubmit, move, purge) handles, in one \
            transaction: larger steps finish sooner, smaller ones hold the store for less time.
            """
    )
    var bulkJobStepSize: Int = 100

    func validate() throws {
        guard (1...10_000).contains(self.bulkJobStepSize) else { throw ValidationError("--bulk-job-step-size is 1 to 10000") }
        guard (0...65_535).contains(self.port) else { throw ValidationError("--port is 0 to 65535") }
        if let amqpPort { guard (0...65_535).contains(amqpPort) else { throw ValidationError("--amqp-port is 0 to 65535") } }
        if let amqpsPort {
            guard (0...65_535).contains(amqpsPort) else { throw ValidationError("--amqps-port is 0 to 65535") }
            guard self.tlsCertificate != nil, self.tlsKey != nil else { throw ValidationError("--amqps-port needs --tls-certificate and --tls-key") }
        }
        if let servicebusAdminPort {
            guard (0...65_535).contains(servicebusAdminPort) else { throw ValidationError("--servicebus-admin-port is 0 to 65535") }
        }
        if (self.tlsCertificate == nil) != (self.tlsKey == nil) { throw ValidationError("--tls-certificate and --tls-key go together") }
        if self.tlsCertificate != nil && self.amqpsPort == nil && self.servicebusAdminPort == nil {
            throw ValidationError("--tls-certificate and --tls-key are for --amqps-port and --servicebus-admin-port")
        }
        guard self.maxBodySize > 0 else { throw ValidationError("--max-body-size must be positive") }
        guard self.maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        guard (1...86_400).contains(self.idleTimeout) else { throw ValidationError("--idle-timeout is 1 to 86400 seconds") }
        guard (1...86_400).contains(self.requestReadTimeout) else { throw ValidationError("--request-read-timeout is 1 to 86400 seconds") }
        guard self.maxResponseSize >= 64 * 1024 else { throw ValidationError("--max-response-size is at least 65536 bytes") }
        guard self.maxAnswerMemory >= self.maxResponseSize else { throw ValidationError("--max-answer-memory must be at least --max-response-size") }
        guard Logger.Level(rawValue: self.logLevel) != nil else { throw ValidationError("unknown --log-level '\(self.logLevel)'") }
        if self.insecureLocal && !HeraldHTTPServer.Configuration.isLoopback(self.host) {
            throw ValidationError(
                "--insecure-local serves without access keys, so it listens only on a loopback address (127.0.0.1, ::1, localhost), not \(self.host)"
            )
        }
    }

    func run() async throws {
        let logger = self.makeLogger()
        // Connections and the store's files share the descriptor limit; the server keeps its
        // connections below what this leaves (HeraldHTTPServer.Configuration.effectiveMaxConnections).
        DescriptorLimit.raiseToHardLimit()
        let keyStore = try self.openKeys(logger: logger)
        // One registry for GET /metrics: the server's herald_* metrics and the store's messaging_* ones.
        let registry = PrometheusCollectorRegistry()
        let metricsFactory = PrometheusMetricsFactory(registry: registry)
        if let postgres = self.postgres {
            let clientConfiguration = try PostgresBroker.clientConfiguration(url: postgres)
            var configuration = PostgresBroker.Configuration(logger: logger)
            configuration.bulkJobStepSize = self.bulkJobStepSize
            configuration.metricsFactory = metricsFactory
            let components = URLComponents(string: postgres)
            let store = "postgres \(components?.host ?? "?"):\(components?.port ?? 5432)\(components?.path ?? "")"
            do {
                // It listens once the broker has reached the database; it gives up after the broker's start timeout.
                try await PostgresBroker.withBroker(clientConfiguration: clientConfiguration, configuration: configuration) { broker in
                    try await self.serve(
                        broker, running: [], storeName: "postgres", storeDescription: store, keys: keyStore, metrics: registry, logger: logger)
                }
            } catch let error as HeraldError {
                var standardError = StandardErrorStream()
                print("herald serve: cannot start on \(store): \(error.message)", to: &standardError)
                throw ExitCode.failure
            }
        } else {
            // Like keys.json, the store is for this user only: the folder 0700, the database files 0600.
            try FileManager.default.createDirectory(atPath: self.data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let path = URL(fileURLWithPath: self.data).appendingPathComponent("herald.sqlite").path
            var configuration = SQLiteBroker.Configuration(logger: logger)
            configuration.minimumFreeDiskBytes = self.minFreeDisk.bytes
            configuration.metricsFactory = metricsFactory
            configuration.bulkJobStepSize = self.bulkJobStepSize
            let broker = try SQLiteBroker(path: path, configuration: configuration)
            // The broker runs in the server's service group, before the server: a graceful shutdown
            // drains the server's requests, then the broker's writes, then closes the file.
            try await self.serve(
                broker, running: [broker], storeName: "sqlite", storeDescription: "sqlite \(self.data)", keys: keyStore, metrics: registry, logger: logger)
            logger.info("store closed", metadata: ["herald.store": "\(path)"])
        }
    }

    /// A logger to standard error (standard output is for the listening line) at --log-level; its
    /// metadata, set at every request, is rendered only for the lines written.
    private func makeLogger() -> Logger {
        var logger = Logger(label: "herald.server") { DeferredMetadataLogHandler(StreamLogHandler.standardError(label: $0)) }
        logger.logLevel = Logger.Level(rawValue: self.logLevel) ?? .info
        return logger
    }

    /// The key store, or `nil` with --insecure-local; refuses to go on without any key.
    private func openKeys(logger: Logger) throws -> KeyStore? {
        guard !self.insecureLocal else { return nil }
        let path = self.keys ?? (self.postgres == nil ? KeyStore.path(inDataDirectory: self.data) : "./herald-keys.json")
        let store = try KeyStore(path: path, logger: logger)
        guard !store.keys.isEmpty else {
            var standardError = StandardErrorStream()
            print(
                """
                herald serve: no access keys in \(path). Create one first, for example
                  herald keys create --name admin --rights manage\(self.keys.map { " --keys \($0)" } ?? (self.postgres == nil ? " --data \(self.data)" : " --keys \(path)"))
                or serve without keys on this machine only with --insecure-local.
                """,
                to: &standardError
            )
            throw ExitCode.failure
        }
        return store
    }

    /// Runs the server on `broker` until SIGTERM or SIGINT, then returns once in-flight requests are
    /// answered and the `services` (run in the same group, before the server) have stopped.
    private func serve(
        _ broker: some MessageBroker, running services: [any Service], storeName: String, storeDescription: String, keys: KeyStore?,
        metrics: PrometheusCollectorRegistry, logger: Logger
    ) async throws {
        let host = self.host
        var maxConnections = self.maxConnections
        let amqpListeners = [self.amqpPort, self.amqpsPort, self.servicebusAdminPort].compactMap { $0 }.count
        if amqpListeners > 0 {
            // The listeners share what the descriptor limit leaves beside the store's files.
            let available = DescriptorLimit.current() - HeraldHTTPServer.Configuration.reservedDescriptors
            maxConnections = min(maxConnections, max(available / (1 + amqpListeners), 1))
        }
        var configuration = HeraldHTTPServer.Configuration(
            host: host, port: self.port, keys: keys, logger: logger, maxRequestBodySize: self.maxBodySize, storeName: storeName,
            maxConnections: maxConnections, idleTimeout: .seconds(self.idleTimeout), requestReadTimeout: .seconds(self.requestReadTimeout),
            maxResponseBodySize: self.maxResponseSize, maxAnswerMemory: self.maxAnswerMemory, metricsArePublic: self.metricsPublic
        ) { port in
            let bare = HeraldHTTPServer.unbracketed(host)
            let shownHost = bare.contains(":") ? "[\(bare)]" : bare
            FileHandle.standardOutput.write(Data("herald listening on http://\(shownHost):\(port) (store: \(storeDescription))\n".utf8))
        }
        configuration.metricsRegistry = metrics
        let server = HeraldHTTPServer(broker: broker, configuration: configuration)
        var listeners: [any Service] = []
        let backend: AMQPBackend
        if let keys {
            backend = AMQPBackend(broker: broker) { name in
                keys.sharedAccessKey(named: name).map {
                    AMQPCredential(sharedAccessKey: $0.sharedAccessKey, rights: Set($0.key.rights), entity: $0.key.entity)
                }
            }
        } else {
            backend = AMQPBackend(acceptingAnyTokenFor: broker)
        }
        for (port, scheme) in [(self.amqpPort, "amqp"), (self.amqpsPort, "amqps")] {
            guard let port else { continue }
            var configuration = AMQPListener.Configuration(
                host: HeraldHTTPServer.unbracketed(host), port: port, maxConnections: maxConnections, idleTimeout: .seconds(self.idleTimeout))
            if scheme == "amqps", let certificate = self.tlsCertificate, let key = self.tlsKey {
                configuration.tls = AMQPListener.Configuration.TLS(certificateChainFile: certificate, privateKeyFile: key)
            }
            listeners.append(
                AMQPListener(configuration: configuration, backend: backend, logger: logger) { port in
                    let bare = HeraldHTTPServer.unbracketed(host)
                    let shownHost = bare.contains(":") ? "[\(bare)]" : bare
                    FileHandle.standardOutput.write(Data("herald AMQP listening on \(scheme)://\(shownHost):\(port)\n".utf8))
                })
        }
        if let port = self.servicebusAdminPort {
            var tls: ServiceBusAdministrationServer.Configuration.TLS?
            if let certificate = self.tlsCertificate, let key = self.tlsKey {
                tls = ServiceBusAdministrationServer.Configuration.TLS(certificateChainFile: certificate, privateKeyFile: key)
            }
            let scheme = tls == nil ? "http" : "https"
            let configuration = ServiceBusAdministrationServer.Configuration(
                host: HeraldHTTPServer.unbracketed(host), port: port, tls: tls, maxConnections: maxConnections, idleTimeout: .seconds(self.idleTimeout)
            ) { port in
                let bare = HeraldHTTPServer.unbracketed(host)
                let shownHost = bare.contains(":") ? "[\(bare)]" : bare
                FileHandle.standardOutput.write(
                    Data("herald Service Bus administration listening on \(scheme)://\(shownHost):\(port)\n".utf8))
            }
            listeners.append(ServiceBusAdministrationServer(configuration: configuration, backend: backend, logger: logger))
        }
        let group = ServiceGroup(
            configuration: .init(services: services + listeners + [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as IOError {
            try self.reportListenFailure(error, errnoCode: error.errnoCode, port: self.port, option: "--port")
        } catch let error as AMQPListener.ListenError {
            try self.reportListenFailure(
                error, errnoCode: error.errnoCode, port: error.port, option: error.port == self.amqpsPort ? "--amqps-port" : "--amqp-port")
        } catch let error as ServiceBusAdministrationServer.ListenError {
            try self.reportListenFailure(error, errnoCode: error.errnoCode, port: error.port, option: "--servicebus-admin-port")
        } catch let error as AMQPListener.TLSError {
            var standardError = StandardErrorStream()
            print("herald serve: \(error)", to: &standardError)
            throw ExitCode.failure
        }
    }

    /// Says why a listener could not listen, naming its port and option; rethrows what a user cannot act on.
    private func reportListenFailure(_ error: any Error, errnoCode: Int32, port: Int, option: String) throws -> Never {
        guard let reason = Self.listenFailure(errnoCode, option: option) else { throw error }
        let shownHost = self.host.contains(":") ? "[\(self.host)]" : self.host
        var standardError = StandardErrorStream()
        print("herald serve: cannot listen on \(shownHost):\(port): \(reason)", to: &standardError)
        throw ExitCode.failure
    }

    /// Why the server cannot listen, for the `bind` errors a user can act on; `nil` for others.
    private static func listenFailure(_ code: Int32, option: String) -> String? {
        switch code {
        case EADDRINUSE: "the address is already in use (another server listens there; pick another \(option))"
        case EACCES: "permission denied (ports below 1024 need privileges; pick another \(option))"
        case EADDRNOTAVAIL: "the address is not one of this machine's (check --host)"
        default: nil
        }
    }
}

/// A size on the command line: bytes, or a number with a unit (`KB`, `MB`, `GB`, `TB` in powers
/// of 1000; `KiB`, `MiB`, `GiB`, `TiB` in powers of 1024; `B`).
struct ByteSizeArgument: ExpressibleByArgument, Sendable {
    /// The size in bytes.
    var bytes: Int64

    private static let units: [(suffix: String, size: Double)] = [
        ("b", 1), ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12),
        ("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("tib", 1_099_511_627_776),
    ]

    init(bytes: Int64) { self.bytes = bytes }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        // The longest suffix that matches wins ("mib" over "b").
        let unit = Self.units.filter { text.hasSuffix($0.suffix) }.max { $0.suffix.count < $1.suffix.count }
        let number = unit.map { String(text.dropLast($0.suffix.count)).trimmingCharacters(in: .whitespaces) } ?? text
        guard let value = Double(number), value.isFinite, value >= 0 else { return nil }
        let bytes = (value * (unit?.size ?? 1)).rounded()
        guard bytes < 9e18 else { return nil }
        self.bytes = Int64(bytes)
    }

    var defaultValueDescription: String {
        self.bytes > 0 && self.bytes % 1_048_576 == 0 ? "\(self.bytes / 1_048_576)MiB" : "\(self.bytes)"
    }
}

/// Standard error as a `TextOutputStream`, for `print(_:to:)`.
struct StandardErrorStream: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
