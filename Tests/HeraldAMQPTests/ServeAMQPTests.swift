import Foundation
import HeraldAMQP
import HeraldTestSupport
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
}
