import Crypto
package import Foundation

/// A Service Bus shared access signature, as the SDKs put it on `$cbs`:
/// `SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>&skn=<key name>`, each value
/// URL-encoded. The signature is HMAC-SHA256, keyed with the UTF-8 bytes of the connection
/// string's `SharedAccessKey`, of the URL-encoded resource, a newline and the expiry (Unix seconds).
package struct SharedAccessSignature: Hashable, Sendable {
    /// The resource the token grants: `sb://host[:port]/` for the namespace, `sb://host/orders`
    /// for an entity and what is below it.
    package let resource: String
    /// The name of the key that signed it (Herald: the access key's id).
    package let keyName: String
    /// When it stops being valid, in Unix seconds.
    package let expiry: Int64
    private let encodedResource: String
    private let signature: [UInt8]

    /// Parses a token; `nil` when it is not a shared access signature.
    package init?(parsing token: String) {
        let prefix = "SharedAccessSignature "
        guard token.hasPrefix(prefix) else { return nil }
        var fields: [String: String] = [:]
        var encoded: [String: String] = [:]
        for pair in token.dropFirst(prefix.count).split(separator: "&") {
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            let key = String(pair[..<equals])
            let value = String(pair[pair.index(after: equals)...])
            guard let decoded = Self.formDecoded(value) else { return nil }
            fields[key] = decoded
            encoded[key] = value
        }
        guard let resource = fields["sr"], let encodedResource = encoded["sr"], let signature = fields["sig"].flatMap({ Data(base64Encoded: $0) }),
            let expiry = fields["se"].flatMap({ Int64($0) }), let keyName = fields["skn"]
        else { return nil }
        self.resource = resource
        self.encodedResource = encodedResource
        self.signature = Array(signature)
        self.expiry = expiry
        self.keyName = keyName
    }

    /// Whether `key` (the UTF-8 bytes of the shared access key) signed this token, compared in
    /// constant time.
    package func isSigned(with key: [UInt8]) -> Bool {
        let signed = Array("\(self.encodedResource)\n\(self.expiry)".utf8)
        return HMAC<SHA256>.isValidAuthenticationCode(self.signature, authenticating: signed, using: SymmetricKey(data: key))
    }

    /// Whether the token is still valid at `now`.
    package func isValid(at now: Date) -> Bool {
        Double(self.expiry) > now.timeIntervalSince1970
    }

    /// The entity path the resource grants, after the host: `""` for the whole namespace, `orders`,
    /// `events/subscriptions/audit` (lowercased `Subscriptions`); `nil` when it is no `sb://`,
    /// `amqp(s)://` or (the administration API's) `http(s)://` URI.
    package var grantedPath: String? {
        var rest = Substring(self.resource)
        for scheme in ["sb://", "amqps://", "amqp://", "https://", "http://"] where rest.lowercased().hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            guard let slash = rest.firstIndex(of: "/") else { return "" }
            var path = rest[rest.index(after: slash)...]
            while path.hasSuffix("/") { path = path.dropLast() }
            return path.split(separator: "/").map { segment in
                let lowercased = segment.lowercased()
                return ["subscriptions", "$deadletterqueue", "$management"].contains(lowercased) ? lowercased : String(segment)
            }.joined(separator: "/")
        }
        return nil
    }

    /// Decodes `application/x-www-form-urlencoded` text: `%XX` escapes and `+` for a space.
    private static func formDecoded(_ text: String) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
