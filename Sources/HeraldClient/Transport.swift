import AsyncHTTPClient
import Foundation
import HeraldCore
import HeraldWire
import Logging
import NIOCore
import NIOHTTP1
import Tracing

// One HTTP exchange per broker call: the URL from a ``WireRoute``, a JSON body, the key, and the
// answer either decoded or turned into the error it stands for.

extension HeraldClient {
    /// The largest answer read (a receive of 1,000 messages of 1 MiB, in base64, stays below it).
    static let maxResponseSize = 2 << 30

    /// Characters left as they are in a path segment (RFC 3986 unreserved).
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Calls `route` and decodes its answer as `Response`.
    func fetch<Response: Decodable>(
        _ route: WireRoute, _ parameters: [String: String] = [:], body: (any Encodable)? = nil,
        waiting: Duration = .zero, as type: Response.Type = Response.self
    ) async throws -> Response {
        let data = try await self.exchange(route, parameters, body: try body.map { try Self.encode($0) }, waiting: waiting)
        do {
            return try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw HeraldClientError.malformedResponse("\(route.operationId): \(error)")
        }
    }

    /// Calls `route`, which answers either without a body (204: `nil`) or with a `Response`.
    func fetchIfAny<Response: Decodable>(
        _ route: WireRoute, body: (any Encodable)? = nil, waiting: Duration = .zero, as type: Response.Type = Response.self
    ) async throws -> Response? {
        let data = try await self.exchange(route, [:], body: try body.map { try Self.encode($0) }, waiting: waiting)
        if data.isEmpty { return nil }
        do {
            return try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw HeraldClientError.malformedResponse("\(route.operationId): \(error)")
        }
    }

    /// Calls `route`, which answers without a body (204).
    func invoke(_ route: WireRoute, _ parameters: [String: String] = [:], body: (any Encodable)? = nil) async throws {
        _ = try await self.exchange(route, parameters, body: try body.map { try Self.encode($0) }, waiting: .zero)
    }

    private static func encode(_ value: any Encodable) throws -> Data {
        do {
            return try JSONEncoder().encode(value)
        } catch {
            throw HeraldError(.invalidArgument, "cannot encode the request: \(error)")
        }
    }

    /// The URL of `route` with its `{name}` parameters filled in, percent-encoded.
    func url(_ route: WireRoute, _ parameters: [String: String]) -> String {
        var path = route.path
        for (name, value) in parameters {
            let escaped = value.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? value
            path = path.replacingOccurrences(of: "{\(name)}", with: escaped)
        }
        return self.base + path
    }

    /// Sends one request and returns the body of a successful answer.
    ///
    /// `waiting` is how long the server may hold the request (a long poll); the request's timeout
    /// is that plus ``requestTimeout``.
    private func exchange(_ route: WireRoute, _ parameters: [String: String], body: Data?, waiting: Duration) async throws -> Data {
        var request = HTTPClientRequest(url: self.url(route, parameters))
        request.method = HTTPMethod(rawValue: route.method)
        request.headers.add(name: "Accept", value: "application/json")
        if let authorization = self.authorization {
            request.headers.add(name: "Authorization", value: authorization)
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        if let tracer = self.tracer, !self.httpClientTraces, let context = ServiceContext.current {
            // The server's span continues the caller's trace (W3C `traceparent` with swift-otel). An
            // HTTP client that traces does it itself, from its own span of the request.
            tracer.inject(context, into: &request.headers, using: HeadersInjector())
        }
        let timeout = self.requestTimeout + max(waiting, .zero)
        self.logger.trace("request", metadata: ["operation": "\(route.operationId)", "url": "\(request.url)"])
        let status: Int
        let answer: Data
        do {
            let response = try await self.httpClient.execute(request, timeout: .milliseconds(timeout.milliseconds))
            status = Int(response.status.code)
            let buffer = try await response.body.collect(upTo: Self.maxResponseSize)
            answer = Data(buffer.readableBytesView)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw HeraldClientError.transport(server: self.base, error)
        }
        guard (200..<300).contains(status) else {
            let error = Self.error(status: status, body: answer)
            self.logger.trace("request failed", metadata: ["operation": "\(route.operationId)", "status": "\(status)", "error": "\(error)"])
            throw error
        }
        return answer
    }
}

extension HeraldClient {
    /// Whether the HTTP client makes spans of its requests and writes their context into the
    /// headers itself: it has a tracer (other than the no-op one) from when it was configured.
    fileprivate var httpClientTraces: Bool {
        guard let tracer = self.httpClient.tracer else { return false }
        return !(tracer is NoOpTracer)
    }
}

/// Writes the trace context into a request's headers.
private struct HeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.replaceOrAdd(name: key, value: value)
    }
}
