import HeraldAMQP
import HeraldAMQPServer
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// The AMQP listener on a real socket: the handshake the Service Bus SDK makes, and the clients
/// that break the rules or the limits.
@Suite(.timeLimit(.minutes(1)))
struct AMQPListenerTests {
    /// Runs a listener with `configuration` (on a free port) while `body` runs, then shuts it down gracefully.
    static func serving(
        _ configuration: AMQPListener.Configuration = AMQPListener.Configuration(port: 0),
        _ body: @Sendable (Int) async throws -> Void
    ) async throws {
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "herald.amqp.test")
        logger.logLevel = .critical
        let listener = AMQPListener(configuration: configuration, logger: logger) { portContinuation.yield($0) }
        let group = ServiceGroup(services: [listener], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do {
                try await body(port)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func theServiceBusHandshakeThenARefusedLinkThenClose() async throws {
        try await Self.serving { port in
            try await AMQPTestClient.with(port: port) { client in
                let open = try #require(try await client.handshake())
                #expect(open.containerId == "herald" && open.maxFrameSize == 1_048_576)
                try await client.send(.begin(AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 65_536, outgoingWindow: 65_536)), channel: 3)
                guard case .begin(let begin) = try await client.readPerformative() else {
                    Issue.record("no begin")
                    return
                }
                #expect(begin.remoteChannel == 3)
                let cbs = AMQPAttach(name: "cbs-sender", handle: 0, role: .sender, source: AMQPSource(address: "$cbs"), target: AMQPTarget(address: "$cbs"))
                try await client.send(.attach(cbs), channel: 3)
                guard case .attach(let reply) = try await client.readPerformative(), case .detach(let detach) = try await client.readPerformative() else {
                    Issue.record("the attach was not answered")
                    return
                }
                #expect(reply.name == "cbs-sender" && reply.role == .receiver && reply.target == nil)
                #expect(detach.closed && detach.error?.condition == AMQPCondition.notImplemented)
                try await client.send(.close(AMQPEnding()))
                #expect(try await client.readPerformative() == .close(AMQPEnding()))
                try await client.waitUntilClosed()
            }
        }
    }

    @Test func bytesThatAreNotAMQPGetTheHeaderThenTheConnectionCloses() async throws {
        try await Self.serving { port in
            try await AMQPTestClient.with(port: port) { client in
                try await client.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
                #expect(try await client.readHeader() == .sasl)
                try await client.waitUntilClosed()
            }
        }
    }

    @Test func oversizedAndMalformedFramesCloseTheConnectionWithTheReason() async throws {
        var configuration = AMQPListener.Configuration(port: 0)
        configuration.maxFrameSize = 4096
        try await Self.serving(configuration) { port in
            try await AMQPTestClient.with(port: port) { client in
                _ = try #require(try await client.handshake())
                // A frame announcing 100 MB: refused from its size, before its bytes are read.
                try await client.send([0x05, 0xf5, 0xe1, 0x00, 2, 0, 0, 0])
                guard case .close(let close) = try await client.readPerformative() else {
                    Issue.record("no close")
                    return
                }
                #expect(close.error?.condition == AMQPCondition.framingError)
                try await client.waitUntilClosed()
            }
            try await AMQPTestClient.with(port: port) { client in
                _ = try #require(try await client.handshake())
                try await client.send([0, 0, 0, 10, 2, 0, 0, 0, 0x99, 0x99])
                guard case .close(let close) = try await client.readPerformative() else {
                    Issue.record("no close")
                    return
                }
                #expect(close.error?.condition == AMQPCondition.decodeError)
                try await client.waitUntilClosed()
            }
        }
    }

    @Test func idleConnectionsAreClosed() async throws {
        var configuration = AMQPListener.Configuration(port: 0)
        // Long enough for a handshake on a loaded machine (each step resets the idle timer).
        configuration.idleTimeout = .seconds(5)
        try await Self.serving(configuration) { port in
            try await AMQPTestClient.with(port: port) { client in
                _ = try #require(try await client.handshake())
                let start = ContinuousClock.now
                guard case .close(let close) = try await client.readPerformative() else {
                    Issue.record("the idle connection was not closed")
                    return
                }
                #expect(ContinuousClock.now - start >= .seconds(1))
                #expect(close.error?.condition == AMQPCondition.resourceLimitExceeded)
                try await client.waitUntilClosed()
            }
        }
    }

    @Test func aHandshakeMustFinishInTime() async throws {
        var configuration = AMQPListener.Configuration(port: 0)
        configuration.handshakeTimeout = .milliseconds(500)
        try await Self.serving(configuration) { port in
            // A client that sends its SASL header and then nothing. On a loaded machine the
            // server's timer may close the connection before the header is written.
            try await AMQPTestClient.with(port: port) { client in
                try? await client.send(.sasl)
                try await client.waitUntilClosed()
                #expect(client.isClosed)
            }
        }
    }

    @Test func connectionsPastTheLimitAreClosedAtOnce() async throws {
        var configuration = AMQPListener.Configuration(port: 0)
        configuration.maxConnections = 2
        try await Self.serving(configuration) { port in
            try await AMQPTestClient.with(port: port) { first in
                try await AMQPTestClient.with(port: port) { second in
                    _ = try #require(try await first.handshake())
                    _ = try #require(try await second.handshake())
                    try await AMQPTestClient.with(port: port) { third in
                        // The server may have closed it before this write.
                        try? await third.send(.sasl)
                        let header = try? await third.readHeader()
                        #expect(header == nil, "the third connection is closed without an answer")
                    }
                }
            }
            // Once the first two are gone, a new one is served.
            try await Task.sleep(for: .milliseconds(100))
            try await AMQPTestClient.with(port: port) { client in
                let open = try await client.handshake()
                #expect(open != nil)
            }
        }
    }

    @Test func aGracefulShutdownClosesOpenConnectionsWithConnectionForced() async throws {
        let closed = Mutex<AMQPError?>(nil)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "herald.amqp.test")
        logger.logLevel = .critical
        let listener = AMQPListener(configuration: AMQPListener.Configuration(port: 0), logger: logger) { portContinuation.yield($0) }
        let group = ServiceGroup(services: [listener], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await AMQPTestClient.with(port: port) { client in
                _ = try #require(try await client.handshake())
                await group.triggerGracefulShutdown()
                if case .close(let close) = try await client.readPerformative() { closed.withLock { $0 = close.error } }
                try await client.send(.close(AMQPEnding()))
                try await client.waitUntilClosed()
            }
            try await tasks.waitForAll()
        }
        #expect(closed.withLock { $0?.condition } == AMQPCondition.connectionForced)
    }
}
