import HeraldAMQP
public import Logging
import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// `herald serve`'s AMQP 1.0 listener (the protocol of Azure Service Bus), a `Service`: it accepts
/// connections until its `ServiceGroup` shuts down, then closes them with `amqp:connection:forced`.
///
/// Today it speaks the connection layer: SASL, `open`, sessions, `close`, idle time-outs and the
/// limits below. Links (sending, receiving, `$cbs`, `$management`) are refused with
/// `amqp:not-implemented` until they are served.
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
