import Foundation
import HTTPTypes
import HeraldConformance
import HeraldCore
import HeraldSQLite
import HeraldServer
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// A `HeraldHTTPServer` running in this process on a free port, on a fresh SQLite file.
struct ServerHarness: Sendable {
    let broker: SQLiteBroker
    let port: Int
    let directory: URL

    /// Runs `body` against a server on a fresh store, then stops the server and closes the store.
    ///
    /// - Parameters:
    ///   - keys: The key store, or `nil` for a server without keys.
    ///   - configure: Changes to the server's configuration.
    static func withServer(
        keys: KeyStore? = nil,
        directory: URL? = nil,
        configure: @escaping @Sendable (inout HeraldHTTPServer.Configuration) -> Void = { _ in },
        _ body: @Sendable (ServerHarness) async throws -> Void
    ) async throws {
        let directory = try directory ?? Self.temporaryDirectory()
        let server = LiveServer(path: directory.appendingPathComponent("herald.sqlite").path, keys: keys, configure: configure)
        let (broker, port) = try await server.start()
        do {
            try await body(ServerHarness(broker: broker, port: port, directory: directory))
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Runs `body` with one HTTP/1.1 connection to the server.
    func withClient<T: Sendable>(_ body: @escaping @Sendable (HTTPConnection) async throws -> T) async throws -> T {
        try await HTTPConnection.with(port: self.port, body)
    }
}

enum HarnessError: Error {
    case serverDidNotStart
}

/// A `HeraldHTTPServer` on a SQLite file, on a free port of 127.0.0.1. ``start()`` again after
/// ``stop()`` reopens the same file, as a restarted `herald serve` would; ``failStorage()`` makes
/// the broker's commits fail, as a failing disk would.
final class LiveServer: Sendable {
    private let path: String
    private let clock: any BrokerClock
    private let keys: KeyStore?
    private let configure: @Sendable (inout HeraldHTTPServer.Configuration) -> Void
    private let running = Mutex<(broker: SQLiteBroker, group: ServiceGroup, task: Task<Void, any Error>, storage: StorageSwitch)?>(nil)

    init(
        path: String, clock: any BrokerClock = SystemBrokerClock(), keys: KeyStore? = nil,
        configure: @escaping @Sendable (inout HeraldHTTPServer.Configuration) -> Void = { _ in }
    ) {
        self.path = path
        self.clock = clock
        self.keys = keys
        self.configure = configure
    }

    /// Opens the broker and starts the server; returns the broker and the port it listens on.
    func start() async throws -> (broker: SQLiteBroker, port: Int) {
        // A fresh switch per broker: a restarted broker writes again.
        let storage = StorageSwitch()
        var brokerConfiguration = SQLiteBroker.Configuration(clock: self.clock)
        brokerConfiguration._beforeCommit = { try storage.check() }
        let broker = try SQLiteBroker.running(path: self.path, configuration: brokerConfiguration)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "herald.server.test")
        logger.logLevel = .warning
        var configuration = HeraldHTTPServer.Configuration(port: 0, keys: self.keys, logger: logger) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        self.configure(&configuration)
        let server = HeraldHTTPServer(broker: broker, configuration: configuration)
        let group = Self.serviceGroup(running: server, logger: logger)
        let task = Task { try await group.run() }
        self.running.withLock { $0 = (broker, group, task, storage) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            await self.stop()
            throw HarnessError.serverDidNotStart
        }
        return (broker, port)
    }

    /// A group that runs `server` as `herald serve` does, and on a graceful shutdown gives requests
    /// in flight 10 seconds before it cancels them.
    static func serviceGroup(running server: HeraldHTTPServer, logger: Logger) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(services: [server], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(10)
        return ServiceGroup(configuration: configuration)
    }

    /// Stops the server gracefully and closes the broker.
    func stop() async {
        guard
            let running = self.running.withLock({ value in
                defer { value = nil }
                return value
            })
        else { return }
        await running.group.triggerGracefulShutdown()
        _ = await running.task.result
        await running.broker.close()
    }

    /// Makes the running broker's commits fail.
    func failStorage() {
        self.running.withLock { $0?.storage.fail() }
    }
}

/// One keep-alive HTTP/1.1 connection (HummingbirdTesting's `TestClient`) with helpers for the API.
struct HTTPConnection: Sendable {
    let client: TestClient

    static func with<T: Sendable>(port: Int, _ body: @escaping @Sendable (HTTPConnection) async throws -> T) async throws -> T {
        try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(30))) { client in
            try await body(HTTPConnection(client: client))
        }
    }

    /// An answer: its status, the `error` field when it is an error, and the body.
    struct Answer: Sendable {
        let status: Int
        let headers: HTTPFields
        let body: [UInt8]

        var text: String { String(decoding: self.body, as: UTF8.self) }

        /// The `error` field of a `WireError` body.
        var error: String? {
            guard let object = try? JSONSerialization.jsonObject(with: Data(self.body)) as? [String: Any] else { return nil }
            return object["error"] as? String
        }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(self.body))
        }
    }

    /// Sends a request; `body` is sent as is.
    func request(_ method: HTTPRequest.Method, _ path: String, body: [UInt8]? = nil, key: String? = nil, headers extra: HTTPFields = [:]) async throws -> Answer
    {
        var headers = extra
        if let key { headers[.authorization] = "Bearer \(key)" }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await self.client.execute(
            TestClient.Request(path, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
        )
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        return Answer(status: Int(response.status.code), headers: response.headers, body: bytes)
    }

    /// Sends `json` (any `JSONSerialization` value, or `Encodable`) as the body.
    func request(_ method: HTTPRequest.Method, _ path: String, json: Any, key: String? = nil, headers: HTTPFields = [:]) async throws -> Answer {
        let data = try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed])
        return try await self.request(method, path, body: Array(data), key: key, headers: headers)
    }

    func request(_ method: HTTPRequest.Method, _ path: String, encoding value: some Encodable, key: String? = nil) async throws -> Answer {
        try await self.request(method, path, body: Array(try JSONEncoder().encode(value)), key: key)
    }
}
