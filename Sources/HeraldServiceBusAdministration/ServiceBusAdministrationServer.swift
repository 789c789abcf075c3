import Foundation
public import HeraldAMQPServer
import HeraldCore
import HeraldWire
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
public import ServiceLifecycle

/// Azure Service Bus's administration API (the Atom XML management API that
/// `ServiceBusAdministrationClient` of every Service Bus SDK speaks) for `herald serve`: queues,
/// topics, subscriptions and their rules are created, read, listed, changed and deleted on the
/// broker the AMQP listener serves.
///
/// Requests carry a shared access signature in `Authorization`, signed with one of Herald's access
/// keys as the AMQP listener's tokens are; every operation needs the key's `manage` right, and a
/// key limited to one entity manages that entity only. The SDKs speak HTTPS to it, so it listens
/// with TLS when given a certificate.
public struct ServiceBusAdministrationServer: Service {
    /// Where and how the server listens.
    public struct Configuration: Sendable {
        /// The certificate and key the server speaks TLS with: PEM files, as the AMQP listener's.
        public typealias TLS = AMQPListener.Configuration.TLS

        /// The address to listen on.
        public var host: String
        /// The port; `0` picks a free one (see ``onServerRunning``).
        public var port: Int
        /// TLS, which the SDKs' administration clients require; `nil` listens in plain HTTP.
        public var tls: TLS?
        /// The most connections open at once; past it clients wait in the listen backlog.
        public var maxConnections: Int
        /// How long a connection may sit without a request before it is closed.
        public var idleTimeout: Duration
        /// The largest request body: an entity or rule description is a few KiB.
        public var maxRequestBodySize: Int
        /// Called once the server listens, with its port.
        public var onServerRunning: (@Sendable (Int) async -> Void)?

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - host: The address to listen on.
        ///   - port: The port; `0` for any free one.
        ///   - tls: The certificate and key, or `nil` for plain HTTP.
        ///   - maxConnections: Connections open at once, 100 by default.
        ///   - idleTimeout: How long a connection may wait for its next request, 60 seconds by default.
        ///   - maxRequestBodySize: The largest request body, 256 KiB by default.
        ///   - onServerRunning: Called with the bound port once the server listens.
        public init(
            host: String = "127.0.0.1", port: Int, tls: TLS? = nil, maxConnections: Int = 100, idleTimeout: Duration = .seconds(60),
            maxRequestBodySize: Int = 256 * 1024, onServerRunning: (@Sendable (Int) async -> Void)? = nil
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.maxRequestBodySize = maxRequestBodySize
            self.onServerRunning = onServerRunning
        }
    }

    /// The server could not listen on its port.
    public struct ListenError: Error, CustomStringConvertible {
        /// The port it was to listen on.
        public var port: Int
        /// The `errno` of the failed `bind`.
        public var errnoCode: Int32
        /// What went wrong, for people.
        public var description: String
    }

    private let configuration: Configuration
    private let backend: AMQPBackend
    private let logger: Logger

    /// A server that manages `backend`'s broker and checks tokens against its keys.
    ///
    /// - Parameters:
    ///   - configuration: Where and how to listen.
    ///   - backend: The broker, and the access keys tokens are verified with (the AMQP listener's).
    ///   - logger: Where the server logs.
    public init(configuration: Configuration, backend: AMQPBackend, logger: Logger) {
        self.configuration = configuration
        self.backend = backend
        self.logger = logger
    }

    /// Listens and answers until a graceful shutdown or cancellation.
    ///
    /// - Throws: `AMQPListener.TLSError` when the certificate or key cannot be used, or
    ///   ``ListenError`` when the port cannot be bound.
    public func run() async throws {
        let configuration = self.configuration
        let responder = AdministrationResponder(
            handler: AdministrationHandler(broker: self.backend.broker), authorizer: AdministrationAuthorizer(backend: self.backend),
            scheme: configuration.tls == nil ? "http" : "https", maxRequestBodySize: configuration.maxRequestBodySize, logger: self.logger)
        var frameworkLogger = self.logger
        frameworkLogger.logLevel = max(self.logger.logLevel, .notice)
        let http1 = HTTPServerBuilder.http1(configuration: HTTP1Channel.Configuration(idleTimeout: TimeAmount(configuration.idleTimeout)))
        let server: HTTPServerBuilder
        if let tls = configuration.tls {
            server = try .tls(http1, tlsConfiguration: AMQPListener.tlsConfiguration(tls))
        } else {
            server = http1
        }
        let application = Application(
            responder: responder, server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "herald",
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections, logger: frameworkLogger)),
            onServerRunning: { channel in
                await configuration.onServerRunning?(channel.localAddress?.port ?? configuration.port)
            },
            logger: frameworkLogger)
        do {
            try await application.run()
        } catch let error as IOError {
            throw ListenError(port: configuration.port, errnoCode: error.errnoCode, description: "\(error)")
        }
    }
}

/// Answers each request: resolves its resource, checks its token, reads its body, and writes the
/// handler's answer or the failure as Service Bus's error document.
struct AdministrationResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let handler: AdministrationHandler
    let authorizer: AdministrationAuthorizer
    let scheme: String
    let maxRequestBodySize: Int
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        do {
            guard let resource = AdministrationResource(path: request.uri.path) else {
                throw AdministrationFailure(status: 404, detail: "the administration API has no \(request.uri.path.prefix(200))")
            }
            try self.authorizer.authorize(request.headers[.authorization], for: resource, at: Date())
            var body = Data()
            if request.method == .put {
                if let length = request.headers[.contentLength].flatMap(Int.init), length > self.maxRequestBodySize {
                    throw AdministrationFailure(status: 413, detail: "the body is larger than \(self.maxRequestBodySize) bytes")
                }
                do {
                    body = Data(try await request.body.collect(upTo: self.maxRequestBodySize).readableBytesView)
                } catch is NIOTooManyBytesError {
                    throw AdministrationFailure(status: 413, detail: "the body is larger than \(self.maxRequestBodySize) bytes")
                }
            }
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
            let host = request.head.authority ?? "localhost"
            let answer = try await self.handler.answer(
                method: request.method.rawValue, resource: resource, query: query, isUpdate: request.headers[.ifMatch] != nil, body: body,
                base: "\(self.scheme)://\(host)/", host: host)
            return Self.response(status: answer.status, document: answer.document, contentType: "application/atom+xml;type=entry;charset=utf-8")
        } catch let failure as AdministrationFailure {
            if failure.status >= 500 && failure.status != 501 {
                self.logger.error("administration request failed", metadata: ["error": "\(failure.detail)"])
            }
            return Self.response(
                status: failure.status, document: AdministrationDocuments.errorDocument(failure), contentType: "application/xml; charset=utf-8")
        }
    }

    private static func response(status: Int, document: String?, contentType: String) -> Response {
        var headers = HTTPFields()
        guard let document else {
            headers[.contentLength] = "0"
            return Response(status: .init(code: status), headers: headers)
        }
        headers[.contentType] = contentType
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: document)))
    }
}

/// Checks the shared access signature of a request against Herald's access keys.
struct AdministrationAuthorizer: Sendable {
    let backend: AMQPBackend

    /// Lets the request through, or throws 401 (no valid token) or 403 (a token without the right
    /// or scope for `resource`).
    func authorize(_ authorization: String?, for resource: AdministrationResource, at now: Date) throws(AdministrationFailure) {
        guard self.backend.verifiesTokens else { return }
        guard let authorization, let token = SharedAccessSignature(parsing: authorization) else {
            throw AdministrationFailure(status: 401, detail: "the request needs Authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=…")
        }
        guard let credential = self.backend.credential(token.keyName), token.isSigned(with: credential.sharedAccessKey) else {
            throw AdministrationFailure(status: 401, detail: "the token is not signed by an access key of this server")
        }
        guard token.isValid(at: now) else { throw AdministrationFailure(status: 401, detail: "the token has expired") }
        guard let granted = token.grantedPath else { throw AdministrationFailure(status: 401, detail: "the token's resource is not a URI of this server") }
        guard credential.rights.contains(.manage) else {
            throw AdministrationFailure(status: 403, detail: "managing entities needs a key with the manage right")
        }
        let entity = resource.entityName
        if let scope = credential.entity, scope != entity {
            throw AdministrationFailure(status: 403, detail: "the key manages \(scope) only")
        }
        let grantedEntity = granted.split(separator: "/").first.map(String.init)
        if let grantedEntity, grantedEntity != entity {
            throw AdministrationFailure(status: 403, detail: "the token grants \(granted) only")
        }
    }
}
