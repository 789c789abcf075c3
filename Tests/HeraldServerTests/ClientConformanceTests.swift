import AsyncHTTPClient
import Foundation
import HeraldClient
import HeraldConformance
import HeraldCore
import HeraldServer
import HeraldSQLite
import Logging
import Synchronization
import Testing

/// Runs the whole conformance suite through `HeraldClient` against a live `HeraldHTTPServer` (on
/// a free port of 127.0.0.1, over real HTTP) serving a SQLite broker: the client must behave
/// exactly as the embedded broker does.
@Suite("ClientConformanceTests")
struct ClientConformanceTests {
    @Test(arguments: BrokerConformance.cases)
    func conformance(_ testCase: ConformanceCase) async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("herald-client-conformance-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualBrokerClock()
        let httpClient = HeraldClient.makeHTTPClient()
        let server = LiveServer(path: directory.appendingPathComponent("herald.sqlite").path, clock: clock, httpClient: httpClient)
        do {
            let client = try await server.start()
            let context = ConformanceContext(
                broker: client, clock: clock,
                reopen: {
                    await server.stop()
                    return try await server.start()
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

/// A SQLite broker served over HTTP on a free port; ``start()`` (again after ``stop()``) reopens
/// the same file, as a restarted `herald serve` would.
private final class LiveServer: Sendable {
    private let path: String
    private let clock: ManualBrokerClock
    private let httpClient: HTTPClient
    private let running = Mutex<(broker: SQLiteBroker, task: Task<Void, any Error>)?>(nil)
    private let storage = Mutex(StorageSwitch())

    init(path: String, clock: ManualBrokerClock, httpClient: HTTPClient) {
        self.path = path
        self.clock = clock
        self.httpClient = httpClient
    }

    /// Opens the broker, starts the server and returns a client of it.
    func start() async throws -> any MessageBroker {
        // A fresh switch per broker: a restarted broker writes again.
        let storage = StorageSwitch()
        self.storage.withLock { $0 = storage }
        var configuration = SQLiteBroker.Configuration(clock: self.clock)
        configuration._beforeCommit = { try storage.check() }
        let broker = try SQLiteBroker(path: self.path, configuration: configuration)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "herald.test.server")
        logger.logLevel = .warning
        let server = HeraldHTTPServer(
            broker: broker,
            configuration: .init(host: "127.0.0.1", port: 0, keys: nil, logger: logger, onServerRunning: { port in
                continuation.yield(port)
                continuation.finish()
            })
        )
        let task = Task { try await server.run() }
        self.running.withLock { $0 = (broker, task) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            await self.stop()
            throw ServerDidNotStart()
        }
        return try HeraldClient(baseURL: "http://127.0.0.1:\(port)", httpClient: self.httpClient)
    }

    /// Stops the server and closes the broker.
    func stop() async {
        guard let running = self.running.withLock({ value in defer { value = nil }; return value }) else { return }
        running.task.cancel()
        _ = await running.task.result
        await running.broker.close()
    }

    /// Makes the broker's next commits fail, as a failing disk would.
    func failStorage() {
        self.storage.withLock { $0.fail() }
    }

    struct ServerDidNotStart: Error {}
}
