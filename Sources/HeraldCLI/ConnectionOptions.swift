import ArgumentParser
import AsyncHTTPClient
import Foundation
import HeraldClient
import HeraldCore
import HeraldSQLite

/// The options every admin command shares: where the broker is, and how to print.
struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A Herald server to manage, for example http://localhost:8080 (default: $HERALD_URL).", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("The server's API key (default: $HERALD_KEY).", valueName: "key"))
    var key: String?

    @Option(
        help: ArgumentHelp(
            "A data directory to open directly, holding herald.sqlite (default: ./herald-data). The server must not be running on it.", valueName: "path"))
    var data: String?

    @Flag(help: "Print machine-readable JSON instead of tables.")
    var json = false

    /// The file name of the SQLite store inside a data directory.
    static let databaseFile = "herald.sqlite"

    func validate() throws {
        if self.server != nil && self.data != nil {
            throw ValidationError("give --server or --data, not both")
        }
    }

    /// Where the command works: `--server`, else `--data`, else `$HERALD_URL`, else `./herald-data`.
    var target: Target {
        let environment = ProcessInfo.processInfo.environment
        if let server = self.server { return .server(server, key: self.key ?? environment["HERALD_KEY"]) }
        if let data = self.data { return .data(data) }
        if let server = environment["HERALD_URL"], !server.isEmpty {
            return .server(server, key: self.key ?? environment["HERALD_KEY"])
        }
        return .data("herald-data")
    }

    /// A server, or a data directory opened in this process.
    enum Target {
        case server(String, key: String?)
        case data(String)
    }

    /// Runs `body` with the broker the options name, closing a data directory's store afterwards.
    ///
    /// - Parameter creating: Whether a missing data directory is created (commands that create
    ///   entities or send); the others fail rather than leave an empty store behind.
    func withBroker<T>(creating: Bool = false, _ body: (any MessageBroker) async throws -> T) async throws -> T {
        switch self.target {
        case .server(let url, let key):
            // One command, one attempt: a server that refuses the connection is reported at once
            // rather than retried until the request times out.
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.retryConnectionEstablishment = false
            let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                let result = try await body(try HeraldClient(baseURL: url, key: key, httpClient: httpClient))
                try? await httpClient.shutdown()
                return result
            } catch {
                try? await httpClient.shutdown()
                throw error
            }
        case .data(let directory):
            let fileManager = FileManager.default
            var isDirectory: ObjCBool = false
            if !fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) {
                guard creating else {
                    throw CommandFailure("no data directory at '\(directory)'; pass --data PATH or --server URL")
                }
                try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } else if !isDirectory.boolValue {
                throw CommandFailure("'\(directory)' is not a directory")
            }
            let path = URL(fileURLWithPath: directory).appendingPathComponent(Self.databaseFile).path
            if !creating && !fileManager.fileExists(atPath: path) {
                throw CommandFailure("no Herald store in '\(directory)' (\(Self.databaseFile) is missing)")
            }
            do {
                return try await SQLiteBroker.withBroker(path: path, body)
            } catch let error where SQLiteBroker.isFileInUse(error) {
                throw CommandFailure(
                    "the data directory '\(directory)' is in use by a running server (herald serve); "
                        + "manage it through the server with --server URL, or stop the server first",
                    code: "storeInUse"
                )
            }
        }
    }
}
