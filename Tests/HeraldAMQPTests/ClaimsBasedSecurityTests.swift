import Foundation
import HeraldAMQP
import HeraldWire
import Testing

@testable import HeraldAMQPServer

/// `$cbs` put-token requests as the Python SDK sends them (its token for `sb://localhost:5672/orders`
/// signed with `c2VjcmV0LWtleQ==` by key `k1`, valid until 2033).
struct ClaimsBasedSecurityTests {
    static func request(token: String, operation: String = "put-token", type: String = "servicebus.windows.net:sastoken") -> AMQPMessage {
        var request = AMQPMessage(body: .value(.string(token)))
        var properties = AMQPMessage.Properties()
        properties.messageId = .uuid(UUID(uuidString: "00000000-0000-0000-0000-000000000007")!)
        request.properties = properties
        request.applicationProperties = [
            AMQPMapEntry(.string("operation"), .string(operation)), AMQPMapEntry(.string("type"), .string(type)),
            AMQPMapEntry(.string("name"), .string("sb://localhost:5672/orders")), AMQPMapEntry(.string("expiration"), .timestamp(2_000_000_000_000)),
        ]
        return request
    }

    static let now = Date(timeIntervalSince1970: 1_900_000_000)

    static func status(_ outcome: ClaimsBasedSecurity.Outcome) -> AMQPValue? {
        outcome.response.applicationProperties?.first { $0.key == .string("status-code") }?.value
    }

    @Test func aValidTokenIsAcceptedAndGrantsItsKeysRightsOnItsResource() throws {
        let credential = AMQPCredential(sharedAccessKey: Array("c2VjcmV0LWtleQ==".utf8), rights: [.send], entity: nil)
        let outcome = ClaimsBasedSecurity.putToken(Self.request(token: SharedAccessSignatureTests.entityToken), now: Self.now) {
            $0 == "k1" ? credential : nil
        }
        #expect(Self.status(outcome) == .int(202))
        #expect(outcome.response.properties?.correlationId == .uuid(UUID(uuidString: "00000000-0000-0000-0000-000000000007")!))
        let grant = try #require(outcome.grant)
        var grants = ClaimsGrants()
        grants.add(grant, now: Self.now)
        let orders = ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false)
        #expect(grants.allows(.send, on: orders, at: Self.now))
        #expect(!grants.allows(.listen, on: orders, at: Self.now), "the key holds send only")
        #expect(!grants.allows(.send, on: ServiceBusEntity(name: "payments", subscription: nil, isDeadLetter: false), at: Self.now))
        #expect(!grants.allows(.send, on: orders, at: Date(timeIntervalSince1970: 2_000_000_001)), "the token expired")
    }

    @Test func forgedExpiredOrUnknownTokensGetOneAnswer() {
        let credential = AMQPCredential(sharedAccessKey: Array("c2VjcmV0LWtleQ==".utf8), rights: [.manage], entity: nil)
        let forged = SharedAccessSignatureTests.entityToken.replacingOccurrences(of: "se=2000000000", with: "se=2100000000")
        for (token, now, lookup) in [
            (forged, Self.now, credential),
            (SharedAccessSignatureTests.entityToken, Date(timeIntervalSince1970: 2_000_000_000), credential),
            (SharedAccessSignatureTests.entityToken, Self.now, nil),
        ] as [(String, Date, AMQPCredential?)] {
            let outcome = ClaimsBasedSecurity.putToken(Self.request(token: token), now: now) { _ in lookup }
            #expect(Self.status(outcome) == .int(401))
            #expect(outcome.grant == nil)
        }
        let jwt = ClaimsBasedSecurity.putToken(Self.request(token: "eyJ…", type: "jwt"), now: Self.now) { _ in credential }
        #expect(Self.status(jwt) == .int(401))
        // The Python SDK labels its shared access signatures "jwt": the token's form decides.
        let labelled = ClaimsBasedSecurity.putToken(Self.request(token: SharedAccessSignatureTests.entityToken, type: "jwt"), now: Self.now) { _ in
            credential
        }
        #expect(Self.status(labelled) == .int(202))
        let other = ClaimsBasedSecurity.putToken(Self.request(token: "x", operation: "delete-token"), now: Self.now) { _ in credential }
        #expect(Self.status(other) == .int(400))
    }

    @Test func aScopedKeyAllowsOnlyItsEntity() {
        var grants = ClaimsGrants()
        grants.add(ClaimsGrants.Grant(path: "", rights: [.manage], keyEntity: "events", expiry: .distantFuture), now: Self.now)
        #expect(grants.allows(.listen, on: ServiceBusEntity(name: "events", subscription: "audit", isDeadLetter: false), at: Self.now))
        #expect(!grants.allows(.listen, on: ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false), at: Self.now))
    }

    @Test func aConnectionKeepsABoundedNumberOfGrants() {
        var grants = ClaimsGrants(maxGrants: 3)
        for index in 0..<10 {
            grants.add(ClaimsGrants.Grant(path: "q\(index)", rights: [.send], keyEntity: nil, expiry: .distantFuture), now: Self.now)
        }
        #expect(grants.grants.map(\.path) == ["q7", "q8", "q9"], "the oldest grants go first")
        grants.add(ClaimsGrants.Grant(path: "q8", rights: [.listen], keyEntity: nil, expiry: .distantFuture), now: Self.now)
        #expect(grants.grants.map(\.path) == ["q7", "q9", "q8"], "a renewed token replaces its path's grant")
        grants.add(ClaimsGrants.Grant(path: "old", rights: [.send], keyEntity: nil, expiry: Self.now), now: Self.now.addingTimeInterval(1))
        #expect(grants.grants.map(\.path) == ["q9", "q8", "old"], "the count stays at the cap")
    }

    @Test func aTokenForADeadLetterQueueCoversItAndAnEntitysTokenCoversItsDeadLetterQueue() {
        var grants = ClaimsGrants()
        grants.add(ClaimsGrants.Grant(path: "orders/$deadletterqueue", rights: [.listen], keyEntity: nil, expiry: .distantFuture), now: Self.now)
        #expect(grants.allows(.listen, on: ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: true), at: Self.now))
        #expect(!grants.allows(.listen, on: ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false), at: Self.now))
        grants.add(ClaimsGrants.Grant(path: "events/subscriptions/audit", rights: [.listen], keyEntity: nil, expiry: .distantFuture), now: Self.now)
        #expect(grants.allows(.listen, on: ServiceBusEntity(name: "events", subscription: "audit", isDeadLetter: true), at: Self.now))
    }
}
