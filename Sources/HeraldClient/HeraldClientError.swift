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
/// Broker errors come back as ``HeraldCore/HeraldError`` with the same ``HeraldCore/HeraldError/Code``
/// an embedded broker would throw; ``HeraldClient`` throws this type only for what an embedded
/// broker cannot fail with: a rejected key, an unreachable server, an answer that is not Herald's.
public enum HeraldClientError: Error, CustomStringConvertible {
    /// The server rejected the key, or none was given (HTTP 401).
    case unauthorized(String)
    /// The key lacks the right the operation needs (HTTP 403).
    case forbidden(String)
    /// The server refused the request for a reason that is not a broker error (`notFound`,
    /// `methodNotAllowed`, `malformedRequest`, `payloadTooLarge`, `quotaExceeded`, …).
    case rejected(status: Int, error: String, message: String)
    /// The server answered with a status and a body that are not a Herald error answer (a proxy's
    /// error page, for example); `body` holds at most its first 500 characters.
    case http(status: Int, body: String)
    /// The answer could not be read as the operation's response.
    case malformedResponse(String)
    /// The base URL cannot address a server.
    case invalidURL(String)
    /// The request to `server` (the client's base URL) did not complete: the connection failed,
    /// was closed, or timed out; the error is the HTTP client's.
    case transport(server: String, any Error)

    public var description: String {
        switch self {
        case .unauthorized(let message): "unauthorized: \(message)"
        case .forbidden(let message): "forbidden: \(message)"
        case .rejected(let status, let error, let message): "\(error) (HTTP \(status)): \(message)"
        case .http(let status, let body): "HTTP \(status)" + (body.isEmpty ? "" : ": \(body)")
        case .malformedResponse(let message): "malformed response: \(message)"
        case .invalidURL(let url): Self.describeInvalidURL(url)
        case .transport(let server, let error): Self.describeTransportFailure(error, server: server)
        }
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

    /// A short, stable name of the case, for logs and the command line (`unauthorized`, `transport`, …).
    public var name: String {
        switch self {
        case .unauthorized: "unauthorized"
        case .forbidden: "forbidden"
        case .rejected(_, let error, _): error
        case .http: "http"
        case .malformedResponse: "malformedResponse"
        case .invalidURL: "invalidURL"
        case .transport: "transport"
        }
    }
}
