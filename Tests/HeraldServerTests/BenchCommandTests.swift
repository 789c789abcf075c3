import Foundation
import HeraldClient
import HeraldCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `herald bench` runs its latency and handlers scenarios on the embedded store, and every
/// scenario through `HeraldClient` against a running `herald serve`.
@Suite("herald bench")
struct BenchCommandTests {
    @Test(arguments: ["latency", "handlers"])
    func scenarioRunsOnSQLite(_ scenario: String) async throws {
        let run = try await HeraldProcess.run(["bench", "--scenario", scenario, "--messages", "200"], timeout: .seconds(60))
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let results = try Self.results(run.stdout)
        #expect(results.map(\.scenario) == [scenario], "stdout: \(run.stdout)")
        for result in results {
            #expect(result.store == "sqlite")
            #expect(result.messages == 200)
            #expect(result.messagesPerSecond > 0, "stdout: \(run.stdout)")
            #expect(result.p50Ms > 0 && result.p99Ms >= result.p50Ms, "stdout: \(run.stdout)")
        }
    }

    /// The peers' workload: one sender of batches (the last one shorter) and one receiver;
    /// end-to-end fails unless every message arrived exactly once.
    @Test(arguments: ["send-concurrent", "end-to-end"])
    func batchedSendsRunOnSQLite(_ scenario: String) async throws {
        let run = try await HeraldProcess.run(
            ["bench", "--scenario", scenario, "--messages", "250", "--batch", "100", "--concurrency", "1", "--receivers", "1"], timeout: .seconds(60))
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let results = try Self.results(run.stdout)
        #expect(results.map(\.scenario) == [scenario], "stdout: \(run.stdout)")
        #expect(results.first?.messages == 250)
    }

    @Test func everyScenarioRunsOverHTTP() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try HeraldProcess(["serve", "--insecure-local", "--port", "0", "--data", directory.path])
        defer { server.signal(SIGKILL) }
        let port = try await server.waitUntilListening()
        let url = "http://127.0.0.1:\(port)"

        let run = try await HeraldProcess.run(
            ["bench", "--store", "http", "--url", url, "--messages", "60", "--concurrency", "4", "--receivers", "2"], timeout: .seconds(120)
        )
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let results = try Self.results(run.stdout)
        let expected = ["send-sequential", "send-concurrent", "receive-complete", "end-to-end", "latency", "handlers"]
        #expect(results.map(\.scenario) == expected, "stdout: \(run.stdout)")
        for result in results {
            #expect(result.store == "http", "\(result.scenario)")
            #expect(result.messagesPerSecond > 0, "\(result.scenario): stdout: \(run.stdout)")
        }
        // Each run deleted the queue (and topic) it made.
        let client = try HeraldClient(baseURL: url)
        #expect(try await client.listQueues().isEmpty)
        #expect(try await client.listTopics().isEmpty)
    }

    @Test(arguments: [
        (["--store", "http"], "--store http needs --url"),
        (["--store", "http", "--url", "postgres://localhost/herald"], "--store http needs --url http://"),
        (["--store", "http", "--url", "http://127.0.0.1:1", "--data", "x.sqlite"], "--data goes with --store sqlite"),
        (["--key", "hk_x"], "--key goes with --store http"),
        (["--batch", "0"], "--batch must lie in 1...100"),
        (["--batch", "101"], "--batch must lie in 1...100"),
    ])
    func invalidStoreOptionsAreRefused(_ arguments: [String], _ message: String) async throws {
        let run = try await HeraldProcess.run(["bench", "--messages", "1"] + arguments)
        #expect(run.status != 0)
        #expect(run.stderr.contains(message), "stderr: \(run.stderr)")
        #expect(run.stdout.isEmpty, "stdout: \(run.stdout)")
    }

    /// One JSON line of `herald bench`.
    struct Result: Decodable {
        var scenario: String
        var store: String
        var messages: Int
        var messagesPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
    }

    /// The JSON lines of a bench's standard output, in order.
    static func results(_ output: String) throws -> [Result] {
        try output.split(separator: "\n").map { try JSONDecoder().decode(Result.self, from: Data($0.utf8)) }
    }
}
