public import Foundation
import HeraldCore
import HeraldWire

extension HeraldClient {
    /// The error an answer with a non-success `status` and `body` stands for.
    ///
    /// A Herald error answer (`{"error": code, "message": text}`) is read with
    /// `WireError.Code` (of HeraldWire), the list the server answers from: a broker code becomes the
    /// ``/HeraldCore/HeraldError`` with that code, so callers see what an embedded broker throws;
    /// `unauthorized` and `forbidden` become ``HeraldClientError/Code/unauthorized`` and
    /// ``HeraldClientError/Code/forbidden``; the other refusals and `internal` become
    /// ``HeraldClientError/Code/rejected``. A code this client does not know (a newer server's)
    /// becomes ``/HeraldCore/HeraldError/Code/storeFailed`` naming it, and an answer that is not a
    /// Herald error answer ``HeraldClientError/Code/http``.
    public static func error(status: Int, body: Data) -> any Error {
        guard let answer = try? JSONDecoder().decode(WireError.self, from: body) else {
            return HeraldClientError.http(status: status, body: String(decoding: body.prefix(500), as: UTF8.self))
        }
        guard let code = answer.code else {
            return HeraldError(.storeFailed, "the server answered '\(answer.error.prefix(100))': \(answer.message)")
        }
        if let brokerCode = code.brokerCode { return HeraldError(brokerCode, answer.message) }
        switch code {
        case .unauthorized: return HeraldClientError.unauthorized(answer.message)
        case .forbidden: return HeraldClientError.forbidden(answer.message)
        default: return HeraldClientError.rejected(status: status, error: answer.error, message: answer.message)
        }
    }
}
