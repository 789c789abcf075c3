import HeraldAMQP
public import Logging
import NIOCore
import NIOPosix
package import NIOSSL
public import ServiceLifecycle
import Synchronization

/// `herald serve`'s AMQP 1.0 listener (the protocol of Azure Service Bus), a `Service`: it accepts
/// connections until its `ServiceGroup` shuts down, then closes them with `amqp:connection:forced`.
///
/// It speaks the connection layer (SASL, `open`, sessions, `close`, idle time-outs, the limits
/// below) and, with an ``AMQPBackend``, Service Bus's links: `$cbs`, senders, receivers,
/// `$management` and sessions. With ``Configuration/tls`` it speaks TLS (AMQPS, port 5671 by
/// convention).
public struct AMQPListener: Service {
    /// Where the listener listens and what it allows.
    public struct Configuration: Sendable {
        /// The address to bind.
        public var host: String
        /// The port; 0 picks a free one (see `onListening`).
        public var port: Int
        /// Connections open at once; past it, new ones are closed at once.
        public var maxConnections: Int
        /// The largest frame accepted, in bytes.
        public var maxFrameSize: UInt32
        /// How long a connection may send nothing, not even an empty frame, before it is closed.
        public var idleTimeout: Duration
        /// How long a connection may take to send its protocol header, SASL exchange and `open`.
        public var handshakeTimeout: Duration
        /// The certificate and key to speak TLS with; `nil` for plain TCP.
        public var tls: TLS?

        /// The PEM files of a TLS listener.
        public struct TLS: Sendable {
            /// The server's certificate chain, leaf first.
            public var certificateChainFile: String
            /// The certificate's private key.
            public var privateKeyFile: String

            /// A TLS configuration from two PEM files.
            public init(certificateChainFile: String, privateKeyFile: String) {
                self.certificateChainFile = certificateChainFile
                self.privateKeyFile = privateKeyFile
            }
        }

        /// A configuration: loopback, port 5672, 1000 connections, 1 MiB frames, two minutes idle.
        public init(
            host: String = "127.0.0.1", port: Int = 5672, maxConnections: Int = 1000, maxFrameSize: UInt32 = 1_048_576,
            idleTimeout: Duration = .seconds(120), handshakeTimeout: Duration = .seconds(30)
        ) {
            self.host = host
            self.port = port
            self.maxConnections = maxConnections
            self.maxFrameSize = maxFrameSize
            self.idleTimeout = idleTimeout
            self.handshakeTimeout = handshakeTimeout
        }
    }

    private let configuration: Configuration
    private let backend: AMQPBackend?
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    /// A listener serving links with `backend` (without one, every link is refused); `onListening`
    /// is called with the bound port once it listens.
    public init(
        configuration: Configuration, backend: AMQPBackend? = nil, logger: Logger = Logger(label: "herald.amqp"),
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.backend = backend
        self.logger = logger
        self.onListening = onListening
    }

    /// Listens until the service group shuts down gracefully (or the task is cancelled).
    public func run() async throws {
        let configuration = self.configuration
        let logger = self.logger
        let backend = self.backend
        let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
        let machineConfiguration = AMQPConnectionStateMachine.Configuration(
            containerId: "herald", maxFrameSize: configuration.maxFrameSize,
            idleTimeout: UInt32(clamping: configuration.idleTimeout.components.seconds * 1000))
        let idle = TimeAmount(configuration.idleTimeout)
        let tls = try configuration.tls.map(Self.tlsContext)
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    // The open connections, counted and kept in one place (shutdown closes them).
                    let admitted = connections.withLock { open -> Bool in
                        guard open.count < configuration.maxConnections else { return false }
                        open[ObjectIdentifier(channel)] = channel
                        return true
                    }
                    guard admitted else {
                        logger.debug("refusing an AMQP connection: the connection limit is reached")
                        return channel.close()
                    }
                    channel.closeFuture.whenComplete { _ in
                        connections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(
                            AMQPConnectionHandler(
                                configuration: machineConfiguration, backend: backend, logger: logger,
                                handshakeTimeout: TimeAmount(configuration.handshakeTimeout)))
                    }
                }
                .bind(host: configuration.host, port: configuration.port).get()
        } catch let error as IOError {
            throw ListenError(host: configuration.host, port: configuration.port, errnoCode: error.errnoCode, reason: "\(error)")
        }
        let port = server.localAddress?.port ?? configuration.port
        logger.info("AMQP listener started", metadata: ["herald.amqp.port": "\(port)"])
        self.onListening(port)

        await withGracefulShutdownHandler {
            try? await server.closeFuture.get()
        } onGracefulShutdown: {
            server.close(promise: nil)
            for channel in connections.withLock({ Array($0.values) }) {
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        }
        try? await server.close()
    }
}

extension AMQPListener {
    /// The listener could not bind its address (it is in use, or not this machine's).
    public struct ListenError: Error, CustomStringConvertible {
        /// The address the listener was to bind.
        public var host: String
        /// The port it was to bind.
        public var port: Int
        /// The system's error number (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`, …).
        public var errnoCode: Int32
        /// The system's description of the failure.
        public var reason: String

        public var description: String { "the AMQP listener cannot listen on \(self.host):\(self.port): \(self.reason)" }
    }
}

extension AMQPListener {
    /// The TLS context of `tls`: TLS 1.2 or later, with the certificate chain and key it names.
    static func tlsContext(_ tls: Configuration.TLS) throws -> NIOSSLContext {
        let configuration = try Self.tlsConfiguration(tls)
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSError(
                description:
                    "cannot use the TLS certificate \(tls.certificateChainFile) and key \(tls.privateKeyFile) (PEM files, the key matching the certificate): \(error)"
            )
        }
    }

    /// The server configuration of `tls` (TLS 1.2 or later, with the certificate chain and key it
    /// names), for every listener of `herald serve` that speaks TLS.
    package static func tlsConfiguration(_ tls: Configuration.TLS) throws(TLSError) -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateChainFile).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.privateKeyFile, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw TLSError(
                description:
                    "cannot use the TLS certificate \(tls.certificateChainFile) and key \(tls.privateKeyFile) (PEM files, the key matching the certificate): \(error)"
            )
        }
    }

    /// The listener's certificate or key cannot be used.
    public struct TLSError: Error, CustomStringConvertible {
        /// What is wrong, naming the files.
        public var description: String
    }
}
