import AsyncHTTPClient
import Foundation
import HeraldClient
import HeraldConformance
import HeraldCore
import Testing

/// Runs the conformance suite through `HeraldClient` against a live `HeraldHTTPServer` (on a free
/// port of 127.0.0.1, over real HTTP) serving a SQLite broker: the client must behave exactly as
/// the embedded broker does, but for the cases that release deliveries uncounted (the HTTP API
/// has no release; the client's release abandons, which counts).
@Suite("ClientConformanceTests")
struct ClientConformanceTests {
    @Test func theExceptedCasesAreTheUncountedReleaseCases() {
        let excepted = BrokerConformance.casesRequiring(.uncountedRelease).map(\.name)
        #expect(excepted == ["deliveryCount.releaseIsNotCounted"])
        #expect(BrokerConformance.casesWithout([.uncountedRelease]).count + excepted.count == BrokerConformance.cases.count)
    }

    @Test(arguments: BrokerConformance.casesWithout([.uncountedRelease]))
    func conformance(_ testCase: ConformanceCase) async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("herald-client-conformance-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualBrokerClock()
        let httpClient = HeraldClient.makeHTTPClient()
        let server = LiveServer(path: directory.appendingPathComponent("herald.sqlite").path, clock: clock)
        @Sendable func startClient() async throws -> any MessageBroker {
            try HeraldClient(baseURL: "http://127.0.0.1:\(try await server.start().port)", httpClient: httpClient)
        }
        do {
            let context = ConformanceContext(
                broker: try await startClient(), clock: clock,
                reopen: {
                    await server.stop()
                    return try await startClient()
                },
                failStorage: { server.failStorage() }
            )
            try await testCase.run(context)
        } catch {
            await server.stop()
            try await httpClient.shutdown()
            throw error
        }
        await server.stop()
        try await httpClient.shutdown()
    }
}
