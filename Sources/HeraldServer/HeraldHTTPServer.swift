public import HeraldCore
import HeraldWire
import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle
public import Tracing

/// The broker over HTTP: the API `openapi.yaml` describes, on Hummingbird 2, with shared access
/// keys, Prometheus metrics and graceful shutdown.
///
/// The server does not own the broker: whoever created the broker runs and stops it. With the
/// embedded broker, a `Service`, both go in one `ServiceGroup`, the broker first, so that a
/// graceful shutdown drains the server's requests before it closes the broker.
///
/// ```swift
/// let broker = try SQLiteBroker(path: "herald-data/herald.sqlite")
/// let server = HeraldHTTPServer(
///     broker: broker,
///     configuration: .init(port: 0, keys: try KeyStore(path: "herald-data/keys.json")) { port in
///         print("listening on \(port)")
///     }
/// )
/// let group = ServiceGroup(configuration: .init(services: [broker, server], gracefulShutdownSignals: [.sigterm], logger: logger))
/// try await group.run()  // returns after SIGTERM, once in-flight requests are answered and the broker is closed
/// ```
///
/// ``run()`` is a `Service`'s run: a graceful shutdown (of the `ServiceGroup` it runs in) stops
/// accepting connections, ends long polls early, lets in-flight requests finish, then returns.
/// Cancelling the task stops the server at once, as it stops any service.
public struct HeraldHTTPServer: Service {
    /// How the server listens, authenticates and limits requests.
    public struct Configuration: Sendable {
        /// The address to listen on; `127.0.0.1` by default.
        public var host: String
        /// The port; `0` picks a free one (see ``onServerRunning``).
        public var port: Int
        /// The keys requests must present; `nil` checks none, which only a loopback ``host`` allows.
        public var keys: KeyStore?
        /// Where the server logs: one info line at start and stop, one debug line per request.
        public var logger: Logger
        /// The largest request body accepted; larger ones are answered 413 `payloadTooLarge`.
        public var maxRequestBodySize: Int
        /// Requests one key may have in flight at once; one more is answered 429 `quotaExceeded`.
        /// `nil` for no limit. Without keys, all requests share one allowance.
        public var maxRequestsInFlightPerKey: Int?
        /// The store's name in `GET /health`, for example `sqlite` or `postgres`.
        public var storeName: String
        /// The most connections open at once; past it the server stops accepting (clients wait in
        /// the listen backlog) until one closes. Held below the process's descriptor limit less
        /// ``reservedDescriptors``, so that connections can never take the descriptors the store needs.
        public var maxConnections: Int
        /// How long a connection may sit without a request (or with a request head not yet
        /// complete) before the server closes it. Long polls in progress are not idle.
        public var idleTimeout: Duration
        /// How long reading one request's body may take; a slower one is answered 408 and its
        /// connection closed.
        public var requestReadTimeout: Duration
        /// The largest body of an answer that carries messages (receive, peek): an answer holds
        /// fewer messages than asked rather than grow past it, and always at least one.
        public var maxResponseBodySize: Int
        /// What the messages of all answers being prepared at once may take together: with many
        /// concurrent receives and peeks, each answer holds fewer messages (at least one) so that
        /// together they stay within it.
        public var maxAnswerMemory: Int
        /// Whether `GET /metrics` answers without a key. By default it needs a key with the
        /// `manage` right and no entity scope, since it names every entity.
        public var metricsArePublic: Bool
        /// Called once the server listens, with the port it is bound to.
        public var onServerRunning: (@Sendable (Int) async -> Void)?
        /// The Prometheus registry `GET /metrics` renders: the server's own `herald_*` metrics go
        /// there, a new registry by default. Give a `PrometheusMetricsFactory` of the same
        /// registry to the broker (its configuration's `metricsFactory`) and to the processors of
        /// the process, and their `messaging_*` metrics are served beside them.
        public var metricsRegistry: PrometheusCollectorRegistry
        /// Where the server's spans go (see the README's "Tracing, metrics and logs"): by default the
        /// tracer in force when the configuration is made; `nil` for none. With one, each request is
        /// answered in a server span that continues the request's `traceparent`.
        public var tracer: (any Tracer)?

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - host: The address to listen on.
        ///   - port: The port; `0` for any free one.
        ///   - keys: The key store, or `nil` to check no keys (loopback hosts only).
        ///   - logger: Where the server logs.
        ///   - maxRequestBodySize: The largest request body, 2 MiB by default.
        ///   - maxRequestsInFlightPerKey: Concurrent requests per key, 256 by default; `nil` for no limit.
        ///   - storeName: The store's name for `GET /health`.
        ///   - maxConnections: Connections open at once, 1000 by default (see ``effectiveMaxConnections``).
        ///   - idleTimeout: How long a connection may wait for its next request, 60 seconds by default.
        ///   - requestReadTimeout: How long reading a request body may take, 30 seconds by default.
        ///   - maxResponseBodySize: The byte budget of an answer with messages, 8 MiB by default.
        ///   - maxAnswerMemory: What the messages of all answers in preparation may take, 128 MiB by default.
        ///   - metricsArePublic: Whether `GET /metrics` answers without a key; `false` by default.
        ///   - onServerRunning: Called with the bound port once the server listens.
        public init(
            host: String = "127.0.0.1",
            port: Int = 8080,
            keys: KeyStore?,
            logger: Logger = Logger(label: "herald.server"),
            maxRequestBodySize: Int = 2 * 1024 * 1024,
            maxRequestsInFlightPerKey: Int? = 256,
            storeName: String = "sqlite",
            maxConnections: Int = 1000,
            idleTimeout: Duration = .seconds(60),
            requestReadTimeout: Duration = .seconds(30),
            maxResponseBodySize: Int = 8 * 1024 * 1024,
            maxAnswerMemory: Int = 128 * 1024 * 1024,
            metricsArePublic: Bool = false,
            onServerRunning: (@Sendable (Int) async -> Void)? = nil
        ) {
            self.host = host
            self.port = port
            self.keys = keys
            self.logger = logger
            self.maxRequestBodySize = maxRequestBodySize
            self.maxRequestsInFlightPerKey = maxRequestsInFlightPerKey
            self.storeName = storeName
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.requestReadTimeout = requestReadTimeout
            self.maxResponseBodySize = maxResponseBodySize
            self.maxAnswerMemory = maxAnswerMemory
            self.metricsArePublic = metricsArePublic
            self.onServerRunning = onServerRunning
            self.metricsRegistry = PrometheusCollectorRegistry()
            self.tracer = MessagingTracing.current
        }

        /// Descriptors kept for everything but connections: the store's files (SQLite's database
        /// and write-ahead log, or PostgreSQL's connection pool), the listening socket, logs, and
        /// connections being accepted and refused.
        public static let reservedDescriptors = 128

        /// ``maxConnections``, lowered to what the process's descriptor limit leaves after
        /// ``reservedDescriptors``.
        public var effectiveMaxConnections: Int {
            min(self.maxConnections, DescriptorLimit.current() - Self.reservedDescriptors)
        }

        /// Checks that a server without keys listens only on a loopback address.
        ///
        /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` when ``keys`` is `nil` and
        ///   ``host`` is not a loopback address, or when a size or limit is not positive.
        public func validate() throws {
            if self.keys == nil && !Self.isLoopback(self.host) {
                throw HeraldError(
                    .invalidArgument,
                    """
                    refusing to serve without access keys on \(self.host), which is not a loopback address: \
                    without keys, listen on 127.0.0.1, ::1 or localhost only, or create a key \
                    (herald keys create --name admin --rights manage) and serve with it
                    """
                )
            }
            guard self.maxRequestBodySize > 0 else { throw HeraldError(.invalidArgument, "the maximum request body size must be positive") }
            if let limit = self.maxRequestsInFlightPerKey, limit <= 0 {
                throw HeraldError(.invalidArgument, "the in-flight request limit must be positive")
            }
            guard (0...65_535).contains(self.port) else { throw HeraldError(.invalidArgument, "the port is 0 to 65535, not \(self.port)") }
            guard self.maxConnections > 0 else { throw HeraldError(.invalidArgument, "the connection limit must be positive") }
            guard self.effectiveMaxConnections > 0 else {
                throw HeraldError(
                    .invalidArgument,
                    """
                    the descriptor limit (\(DescriptorLimit.current())) leaves no room for connections beside the \
                    \(Self.reservedDescriptors) the server keeps for its store; raise it (ulimit -n)
                    """
                )
            }
            guard self.idleTimeout > .zero, self.requestReadTimeout > .zero else {
                throw HeraldError(.invalidArgument, "the idle and request read timeouts must be positive")
            }
            guard self.maxAnswerMemory >= self.maxResponseBodySize else {
                throw HeraldError(
                    .invalidArgument, "the answer memory (\(self.maxAnswerMemory)) must hold at least one full answer (\(self.maxResponseBodySize))")
            }
            guard self.maxResponseBodySize >= 64 * 1024 else {
                throw HeraldError(.invalidArgument, "the response budget must be at least 64 KiB, not \(self.maxResponseBodySize)")
            }
        }

        /// Whether `host` is a loopback address: `localhost`, `::1`, or an address in 127.0.0.0/8.
        ///
        /// - Parameter host: A host name or address.
        /// - Returns: `true` for a loopback address.
        public static func isLoopback(_ host: String) -> Bool {
            let host = HeraldHTTPServer.unbracketed(host).lowercased()
            if host == "localhost" || host == "::1" { return true }
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        }
    }

    /// `host` without the brackets of an IPv6 literal (`[::1]` is how URLs write `::1`).
    ///
    /// - Parameter host: A host name or address, bracketed or not.
    /// - Returns: The host as a resolver takes it.
    public static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    private let broker: any MessageBroker
    private let configuration: Configuration
    private let metrics: ServerMetrics

    /// Creates a server for `broker`; it starts listening in ``run()``.
    ///
    /// - Parameters:
    ///   - broker: The broker to serve. The caller closes it after ``run()`` returns.
    ///   - configuration: How to listen, authenticate and limit requests.
    public init(broker: any MessageBroker, configuration: Configuration) {
        self.broker = broker
        self.configuration = configuration
        self.metrics = ServerMetrics(registry: configuration.metricsRegistry)
    }

    /// Listens and answers requests until a graceful shutdown (after in-flight requests finish) or
    /// cancellation (at once). Does not close the broker.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` when ``Configuration/validate()``
    ///   fails, or the server's error when it cannot bind.
    public func run() async throws {
        try self.configuration.validate()
        let configuration = self.configuration
        let logger = configuration.logger
        let responder = Responder(
            routes: RouteTable(),
            handlers: Handlers(
                broker: self.broker, metrics: self.metrics, storeName: configuration.storeName,
                maxResponseBodySize: configuration.maxResponseBodySize, answerMemory: AnswerMemory(total: configuration.maxAnswerMemory),
                logger: logger
            ),
            keys: configuration.keys,
            limiter: InFlightLimiter(limit: configuration.maxRequestsInFlightPerKey),
            maxRequestBodySize: configuration.maxRequestBodySize,
            requestReadTimeout: configuration.requestReadTimeout,
            metricsArePublic: configuration.metricsArePublic,
            logger: logger
        )
        // Hummingbird's own start line and lifecycle details stay below info, so that the server
        // logs one line at start and one at stop.
        var frameworkLogger = logger
        frameworkLogger.logLevel = max(logger.logLevel, .notice)
        let maxConnections = configuration.effectiveMaxConnections
        let application = Application(
            responder: TracingResponder(base: responder, routes: RouteTable(), tracer: MessagingTracing.active(configuration.tracer)),
            server: .eventLoopBoundHTTP1(
                configuration: HTTP1Channel.Configuration(
                    additionalChannelHandlers: [ClientDepartureHandler(), RequestDeadlineHandler(timeout: TimeAmount(configuration.requestReadTimeout))],
                    idleTimeout: TimeAmount(configuration.idleTimeout)
                )
            ),
            configuration: ApplicationConfiguration(
                address: .hostname(Self.unbracketed(configuration.host), port: configuration.port), serverName: "herald",
                availableConnectionsDelegate: MaximumAvailableConnections(maxConnections, logger: frameworkLogger)
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.info(
                    "herald server listening",
                    metadata: [
                        "herald.host": "\(configuration.host)", "herald.port": "\(port)", "herald.store": "\(configuration.storeName)",
                        "herald.auth": "\(configuration.keys == nil ? "off" : "keys")", "herald.max_connections": "\(maxConnections)",
                    ]
                )
                await configuration.onServerRunning?(port)
            },
            logger: frameworkLogger
        )
        // The application runs as a service of the caller's group would: a graceful shutdown of
        // that group reaches it through service-lifecycle's task-local shutdown context.
        do {
            try await application.run()
        } catch {
            logger.info("herald server stopped", metadata: ["error": "\(error)"])
            throw error
        }
        logger.info("herald server stopped")
    }
}
