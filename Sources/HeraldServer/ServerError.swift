import HeraldCore
import HeraldWire

/// An error answer: its ``HeraldWire/WireError/Code`` (which gives the status), a message for
/// people, and extra headers. The HTTP layer raises its own refusals as these; ``from(_:)`` turns
/// any other error into one.
struct ServerError: Error, Sendable {
    let code: WireError.Code
    let message: String
    /// Extra response headers (`Allow` for 405, `WWW-Authenticate` for 401).
    var headers: [(String, String)] = []

    /// The HTTP status of the answer.
    var status: Int { self.code.status }

    static func unauthorized(_ message: String) -> ServerError {
        ServerError(code: .unauthorized, message: message, headers: [("WWW-Authenticate", "Bearer")])
    }

    static func forbidden(_ message: String) -> ServerError {
        ServerError(code: .forbidden, message: message)
    }

    static func notFound(_ path: String) -> ServerError {
        ServerError(code: .notFound, message: "no route \(path.prefix(200))")
    }

    static func methodNotAllowed(_ method: String, allowed: [String]) -> ServerError {
        ServerError(
            code: .methodNotAllowed, message: "\(method.prefix(20)) is not allowed here; use \(allowed.joined(separator: ", "))",
            headers: [("Allow", allowed.joined(separator: ", "))]
        )
    }

    static func payloadTooLarge(limit: Int) -> ServerError {
        ServerError(code: .payloadTooLarge, message: "the request body is larger than \(limit) bytes", headers: [("Connection", "close")])
    }

    static func requestTimeout(_ timeout: Duration) -> ServerError {
        ServerError(code: .requestTimeout, message: "the request was not read within \(timeout)", headers: [("Connection", "close")])
    }

    /// A body the HTTP parser refused: a bad chunk size, or a `Transfer-Encoding` it cannot read.
    static let malformedHTTP = ServerError(
        code: .broker(.invalidArgument), message: "the request is not valid HTTP/1.1 (a bad chunk or Transfer-Encoding)",
        headers: [("Connection", "close")]
    )

    /// Whether the connection closes after this answer (it says `Connection: close`) rather than
    /// read on: the rest of the request may be unbounded (a body too large, one sent too slowly,
    /// one the parser cannot follow).
    var closesConnection: Bool {
        self.headers.contains { $0.0 == "Connection" && $0.1 == "close" }
    }

    static func quotaExceeded(limit: Int) -> ServerError {
        ServerError(code: .quotaExceeded, message: "this key already has \(limit) requests in flight; retry later")
    }

    /// Any other error: 500 without details.
    static let internalError = ServerError(code: .internal, message: "internal server error")

    /// What a client is told of a failed store. The store's own message can carry what its
    /// database said (SQL, file paths, a driver's error dump); that goes to the server's log only.
    static let storeFailedMessage =
        "the store failed and stopped accepting work until the server is restarted; the server's log has the details"

    /// The answer for `error`: a ``HeraldCore/HeraldError`` keeps its code (with the status of
    /// ``HeraldWire/WireStatus``) and its message, except a `storeFailed` one, whose message gives
    /// no details; a ``ServerError`` is itself; anything else is a 500 `internal`.
    static func from(_ error: any Error) -> ServerError {
        switch error {
        case let error as ServerError: error
        case let error as HeraldError where error.code == .storeFailed: ServerError(code: .broker(.storeFailed), message: Self.storeFailedMessage)
        case let error as HeraldError: ServerError(code: .broker(error.code), message: error.message)
        default: .internalError
        }
    }
}
