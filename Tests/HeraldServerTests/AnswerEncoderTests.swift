import Foundation
import HeraldCore
import HeraldWire
import Testing

@testable import HeraldServer

/// The server writes its answers with ``AnswerEncoder`` rather than `JSONEncoder`: every answer
/// must decode to the value it encodes, and mean what `JSONEncoder`'s form means.
@Suite struct AnswerEncoderTests {
    static let received = ReceivedMessage(
        message: Message(
            messageId: "m-\"1\"\\/\n\t\u{01}é漢🙂", body: Data([0, 1, 2, 255]), contentType: "application/json", subject: "orders/placed",
            correlationId: "c", causationId: nil, sessionId: "s", replyTo: nil, timeToLive: .milliseconds(1500),
            scheduledEnqueueTime: Date(millisecondsSince1970: 1_800_000_000_123),
            applicationProperties: [
                "text": .string("a \"b\""), "count": .int(-42), "ratio": .double(0.1), "whole": .double(3), "tiny": .double(1e-7),
                "huge": .double(1.5e300), "flag": .bool(true),
            ],
            senderId: "sender", senderSequence: 7
        ),
        entity: .subscription("all", of: "events").deadLetter, sequenceNumber: .max, enqueuedTime: Date(millisecondsSince1970: 0),
        deliveryCount: 3, state: .deferred, lockToken: LockToken(entity: .queue("q"), sequenceNumber: 12, nonce: UUID()),
        lockedUntil: Date(millisecondsSince1970: 1_700_000_000_000), expiresAt: nil, deadLetterReason: "why", deadLetterDescription: ""
    )

    static func check<T: Codable & Equatable>(_ value: T) throws {
        let fast = try AnswerEncoder.encode(value)
        #expect(try JSONDecoder().decode(T.self, from: Data(fast)) == value, "\(String(decoding: fast, as: UTF8.self))")
        let reference = try JSONEncoder().encode(value)
        let ours = try JSONSerialization.jsonObject(with: Data(fast)) as? NSObject
        let theirs = try JSONSerialization.jsonObject(with: reference) as? NSObject
        #expect(ours == theirs, "\(String(decoding: fast, as: UTF8.self))")
    }

    @Test func messagesAnswersMeanWhatJSONEncodersDo() throws {
        try Self.check(MessagesResponse(messages: [WireReceivedMessage(Self.received), WireReceivedMessage(Self.received)]))
        try Self.check(MessagesResponse(messages: []))
        let minimal = ReceivedMessage(
            message: Message(messageId: "x", body: Data()), entity: .queue("q"), sequenceNumber: 1, enqueuedTime: Date(), deliveryCount: 1)
        try Self.check(MessagesResponse(messages: [WireReceivedMessage(minimal)]))
    }

    @Test func otherAnswersToo() throws {
        try Self.check(
            SendResponse(receipts: [
                WireReceipt(SendReceipt(sequenceNumber: 1, isDuplicate: false)), WireReceipt(SendReceipt(sequenceNumber: nil, isDuplicate: true)),
            ]))
        try Self.check(WireCounts(EntityCounts(active: 1, locked: 2, scheduled: 3, deferred: 4, deadLettered: 5)))
        try Self.check(
            WireEntityList(items: [
                WireEntityInfo(
                    kind: "queue", path: "orders", entity: WireEntity(.queue("orders")), options: WireOptions(EntityOptions()),
                    counts: WireCounts(EntityCounts())),
                WireEntityInfo(
                    kind: "subscription", path: "events/subscriptions/big", entity: WireEntity(.subscription("big", of: "events")),
                    options: WireOptions(EntityOptions(duplicateDetectionWindow: .seconds(30))),
                    filter: WireFilter(SubscriptionFilter(subject: "s", properties: ["size": .double(2.5), "n": .int(3)]))),
            ]))
        try Self.check(WireEntityList(items: []))
        try Self.check(HealthResponse(status: "ok", store: "sqlite"))
    }

    @Test func whatItDoesNotWriteIsLeftToJSONEncoder() throws {
        #expect(throws: AnswerEncoder.Unsupported.self) { try AnswerEncoder.encode(["x": Double.nan]) }
        #expect(throws: AnswerEncoder.Unsupported.self) { try AnswerEncoder.encode(["x": Data([1])]) }
        #expect(throws: AnswerEncoder.Unsupported.self) { try AnswerEncoder.encode(["x": Date()]) }
        #expect(try Reply.encoded(["x": Data([1])]) == Array(#"{"x":"AQ=="}"#.utf8))
    }
}
