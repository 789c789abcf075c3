public import AsyncHTTPClient
public import Foundation
public import HeraldCore
public import Logging
public import Tracing

/// A ``/HeraldCore/MessageBroker`` that talks to a Herald server over its HTTP API.
///
/// It behaves as the broker behind the server: every ``/HeraldCore/HeraldError`` the server's
/// store throws comes back with the same code and message, so code written against an embedded
/// ``/HeraldCore/MessageBroker`` runs unchanged against a remote one.
///
/// ```swift
/// let broker = try HeraldClient(baseURL: "http://localhost:8080", key: "hk_…")
/// try await broker.send(Message(text: "hello"), to: .queue("orders"))
/// for message in try await broker.receive(from: .queue("orders"), maxCount: 10, maxWaitTime: .seconds(20)) {
///     try await broker.complete(message.lockToken!)
/// }
/// ```
///
/// Failures that an embedded broker cannot have (a rejected key, an unreachable server) throw
/// ``HeraldClientError``.
///
/// Long polls: the server waits at most `WireLimits.maxWaitPerRequest` (60 s) per
/// request; a longer `maxWaitTime` is spread over consecutive requests. Each waiting request holds
/// one HTTP connection, and
/// `HTTPClient.shared` keeps at most 8 per host, so callers with many concurrent receivers pass
/// their own client, for example one from ``makeHTTPClient(maxConnectionsPerHost:)``.
public final class HeraldClient: MessageBroker {
    /// The server's base URL, for example `http://localhost:8080`.
    public let baseURL: URL
    /// `baseURL` without a trailing slash, to which route paths are appended.
    let base: String
    /// The `Authorization` header value, if a key was given.
    let authorization: String?
    /// The HTTP client requests go through; not owned, never shut down here.
    let httpClient: HTTPClient
    /// How long one request may take, on top of the time it asks the server to wait.
    let requestTimeout: Duration
    /// Where requests are logged (at `trace` level).
    let logger: Logger
    /// Where the client's spans go; `nil` for none.
    let tracer: (any Tracer)?

    /// Creates a client of the server at `baseURL`.
    ///
    /// - Parameters:
    ///   - baseURL: The server, `http://` or `https://`, optionally with a path prefix.
    ///   - key: The API key, sent as `Authorization: Bearer <key>`; `nil` for a server without authentication.
    ///   - httpClient: The HTTP client to use. The caller keeps ownership (and shuts it down if it is not `.shared`).
    ///   - requestTimeout: How long a request may take, on top of the time it asks the server to wait.
    ///   - logger: Where requests are logged, at `trace` level.
    ///   - tracer: Where the client's spans go (see the README's "Tracing, metrics and logs"): by
    ///     default the tracer in force now (bootstrapped, or bound with `withTracer`); `nil` for none.
    /// - Throws: ``HeraldClientError/Code/invalidURL`` when `baseURL` is not an HTTP(S) URL with a host.
    public init(
        baseURL: URL, key: String? = nil, httpClient: HTTPClient = .shared, requestTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "herald.client"), tracer: (any Tracer)? = InstrumentationSystem.tracer
    ) throws(HeraldClientError) {
        guard let scheme = baseURL.scheme?.lowercased(), scheme == "http" || scheme == "https", baseURL.host != nil else {
            throw HeraldClientError.invalidURL(baseURL.absoluteString)
        }
        var base = baseURL.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = baseURL
        self.base = base
        self.authorization = key.map { "Bearer \($0)" }
        self.httpClient = httpClient
        self.requestTimeout = requestTimeout
        self.logger = logger
        self.tracer = MessagingTracing.active(tracer)
    }

    /// Creates a client of the server at `baseURL`, given as a string.
    ///
    /// - Throws: ``HeraldClientError/Code/invalidURL`` when `baseURL` is not an HTTP(S) URL with a host.
    public convenience init(
        baseURL: String, key: String? = nil, httpClient: HTTPClient = .shared, requestTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "herald.client"), tracer: (any Tracer)? = InstrumentationSystem.tracer
    ) throws(HeraldClientError) {
        guard let url = URL(string: baseURL) else { throw HeraldClientError.invalidURL(baseURL) }
        try self.init(baseURL: url, key: key, httpClient: httpClient, requestTimeout: requestTimeout, logger: logger, tracer: tracer)
    }

    /// An HTTP client suited to many concurrent long polls; the caller shuts it down with
    /// `try await client.shutdown()` once every ``HeraldClient`` using it is done.
    public static func makeHTTPClient(maxConnectionsPerHost: Int = 64) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = maxConnectionsPerHost
        return HTTPClient(configuration: configuration)
    }
}
