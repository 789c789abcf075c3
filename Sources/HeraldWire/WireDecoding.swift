package import Foundation
package import HeraldCore

/// Strict JSON decoding for request bodies: malformed JSON, a wrong type, a missing field, an
/// unknown field and a `null` (an absent optional field is left out) all fail with
/// ``HeraldCore/HeraldError/Code/invalidArgument`` (HTTP 400), so a typo in an optional field is
/// an error rather than silently ignored, and the body means exactly what the OpenAPI document says.
package enum WireDecoding {
    /// Decodes `data` as `T`, rejecting fields `T` does not have.
    package static func decode<T: Codable>(_ type: T.Type, from data: Data) throws(HeraldError) -> T {
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw HeraldError(.invalidArgument, "malformed request body: \(Self.explain(error))")
        } catch {
            throw HeraldError(.invalidArgument, "malformed request body")
        }
        // A field the type does not know does not survive a round trip through it.
        guard let original = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let reencoded = try? JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
        else {
            throw HeraldError(.invalidArgument, "malformed request body")
        }
        if let problem = Self.rejectedField(original, known: reencoded, path: "") {
            throw HeraldError(.invalidArgument, problem)
        }
        return value
    }

    /// Why the first field of `original` that `known` lacks is rejected: unknown, or `null`.
    private static func rejectedField(_ original: Any, known: Any, path: String) -> String? {
        if let object = original as? [String: Any] {
            let knownObject = known as? [String: Any] ?? [:]
            for key in object.keys.sorted() {
                guard let value = object[key] else { continue }
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                guard let knownValue = knownObject[key] else {
                    return value is NSNull
                        ? "field '\(childPath)' is null: leave an absent field out"
                        : "unknown field '\(childPath)' in the request body"
                }
                if let found = Self.rejectedField(value, known: knownValue, path: childPath) { return found }
            }
        } else if let array = original as? [Any], let knownArray = known as? [Any] {
            for (index, element) in array.enumerated() where index < knownArray.count {
                if let found = Self.rejectedField(element, known: knownArray[index], path: "\(path)[\(index)]") { return found }
            }
        }
        return nil
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
        case .entityNotFound, .messageNotFound, .noSessionAvailable: 404
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
