import Foundation
import HTTPTypes
import HeraldCore
import HeraldWire
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Answers every request: finds its route, checks its key and right, reads its body within the
/// size limit, runs the handler, and turns every error into a ``HeraldWire/WireError`` answer.
/// Records the latency of each request and logs it at debug level.
struct Responder: HTTPResponder {
    typealias Context = HeraldRequestContext

    let routes: RouteTable
    let handlers: Handlers
    let keys: KeyStore?
    let limiter: InFlightLimiter
    let maxRequestBodySize: Int
    /// How long reading a request's body may take in all.
    let requestReadTimeout: Duration
    /// Whether `GET /metrics` answers without a key.
    let metricsArePublic: Bool
    let logger: Logger

    /// How long a connection refused mid-request stays open for its answer to be read.
    static let closingGrace: TimeAmount = .milliseconds(500)

    func respond(to request: Request, context: Context) async throws -> Response {
        let start = ContinuousClock.now
        let method = request.method.rawValue
        var operation = "unknown"
        var response: Response
        let body = BodyProgress()
        do {
            switch self.routes.resolve(method: method, path: request.uri.path) {
            case .notFound:
                throw ServerError.notFound(request.uri.path)
            case .methodNotAllowed(let allowed):
                throw ServerError.methodNotAllowed(method, allowed: allowed)
            case .matched(let route, let parameters) where route == .console || route == .consoleAsset:
                // The console's static files: no key, no body, no store.
                operation = route.operationId
                response = try ConsoleAssets.answer(route, parameters: parameters, request: request)
            case .matched(let route, let parameters):
                operation = route.operationId
                response = try await self.respond(to: request, route: route, parameters: parameters, connection: context.connection, body: body)
            }
        } catch {
            let failure = ServerError.from(error)
            // An error answered before the body was read leaves it to be read and dropped: fine
            // within the body limit, but a longer (or chunked) one could go on without end, so
            // the connection closes instead, as it does after a body too large or too slow.
            let closing = failure.closesConnection || (!body.isRead && self.mayHaveLongBody(request))
            // The log gets the error's details, which the answer may leave out (a failed store's).
            if failure.status == 503 {
                self.logger.warning("request refused: the store is unavailable", metadata: ["herald.operation": "\(operation)", "error": "\(error)"])
            } else if failure.status >= 500 {
                self.logger.error("request failed", metadata: ["herald.operation": "\(operation)", "error": "\(String(reflecting: error))"])
            }
            response = Reply.error(failure)
            if closing {
                response.headers[.connection] = "close"
                context.connection.close(after: Self.closingGrace)
            }
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

    private func respond(
        to request: Request, route: WireRoute, parameters: [String: String], connection: ClientConnection, body progress: BodyProgress
    ) async throws -> Response {
        let right = self.right(for: route)
        // `GET /v1/whoami` needs no right but a key: it describes the key presented.
        let caller = try self.authenticate(request, right: right, keyRequired: route == .whoAmI)
        if let right { try caller.require(right) }
        if route == .metrics { try caller.requireNamespace() }
        return try await self.limiter.run(for: caller.label) {
            let body = try await self.readBody(of: request, route: route)
            progress.markRead()
            return try await ClientConnection.$current.withValue(connection) {
                try await self.handlers.handle(route, parameters: parameters, body: body, caller: caller)
            }
        }
    }

    /// The right `route` needs here: its own, and for `GET /metrics` (which names every entity)
    /// `manage` unless the metrics are public.
    private func right(for route: WireRoute) -> AccessRight? {
        if route == .metrics && !self.metricsArePublic { return .manage }
        return route.right
    }

    /// The caller of `request`: anyone on open routes or without keys; otherwise the holder of a
    /// valid key from `Authorization: Bearer` or `X-Herald-Key` on routes that need a right, or a key.
    private func authenticate(_ request: Request, right: AccessRight?, keyRequired: Bool) throws(ServerError) -> Caller {
        guard let keys = self.keys, right != nil || keyRequired else { return .anyone }
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

    /// Whether `request` may carry a body longer than ``maxRequestBodySize``: one announced so,
    /// or a chunked one, whose length nothing announces.
    private func mayHaveLongBody(_ request: Request) -> Bool {
        if request.headers[.transferEncoding] != nil { return true }
        guard let length = request.headers[.contentLength] else { return false }
        return Int(length).map { $0 > self.maxRequestBodySize } ?? true
    }

    /// The body of a PUT, PATCH or POST, at most ``maxRequestBodySize`` bytes, read within
    /// ``requestReadTimeout``; nothing for other methods.
    private func readBody(of request: Request, route: WireRoute) async throws -> ByteBuffer {
        guard route.method == "PUT" || route.method == "POST" || route.method == "PATCH" else { return ByteBuffer() }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > self.maxRequestBodySize {
            throw ServerError.payloadTooLarge(limit: self.maxRequestBodySize)
        }
        let limit = self.maxRequestBodySize
        do {
            // The read timeout is the connection's RequestDeadlineHandler's: the body stream fails with
            // RequestReadTimedOut once it passes.
            return try await request.body.collect(upTo: limit)
        } catch is RequestReadTimedOut {
            throw ServerError.requestTimeout(self.requestReadTimeout)
        } catch is NIOTooManyBytesError {
            throw ServerError.payloadTooLarge(limit: limit)
        } catch is HTTPParserError {
            throw ServerError.malformedHTTP
        }
    }
}

/// Whether a request's body was read to its end, for the decision to close after an error.
final class BodyProgress: Sendable {
    private let read = Mutex(false)
    var isRead: Bool { self.read.withLock { $0 } }
    func markRead() { self.read.withLock { $0 = true } }
}
