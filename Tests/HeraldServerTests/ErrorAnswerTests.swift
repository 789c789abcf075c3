import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldWire
import Logging
import Testing

/// What an error answer tells a client: the store's words where they help, never the details of
/// a failed database.
@Suite("Error answers")
struct ErrorAnswerTests {
    /// A failed store's message can carry what its database said (here a driver's error dump, as
    /// `String(reflecting:)` writes it); the answer keeps the code and leaves the detail to the log.
    @Test func aFailedStoresDetailsStayInTheServer() async throws {
        let failure = HeraldError(.storeFailed, "database error during send, the broker stopped accepting work: \(String(reflecting: SecretDetailError()))")
        try await FailingBroker.serving(failure) { http in
            let answer = try await http.request(.post, "/v1/messages/counts", json: ["entity": ["queue": "orders"]])
            #expect(answer.status == 503 && answer.error == "storeFailed", "\(answer.text)")
            #expect(!answer.text.contains("hunter2") && !answer.text.contains("SecretDetailError"), "\(answer.text)")
        }
    }

    /// The server checks an abandon delay as the stores do, so the refusal reads the same over
    /// HTTP as from an embedded broker.
    @Test func aNegativeAbandonDelayIsRefusedInTheStoresWords() async throws {
        try await ServerHarness.withServer { server in
            try await server.broker.createQueue("orders", options: EntityOptions())
            _ = try await server.broker.send([Message(text: "x")], to: .queue("orders"))
            let received = try await server.broker.receive(from: .queue("orders"), maxCount: 1, maxWaitTime: .zero, mode: .peekLock)
            let token = try #require(received.first?.lockToken)
            let embedded = await #expect(throws: HeraldError.self) { try await server.broker.abandon(token, delay: .milliseconds(-1)) }
            try await server.withClient { http in
                let answer = try await http.request(.post, "/v1/locks/abandon", json: ["lockToken": WireLockToken.encode(token), "delayMs": -1])
                #expect(answer.status == 400 && answer.error == "invalidArgument", "\(answer.text)")
                #expect(try answer.decode(WireError.self).message == embedded?.message)
            }
        }
    }

    /// A lock token's wire form is its own format, not a log string: entity path, `#`, sequence
    /// number, `@`, nonce; and it reads back as the same token.
    @Test(arguments: [
        EntityPath.queue("orders"), .queue("orders").deadLetter, .subscription("audit", of: "events"),
        .subscription("audit", of: "events").deadLetter,
    ])
    func aLockTokenTravelsInItsWireFormat(_ entity: EntityPath) throws {
        let nonce = try #require(UUID(uuidString: "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"))
        let token = LockToken(entity: entity, sequenceNumber: 12, nonce: nonce)
        let path =
            switch (entity.kind, entity.isDeadLetter) {
            case (.subscription, false): "events/subscriptions/audit"
            case (.subscription, true): "events/subscriptions/audit/$deadletterqueue"
            case (_, false): "orders"
            case (_, true): "orders/$deadletterqueue"
            }
        #expect(WireLockToken.encode(token) == "\(path)#12@0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9")
        #expect(try WireLockToken.decode(WireLockToken.encode(token)) == token)
    }

    /// Every code has the status the server answers it with.
    @Test func everyCodeHasItsStatus() {
        for code in HeraldError.Code.all { #expect(WireError.Code.broker(code).status == WireStatus.status(for: code)) }
        let refusals = Dictionary(uniqueKeysWithValues: WireError.Code.refusals.map { ($0.description, $0.status) })
        #expect(
            refusals == [
                "unauthorized": 401, "forbidden": 403, "notFound": 404, "methodNotAllowed": 405, "requestTimeout": 408,
                "payloadTooLarge": 413, "quotaExceeded": 429, "internal": 500,
            ])
        #expect(Set(WireError.Code.all.map(\.description)).count == WireError.Code.all.count, "two codes share a name")
        #expect(WireError.Code.all.allSatisfy { WireError.Code($0.description) == $0 })
        #expect(WireError.Code("malformedRequest") == nil)
    }
}
