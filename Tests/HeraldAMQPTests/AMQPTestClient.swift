import HeraldAMQP
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A test's AMQP peer over a real socket: sends headers and frames, reads what the server answers.
final class AMQPTestClient {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var received = ByteBuffer()
    private(set) var isClosed = false

    private init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Connects to 127.0.0.1:`port` (with `tls`, over TLS) and runs `body` with the connection, closed afterwards.
    static func with<T>(port: Int, tls: NIOSSLContext? = nil, _ body: (AMQPTestClient) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: "localhost")) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(AMQPTestClient(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        try await self.outbound.write(ByteBuffer(bytes: bytes))
    }

    func send(_ header: AMQPProtocolHeader) async throws {
        try await self.send(header.bytes)
    }

    func send(_ performative: AMQPPerformative, channel: UInt16 = 0) async throws {
        var buffer = ByteBuffer()
        try buffer.writeAMQPFrame(AMQPFrame(channel: channel, body: performative.value))
        try await self.outbound.write(buffer)
    }

    /// Sends `message` in one transfer frame.
    func sendTransfer(_ transfer: AMQPTransfer, message: AMQPMessage, channel: UInt16 = 0) async throws {
        var payload = ByteBuffer()
        try payload.writeAMQPMessage(message)
        var buffer = ByteBuffer()
        try buffer.writeAMQPFrame(AMQPFrame(channel: channel, body: AMQPPerformative.transfer(transfer).value, payload: payload))
        try await self.outbound.write(buffer)
    }

    func send(_ sasl: AMQPSASLFrame) async throws {
        var buffer = ByteBuffer()
        try buffer.writeAMQPFrame(AMQPFrame(kind: .sasl, channel: 0, body: sasl.value))
        try await self.outbound.write(buffer)
    }

    /// The next protocol header, or `nil` once the server closed the connection.
    func readHeader() async throws -> AMQPProtocolHeader? {
        while true {
            if let header = try AMQPProtocolHeader.read(from: &self.received) { return header }
            guard try await self.readMore() else { return nil }
        }
    }

    /// The next frame, or `nil` once the server closed the connection.
    func readFrame() async throws -> AMQPFrame? {
        let decoder = AMQPFrameDecoder(maxFrameSize: .max)
        while true {
            if let frame = try decoder.decode(&self.received) { return frame }
            guard try await self.readMore() else { return nil }
        }
    }

    /// The next performative, skipping empty frames; `nil` once the connection is closed.
    func readPerformative() async throws -> AMQPPerformative? {
        while let frame = try await self.readFrame() {
            if let body = frame.body { return try AMQPPerformative(body) }
        }
        return nil
    }

    /// Waits until the server closes the connection, discarding what it sends.
    ///
    /// A reset counts as a close: a server that closes a socket holding unread input (a client's
    /// header that arrived as its timer fired, on a loaded machine) makes the kernel send RST.
    func waitUntilClosed() async throws {
        do {
            while try await self.readMore() { self.received.clear() }
        } catch let error as IOError where error.errnoCode == ECONNRESET {
            self.isClosed = true
        }
    }

    /// The SASL and AMQP headers, an ANONYMOUS SASL exchange and `open`, as the Service Bus SDK does.
    func handshake() async throws -> AMQPOpen? {
        try await self.send(.sasl)
        guard try await self.readHeader() == .sasl, try await self.readFrame() != nil else { return nil }
        try await self.send(.initial(mechanism: "ANONYMOUS", response: [], hostname: "localhost"))
        guard let outcome = try await self.readFrame()?.body, try AMQPSASLFrame(outcome) == .outcome(code: 0, additionalData: nil) else { return nil }
        try await self.send(.amqp)
        guard try await self.readHeader() == .amqp else { return nil }
        try await self.send(.open(AMQPOpen(containerId: "test-client", hostname: "localhost", maxFrameSize: 1_048_576)))
        guard case .open(let open) = try await self.readPerformative() else { return nil }
        return open
    }

    private func readMore() async throws -> Bool {
        guard !self.isClosed, var bytes = try await self.inbound.next() else {
            self.isClosed = true
            return false
        }
        self.received.writeBuffer(&bytes)
        return true
    }
}
