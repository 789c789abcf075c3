import Foundation
import Testing

@testable import HeraldAMQPServer

/// Shared access signatures as the Service Bus SDK makes them (the tokens below are the Python
/// SDK's `generate_sas_token` output).
struct SharedAccessSignatureTests {
    static let entityToken =
        "SharedAccessSignature sr=sb%3A%2F%2Flocalhost%3A5672%2Forders&sig=qEfpY6KvKF0JLNRhr67yCakKIE5y6QATwlKAAMlMEdw%3D&se=2000000000&skn=k1"
    static let namespaceToken =
        "SharedAccessSignature sr=sb%3A%2F%2Flocalhost%3A5672%2F&sig=OD06QRYXkM1HHrT0jFYDZRTroy7SzM0UXgg%2FDfwyUfg%3D&se=1700000000&skn=root%2Bkey"

    @Test func theSDKsTokensVerifyWithTheirKey() throws {
        let token = try #require(SharedAccessSignature(parsing: Self.entityToken))
        #expect(token.resource == "sb://localhost:5672/orders" && token.keyName == "k1" && token.expiry == 2_000_000_000)
        #expect(token.isSigned(with: Array("c2VjcmV0LWtleQ==".utf8)))
        #expect(!token.isSigned(with: Array("c2VjcmV0LWtleQ=!".utf8)))
        #expect(token.isValid(at: Date(timeIntervalSince1970: 1_999_999_999)))
        #expect(!token.isValid(at: Date(timeIntervalSince1970: 2_000_000_000)))
        #expect(token.grantedPath == "orders")

        let namespace = try #require(SharedAccessSignature(parsing: Self.namespaceToken))
        #expect(namespace.isSigned(with: Array("abc/+=".utf8)))
        #expect(namespace.keyName == "root+key")
        #expect(namespace.grantedPath == "")
    }

    @Test func forgedOrMalformedTokensAreRefused() throws {
        // The signature of another resource: the same signature over a changed `sr` fails.
        let forged = Self.entityToken.replacingOccurrences(of: "orders", with: "payments")
        #expect(try #require(SharedAccessSignature(parsing: forged)).isSigned(with: Array("c2VjcmV0LWtleQ==".utf8)) == false)
        let extended = Self.entityToken.replacingOccurrences(of: "se=2000000000", with: "se=2100000000")
        #expect(try #require(SharedAccessSignature(parsing: extended)).isSigned(with: Array("c2VjcmV0LWtleQ==".utf8)) == false)
        for text in [
            "", "Bearer abc", "SharedAccessSignature sr=a&sig=%ZZ&se=1&skn=k", "SharedAccessSignature sr=a&se=1&skn=k",
            "SharedAccessSignature sr=a&sig=AA==&se=x&skn=k",
        ] {
            #expect(SharedAccessSignature(parsing: text) == nil, "\(text)")
        }
    }

    @Test func theGrantedPathOfSubscriptions() throws {
        let token = try #require(
            SharedAccessSignature(parsing: "SharedAccessSignature sr=sb%3A%2F%2Fh%2Fevents%2FSubscriptions%2Faudit%2F&sig=AA%3D%3D&se=1&skn=k"))
        #expect(token.grantedPath == "events/subscriptions/audit")
    }
}
