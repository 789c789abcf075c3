package import Foundation
package import HeraldCore

/// Strict JSON decoding for request bodies: malformed JSON, a wrong type, a missing field, an
/// unknown field and a `null` (an absent optional field is left out) all fail with
/// ``HeraldCore/HeraldError/Code/invalidArgument`` (HTTP 400), so a typo in an optional field is
/// an error rather than silently ignored, and the body means exactly what the OpenAPI document says.
package enum WireDecoding {
    /// Decodes `data` as `T`, rejecting fields `T` does not have and `null`s, in one pass
    /// (``StrictDecoder``).
    package static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(HeraldError) -> T {
        do {
            return try JSONDecoder().decode(StrictlyDecoded<T>.self, from: data).value
        } catch let error as RejectedField {
            throw HeraldError(.invalidArgument, error.message)
        } catch let error as DecodingError {
            throw HeraldError(.invalidArgument, "malformed request body: \(Self.explain(error))")
        } catch {
            throw HeraldError(.invalidArgument, "malformed request body")
        }
    }

    private static func explain(_ error: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "the body" : "'" + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case .typeMismatch(_, let context): return "wrong type at \(at(context.codingPath))"
        case .valueNotFound(_, let context): return "missing value at \(at(context.codingPath))"
        case .keyNotFound(let key, let context): return "missing field '\(key.stringValue)' at \(at(context.codingPath))"
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(at(context.codingPath))"
        @unknown default: return "invalid JSON"
        }
    }
}

/// `T`, decoded through a ``StrictDecoder``.
private struct StrictlyDecoded<T: Decodable>: Decodable {
    let value: T
    init(from decoder: any Decoder) throws { self.value = try T(from: StrictDecoder(decoder)) }
}

/// How each error code maps to an HTTP status, shared by the server (to answer) and the client
/// (to rebuild the ``HeraldCore/HeraldError``).
package enum WireStatus {
    /// The status for `code`.
    package static func status(for code: HeraldError.Code) -> Int {
        switch code {
        case .invalidName, .invalidOption, .invalidArgument, .identifierTooLong, .batchTooLarge,
            .sessionRequired, .sessionNotEnabled:
            400
        // `acceptSession` answers noSessionAvailable with 204 No Content; 404 only stands for it elsewhere.
        case .entityNotFound, .messageNotFound, .noSessionAvailable, .jobNotFound: 404
        case .entityAlreadyExists, .concurrencyConflict, .alreadyProcessed, .sessionCannotBeLocked: 409
        case .lockLost, .sessionLockLost: 410
        case .messageTooLarge, .propertyTooLarge, .propertiesTooLarge: 413
        // The store stopped (fail-stop after a storage error) or is closing: nothing is served until a
        // restart; or it cannot reach its database right now and recovers by itself.
        case .storeFailed, .storeClosed, .storeUnavailable: 503
        // The disk is (nearly) full: this operation was refused, the store still serves others.
        case .insufficientStorage: 507
        default: 500
        }
    }
}
