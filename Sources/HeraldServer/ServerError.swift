import HeraldCore
import HeraldWire

/// An error the HTTP layer answers itself, before or around the broker: its status, the `error`
/// code of the ``HeraldWire/WireError`` body, and a message for people.
struct ServerError: Error, Sendable {
    let status: Int
    let code: String
    let message: String
    /// Extra response headers (`Allow` for 405, `WWW-Authenticate` for 401).
    var headers: [(String, String)] = []

    static func unauthorized(_ message: String) -> ServerError {
        ServerError(status: 401, code: "unauthorized", message: message, headers: [("WWW-Authenticate", "Bearer")])
    }

    static func forbidden(_ message: String) -> ServerError {
        ServerError(status: 403, code: "forbidden", message: message)
    }

    static func notFound(_ path: String) -> ServerError {
        ServerError(status: 404, code: "notFound", message: "no route \(path.prefix(200))")
    }

    static func methodNotAllowed(_ method: String, allowed: [String]) -> ServerError {
        ServerError(
            status: 405, code: "methodNotAllowed", message: "\(method.prefix(20)) is not allowed here; use \(allowed.joined(separator: ", "))",
            headers: [("Allow", allowed.joined(separator: ", "))]
        )
    }

    static func payloadTooLarge(limit: Int) -> ServerError {
        ServerError(status: 413, code: "payloadTooLarge", message: "the request body is larger than \(limit) bytes", headers: [("Connection", "close")])
    }

    static func requestTimeout(_ timeout: Duration) -> ServerError {
        ServerError(status: 408, code: "requestTimeout", message: "the request was not read within \(timeout)", headers: [("Connection", "close")])
    }

    /// A body the HTTP parser refused: a bad chunk size, or a `Transfer-Encoding` it cannot read.
    static let malformedHTTP = ServerError(
        status: 400, code: "invalidArgument", message: "the request is not valid HTTP/1.1 (a bad chunk or Transfer-Encoding)",
        headers: [("Connection", "close")]
    )

    /// Whether the connection closes after this answer (it says `Connection: close`) rather than
    /// read on: the rest of the request may be unbounded (a body too large, one sent too slowly,
    /// one the parser cannot follow).
    var closesConnection: Bool {
        self.headers.contains { $0.0 == "Connection" && $0.1 == "close" }
    }

    static func quotaExceeded(limit: Int) -> ServerError {
        ServerError(status: 429, code: "quotaExceeded", message: "this key already has \(limit) requests in flight; retry later")
    }

    /// Any other error: 500 without details.
    static let internalError = ServerError(status: 500, code: "internal", message: "internal server error")

    /// The answer for `error`: a ``HeraldCore/HeraldError`` keeps its code with the status of
    /// ``HeraldWire/WireStatus``; a ``ServerError`` is itself; anything else is a 500 `internal`.
    static func from(_ error: any Error) -> ServerError {
        switch error {
        case let error as ServerError: error
        case let error as HeraldError: ServerError(status: WireStatus.status(for: error.code), code: error.code.description, message: error.message)
        default: .internalError
        }
    }
}
