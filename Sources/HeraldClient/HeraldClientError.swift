import AsyncHTTPClient
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the HTTP exchange itself, as opposed to a broker error.
///
/// Broker errors come back as ``/HeraldCore/HeraldError`` with the same ``/HeraldCore/HeraldError/Code``
/// an embedded broker would throw; ``HeraldClient`` throws this type only for what an embedded
/// broker cannot fail with: a rejected key, an unreachable server, an answer that is not Herald's.
/// React to its ``code`` (`catch let error as HeraldClientError where error.code == .unauthorized`).
public struct HeraldClientError: Error, CustomStringConvertible {
    /// What went wrong, as a closed set of codes that may grow.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case unauthorized
            case forbidden
            case rejected
            case http
            case malformedResponse
            case invalidURL
            case transport
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// The server rejected the key, or none was given (HTTP 401).
        public static let unauthorized = Code(.unauthorized)
        /// The key lacks the right the operation needs (HTTP 403).
        public static let forbidden = Code(.forbidden)
        /// The server refused the request for a reason that is not a broker error (`notFound`,
        /// `methodNotAllowed`, `requestTimeout`, `payloadTooLarge`, `quotaExceeded`), or failed
        /// with an unexpected error (`internal`); ``HeraldClientError/serverCode`` names which.
        public static let rejected = Code(.rejected)
        /// The server answered with a status and a body that are not a Herald error answer (a
        /// proxy's error page, for example).
        public static let http = Code(.http)
        /// The answer could not be read as the operation's response.
        public static let malformedResponse = Code(.malformedResponse)
        /// The base URL cannot address a server.
        public static let invalidURL = Code(.invalidURL)
        /// The request did not complete: the connection failed, was closed, or timed out.
        public static let transport = Code(.transport)

        /// The code as a stable string, for logs.
        public var description: String { self.base.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// The detail: the server's message (``Code/unauthorized``, ``Code/forbidden``,
    /// ``Code/rejected``), at most the first 500 characters of the body (``Code/http``), what could
    /// not be read (``Code/malformedResponse``), the URL (``Code/invalidURL``), or why the exchange
    /// failed, in the user's terms (``Code/transport``).
    public let message: String
    /// The HTTP status of the answer; `nil` when there was none to speak of (``Code/malformedResponse``,
    /// ``Code/invalidURL``, ``Code/transport``).
    public let status: Int?
    /// The `error` code the server answered with, for ``Code/rejected`` (for example `notFound`).
    public let serverCode: String?
    /// The HTTP client's error, for ``Code/transport``.
    public let underlyingError: (any Error)?

    private init(_ code: Code, _ message: String, status: Int? = nil, serverCode: String? = nil, underlyingError: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.serverCode = serverCode
        self.underlyingError = underlyingError
    }

    /// The server rejected the key, or none was given (HTTP 401); `message` is the server's.
    public static func unauthorized(_ message: String) -> HeraldClientError {
        HeraldClientError(.unauthorized, message, status: 401)
    }

    /// The key lacks the right the operation needs (HTTP 403); `message` is the server's.
    public static func forbidden(_ message: String) -> HeraldClientError {
        HeraldClientError(.forbidden, message, status: 403)
    }

    /// The server refused the request with `status` and the code `error`, which is not a broker error.
    public static func rejected(status: Int, error: String, message: String) -> HeraldClientError {
        HeraldClientError(.rejected, message, status: status, serverCode: error)
    }

    /// The server answered `status` with a body that is not a Herald error answer; `body` holds at
    /// most its first 500 characters.
    public static func http(status: Int, body: String) -> HeraldClientError {
        HeraldClientError(.http, body, status: status)
    }

    /// The answer could not be read as the operation's response, for the reason `message` gives.
    public static func malformedResponse(_ message: String) -> HeraldClientError {
        HeraldClientError(.malformedResponse, message)
    }

    /// `url` cannot address a server.
    public static func invalidURL(_ url: String) -> HeraldClientError {
        HeraldClientError(.invalidURL, url)
    }

    /// The request to `server` (the client's base URL) did not complete; `error` is the HTTP client's.
    public static func transport(server: String, _ error: any Error) -> HeraldClientError {
        HeraldClientError(.transport, Self.describeTransportFailure(error, server: server), underlyingError: error)
    }

    public var description: String {
        switch self.code {
        case .unauthorized: "unauthorized: \(self.message)"
        case .forbidden: "forbidden: \(self.message)"
        case .rejected: "\(self.serverCode ?? "rejected") (HTTP \(self.status ?? 0)): \(self.message)"
        case .http: "HTTP \(self.status ?? 0)" + (self.message.isEmpty ? "" : ": \(self.message)")
        case .malformedResponse: "malformed response: \(self.message)"
        case .invalidURL: Self.describeInvalidURL(self.message)
        default: self.message
        }
    }

    /// A short, stable name, for logs and the command line: the code, or for ``Code/rejected`` the
    /// server's code (`notFound`, `quotaExceeded`, …).
    public var name: String {
        self.code == .rejected ? (self.serverCode ?? self.code.description) : self.code.description
    }

    /// Says what is wrong with `url`, suggesting `http://` when the scheme is missing.
    private static func describeInvalidURL(_ url: String) -> String {
        if !url.contains("://"), let suggestion = URL(string: "http://" + url), suggestion.host != nil {
            return "invalid server URL '\(url)'; did you mean \(suggestion.absoluteString)?"
        }
        return "invalid server URL '\(url)': use http:// or https:// and a host"
    }

    /// Says why the exchange with `server` failed in the user's terms, not the HTTP stack's.
    private static func describeTransportFailure(_ error: any Error, server: String) -> String {
        if let code = (error as? IOError)?.errnoCode {
            switch code {
            case ECONNREFUSED: return "cannot reach the server at \(server): connection refused (is herald serve running?)"
            case ECONNRESET, EPIPE: return "the server at \(server) reset the connection"
            default: return "cannot reach the server at \(server): \(String(cString: strerror(code)).lowercased())"
            }
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "cannot reach the server at \(server): the connection timed out"
            case .deadlineExceeded, .readTimeout: return "the server at \(server) did not answer in time"
            case .remoteConnectionClosed: return "the server at \(server) closed the connection"
            default: break
            }
        }
        return "cannot talk to the server at \(server): \(error)"
    }
}
