import Foundation
import HeraldAMQP
import HeraldTestSupport
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `herald serve --amqp-port`: the listener runs beside the HTTP API in the real executable.
@Suite(.timeLimit(.minutes(1)))
struct ServeAMQPTests {
    @Test func serveListensForAMQPBesideHTTPAndStopsOnSIGTERM() async throws {
        let herald = try #require(HeraldExecutable.url(), "the herald executable is built with the tests (run `swift build`)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-amqp-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let serve = try ChildProcess(
            herald, ["serve", "--insecure-local", "--port", "0", "--amqp-port", "0", "--data", directory.path, "--log-level", "error"])
        defer { serve.signal(SIGKILL) }
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(30)
        while port == nil && ContinuousClock.now < deadline && serve.isRunning {
            for line in serve.standardOutput.split(separator: "\n") where line.hasPrefix("herald AMQP listening on amqp://127.0.0.1:") {
                port = Int(line.dropFirst("herald AMQP listening on amqp://127.0.0.1:".count))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let amqpPort = try #require(port, "no AMQP listening line: \(serve.standardOutput) \(serve.standardError)")
        #expect(serve.standardOutput.contains("herald listening on http://127.0.0.1:"))
        try await AMQPTestClient.with(port: amqpPort) { client in
            let open = try await client.handshake()
            #expect(open?.containerId == "herald")
            serve.signal(SIGTERM)
            guard case .close(let close) = try await client.readPerformative() else {
                Issue.record("no close on SIGTERM")
                return
            }
            #expect(close.error?.condition == AMQPCondition.connectionForced)
            // The server may be gone already: it does not wait for the answer to exit.
            try? await client.send(.close(AMQPEnding()))
            try await client.waitUntilClosed()
        }
        #expect(await serve.waitForExit(timeout: .seconds(20)) == .exited(0), "\(serve.standardError.suffix(2000))")
    }

    /// Starts `herald serve --amqp-port 0` under a descriptor limit of `descriptorLimit`; returns the process and its HTTP and AMQP ports.
    static func serve(descriptorLimit: Int, directory: URL) async throws -> (ChildProcess, http: Int, amqp: Int) {
        let herald = try #require(HeraldExecutable.url(), "the herald executable is built with the tests (run `swift build`)")
        let serve = try ChildProcess(
            "/bin/sh",
            [
                "-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", herald.path, "serve", "--insecure-local", "--port", "0", "--amqp-port", "0",
                "--data", directory.path, "--log-level", "error",
            ])
        var http: Int?
        var amqp: Int?
        let deadline = ContinuousClock.now + .seconds(30)
        while (http == nil || amqp == nil) && ContinuousClock.now < deadline && serve.isRunning {
            for line in serve.standardOutput.split(separator: "\n") {
                if line.hasPrefix("herald AMQP listening on amqp://127.0.0.1:") {
                    amqp = Int(line.dropFirst("herald AMQP listening on amqp://127.0.0.1:".count))
                } else if line.hasPrefix("herald listening on http://127.0.0.1:") {
                    http = Int(line.dropFirst("herald listening on http://127.0.0.1:".count).prefix { $0 != " " })
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let http, let amqp else {
            serve.signal(SIGKILL)
            throw ServeAMQPTestError.notListening(serve.standardOutput + serve.standardError)
        }
        return (serve, http, amqp)
    }

    /// The status line of `GET /health`, or `nil` when no answer came within `timeout`.
    static func health(port: Int, timeout: Duration) async throws -> String? {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    var received = ""
                    for try await var bytes in inbound {
                        received += bytes.readString(length: bytes.readableBytes) ?? ""
                        if let line = received.split(separator: "\r\n").first, received.contains("\r\n") { return String(line) }
                    }
                    return nil
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
        }
    }

    @Test func amqpConnectionsCannotTakeTheDescriptorsHTTPAndTheStoreNeed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-amqp-fd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (serve, http, amqp) = try await Self.serve(descriptorLimit: 256, directory: directory)
        defer { serve.signal(SIGKILL) }
        // More AMQP connections than the process has descriptors: past its share, each is closed at once.
        // They connect at once, not one after another: on a loaded machine a full listen backlog
        // makes a connect wait for its SYN to be sent again, and 300 such waits in a row outlast the test.
        let connections = try await withThrowingTaskGroup(of: (any Channel).self) { group in
            for _ in 0..<300 {
                group.addTask {
                    let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: amqp).get()
                    // A connection past the share may be closed before its header goes out.
                    try? await connection.writeAndFlush(ByteBuffer(bytes: AMQPProtocolHeader.sasl.bytes))
                    return connection
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        defer { for connection in connections { connection.close(promise: nil) } }
        try await Task.sleep(for: .milliseconds(500))
        let open = connections.filter(\.isActive).count
        #expect(open <= (256 - 128) / 2 + 1, "\(open) AMQP connections held open under a limit of 256 descriptors")
        let status = try await Self.health(port: http, timeout: .seconds(5))
        #expect(status == "HTTP/1.1 200 OK", "GET /health while AMQP clients hold their share: \(status ?? "no answer")")
    }

    @Test(arguments: ["--amqp-port", "--servicebus-admin-port"])
    func aTakenPortIsNamedAsTheOneThatFailed(option: String) async throws {
        let herald = try #require(HeraldExecutable.url(), "the herald executable is built with the tests (run `swift build`)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-amqp-bind-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let taken = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { taken.close(promise: nil) }
        let port = try #require(taken.localAddress?.port)
        let serve = try ChildProcess(
            herald, ["serve", "--insecure-local", "--port", "0", option, "\(port)", "--data", directory.path, "--log-level", "critical"])
        defer { serve.signal(SIGKILL) }
        #expect(await serve.waitForExit(timeout: .seconds(30)) == .exited(1))
        #expect(
            serve.standardError.contains("cannot listen on 127.0.0.1:\(port): the address is already in use") && serve.standardError.contains(option),
            "\(serve.standardError.suffix(1000))")
    }
}

enum ServeAMQPTestError: Error {
    case notListening(String)
}
