import Foundation
import HTTPTypes
import HeraldCore
import HeraldWire
import Hummingbird
import Logging
import NIOCore

/// Answers every request: finds its route, checks its key and right, reads its body within the
/// size limit, runs the handler, and turns every error into a ``HeraldWire/WireError`` answer.
/// Records the latency of each request and logs it at debug level.
struct Responder: HTTPResponder {
    typealias Context = BasicRequestContext

    let routes: RouteTable
    let handlers: Handlers
    let keys: KeyStore?
    let limiter: InFlightLimiter
    let maxRequestBodySize: Int
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        let start = ContinuousClock.now
        let method = request.method.rawValue
        var operation = "unknown"
        let response: Response
        do {
            switch self.routes.resolve(method: method, path: request.uri.path) {
            case .notFound:
                throw ServerError.notFound(request.uri.path)
            case .methodNotAllowed(let allowed):
                throw ServerError.methodNotAllowed(method, allowed: allowed)
            case .matched(let route, let parameters):
                operation = route.operationId
                response = try await self.respond(to: request, route: route, parameters: parameters)
            }
        } catch {
            let failure = ServerError.from(error)
            if failure.status == 503 {
                self.logger.warning("request refused: the store is unavailable", metadata: ["herald.operation": "\(operation)", "error": "\(failure.message)"])
            } else if failure.status >= 500 {
                self.logger.error("request failed", metadata: ["herald.operation": "\(operation)", "error": "\(String(reflecting: error))"])
            }
            response = Reply.error(failure)
        }
        let duration = ContinuousClock.now - start
        self.handlers.metrics.request(operation: operation, status: response.status.code, duration: duration)
        self.logger.debug(
            "request",
            metadata: [
                "herald.operation": "\(operation)", "http.method": "\(method)", "http.status": "\(response.status.code)",
                "herald.duration_ms": "\(Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000)",
            ]
        )
        return response
    }

    private func respond(to request: Request, route: Route, parameters: [String: String]) async throws -> Response {
        let caller = try self.authenticate(request, route: route)
        if let right = route.right { try caller.require(right) }
        return try await self.limiter.run(for: caller.label) {
            let body = try await self.readBody(of: request, route: route)
            return try await self.handlers.handle(route, parameters: parameters, body: body, caller: caller)
        }
    }

    /// The caller of `request`: anyone on open routes or without keys; otherwise the holder of a
    /// valid key from `Authorization: Bearer` or `X-Herald-Key`.
    private func authenticate(_ request: Request, route: Route) throws(ServerError) -> Caller {
        guard let keys = self.keys, route.right != nil else { return .anyone }
        guard let presented = Self.presentedKey(request.headers) else {
            throw .unauthorized("this route needs a key: Authorization: Bearer hk_…")
        }
        guard let key = keys.authenticate(presented) else { throw .unauthorized("the key is not valid, or was revoked") }
        return Caller(key: key)
    }

    private static let keyHeader = HTTPField.Name("X-Herald-Key")!

    private static func presentedKey(_ headers: HTTPFields) -> String? {
        if let authorization = headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return parts[1].trimmingCharacters(in: .whitespaces) }
            return nil
        }
        return headers[Self.keyHeader]
    }

    /// The body of a PUT or POST, at most ``maxRequestBodySize`` bytes; nothing for other methods.
    private func readBody(of request: Request, route: Route) async throws -> ByteBuffer {
        guard route.method == "PUT" || route.method == "POST" else { return ByteBuffer() }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > self.maxRequestBodySize {
            throw ServerError.payloadTooLarge(limit: self.maxRequestBodySize)
        }
        do {
            return try await request.body.collect(upTo: self.maxRequestBodySize)
        } catch is NIOTooManyBytesError {
            throw ServerError.payloadTooLarge(limit: self.maxRequestBodySize)
        }
    }
}
