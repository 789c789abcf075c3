public import Foundation
import HeraldCore
import HeraldWire

extension HeraldClient {
    /// The error names the server uses for refusals that are not broker errors (see
    /// ``HeraldWire/WireError``); every other name is a ``HeraldCore/HeraldError/Code``.
    static let protocolErrorNames: Set<String> = [
        "unauthorized", "forbidden", "notFound", "methodNotAllowed", "malformedRequest", "payloadTooLarge", "quotaExceeded",
    ]

    /// The error an answer with a non-success `status` and `body` stands for.
    ///
    /// A Herald error answer (`{"error": code, "message": text}`) naming a broker code becomes the
    /// ``HeraldCore/HeraldError`` with that code, so callers see what an embedded broker throws; a
    /// code this client does not know becomes ``HeraldCore/HeraldError/Code/storeFailed``.
    /// `unauthorized` and `forbidden` become ``HeraldClientError/unauthorized(_:)`` and
    /// ``HeraldClientError/forbidden(_:)``, the other refusals ``HeraldClientError/rejected(status:error:message:)``,
    /// and anything else ``HeraldClientError/http(status:body:)``.
    public static func error(status: Int, body: Data) -> any Error {
        guard let answer = try? JSONDecoder().decode(WireError.self, from: body) else {
            return HeraldClientError.http(status: status, body: String(decoding: body.prefix(500), as: UTF8.self))
        }
        switch answer.error {
        case "unauthorized": return HeraldClientError.unauthorized(answer.message)
        case "forbidden": return HeraldClientError.forbidden(answer.message)
        case let name where Self.protocolErrorNames.contains(name):
            return HeraldClientError.rejected(status: status, error: name, message: answer.message)
        case let name:
            if let code = HeraldError.Code(name) { return HeraldError(code, answer.message) }
            return HeraldError(.storeFailed, "the server answered '\(name.prefix(100))': \(answer.message)")
        }
    }
}
