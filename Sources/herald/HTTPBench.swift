import AsyncHTTPClient
import Foundation
import HeraldClient
import HeraldCore

/// Runs bench runs through `HeraldClient` against a running `herald serve`.
enum HTTPBenchServer {
    /// Checks `--url` for `--store http`: an `http://` or `https://` URL with a host.
    static func validate(url: String) -> String? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            parsed.host?.isEmpty == false
        else {
            return "--store http needs --url http://host:port (or https://), not '\(url)'"
        }
        return nil
    }

    /// Runs `body` with a client of the server at `url`, on an HTTP client of its own with a
    /// connection for each of `connections` concurrent requests (senders and waiting receivers).
    static func with<T: Sendable>(url: String, key: String?, connections: Int, _ body: @Sendable (any MessageBroker) async throws -> T) async throws -> T {
        let httpClient = HeraldClient.makeHTTPClient(maxConnectionsPerHost: max(connections, 8))
        do {
            let result = try await body(try HeraldClient(baseURL: url, key: key, httpClient: httpClient))
            try await httpClient.shutdown()
            return result
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }
}
