import Foundation
import HTTPTypes
import HeraldTestSupport
import HeraldWire
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// Drives every handler of a real `herald serve` process, on its real SQLite store, with
/// generated hostile requests (``HandlerFuzzer``) from several connections at once, and checks that
/// the process survives every one of them and never answers 5xx; afterwards `/health` answers.
///
/// `swift test` runs it for a few seconds with two connections. A long run:
/// `HERALD_HANDLER_FUZZ_SECONDS=600 HERALD_HANDLER_FUZZ_WORKERS=4 swift test --filter HandlerFuzz`;
/// `HERALD_HANDLER_FUZZ_SEED` replays a seed (each failure prints its seed and the request).
@Suite("Handler fuzzing against a live server")
struct HandlerFuzzTests {

    @Test func theServerSurvivesEveryGeneratedRequest() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["HERALD_HANDLER_FUZZ_SECONDS"].flatMap(Double.init) ?? 3
        let workers = environment["HERALD_HANDLER_FUZZ_WORKERS"].flatMap(Int.init) ?? 2
        let seed = environment["HERALD_HANDLER_FUZZ_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970 * 1000)
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try HeraldProcess(["serve", "--data", directory.path, "--port", "0", "--insecure-local", "--log-level", "error"])
        defer { server.signal(SIGKILL) }
        let port = try await server.waitUntilListening()

        try await HTTPConnection.with(port: port) { connection in
            for (path, body) in [
                ("/v1/queues/\(HandlerFuzzer.queue)", #"{"lockDurationMs": 5000, "maxDeliveryCount": 3}"#),
                ("/v1/queues/\(HandlerFuzzer.sessionQueue)", #"{"requiresSession": true, "lockDurationMs": 5000}"#),
                ("/v1/topics/\(HandlerFuzzer.topic)", "{}"),
                ("/v1/topics/\(HandlerFuzzer.topic)/subscriptions/\(HandlerFuzzer.subscription)", "{}"),
            ] {
                let answer = try await connection.request(.put, path, body: Array(body.utf8))
                #expect(answer.status == 201, "\(path): \(answer.text)")
            }
        }

        let harvest = FuzzHarvest()
        let run = FuzzRun()
        let deadline = ContinuousClock.now + .seconds(seconds)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    let state = WorkerState(HandlerFuzzer(random: FuzzRandom(seed: seed &+ UInt64(worker) &* 0x1_0000_0001), harvest: harvest))
                    while ContinuousClock.now < deadline, run.failures.withLock({ $0.isEmpty }) {
                        do {
                            try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(30))) { client in
                                while ContinuousClock.now < deadline, run.failures.withLock({ $0.isEmpty }) {
                                    let request = run.count.load(ordering: .relaxed) % 10 == worker ? Self.feed(&state.fuzzer) : state.fuzzer.next()
                                    state.last = request
                                    var headers = request.headers
                                    if request.body != nil { headers[.contentType] = "application/json" }
                                    let response = try await client.execute(
                                        TestClient.Request(
                                            request.path, method: request.method, headers: headers, body: request.body.map { ByteBuffer(bytes: $0) })
                                    )
                                    run.count.add(1, ordering: .relaxed)
                                    let bytes = response.body.map { Array($0.readableBytesView) } ?? []
                                    if response.status.code >= 500 {
                                        run.failures.withLock {
                                            $0.append(
                                                "seed \(seed) worker \(worker): \(response.status.code) \(String(decoding: bytes, as: UTF8.self)) for \(request)"
                                            )
                                        }
                                    }
                                    harvest.add(from: bytes)
                                }
                            }
                        } catch {
                            // The server may close a connection (after a 413, say); it must not exit.
                            if !server.process.isRunning {
                                run.failures.withLock {
                                    $0.append(
                                        "seed \(seed) worker \(worker): the server exited after \(state.last?.description ?? "nothing"): \(server.standardError.suffix(3000))"
                                    )
                                }
                            }
                        }
                    }
                }
            }
        }
        let problems = run.failures.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(server.process.isRunning, "the server exited: \(server.standardError.suffix(3000))")
        print("handler fuzzing: \(run.count.load(ordering: .relaxed)) requests in \(seconds) s, seed \(seed)")

        try await HTTPConnection.with(port: port) { connection in
            let start = ContinuousClock.now
            let health = try await connection.request(.get, "/health")
            #expect(health.status == 200, "\(health.text)")
            // Responsive, not hung: a loaded two-core machine answered in up to 1.7 s.
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    /// A well-formed send, receive or session accept that keeps tokens and session locks coming.
    static func feed(_ fuzzer: inout HandlerFuzzer) -> FuzzRequest {
        let body: String
        let route: WireRoute
        switch Int.random(in: 0..<4, using: &fuzzer.random) {
        case 0:
            route = .send
            body = #"{"entity":{"queue":"\#(HandlerFuzzer.queue)"},"messages":[{"text":"a"},{"text":"b"}]}"#
        case 1:
            route = .send
            body =
                #"{"entity":{"queue":"\#(HandlerFuzzer.sessionQueue)"},"messages":[{"text":"a","sessionId":"s\#(Int.random(in: 1...3, using: &fuzzer.random))"}]}"#
        case 2:
            route = .receive
            body = #"{"entity":{"queue":"\#(HandlerFuzzer.queue)"},"maxCount":3}"#
        default:
            route = .acceptSession
            body = #"{"entity":{"queue":"\#(HandlerFuzzer.sessionQueue)"}}"#
        }
        return FuzzRequest(method: .post, path: route.path, body: Array(body.utf8))
    }
}

/// One worker's generator and last request; only that worker's task touches it.
private final class WorkerState: @unchecked Sendable {
    var fuzzer: HandlerFuzzer
    var last: FuzzRequest?
    init(_ fuzzer: HandlerFuzzer) { self.fuzzer = fuzzer }
}

/// What the workers share: the failures found and the requests sent.
private final class FuzzRun: Sendable {
    let failures = Mutex<[String]>([])
    let count = Atomic<Int>(0)
}
