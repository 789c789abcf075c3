import Foundation
import HeraldCore
import HeraldWire
import Testing

@testable import HeraldServer

/// The receive and send answers are written straight from the broker's values: byte for byte
/// what the encoder writes for the wire types.
@Suite struct DirectAnswerTests {
    static func reference(_ messages: [ReceivedMessage]) throws -> [UInt8] {
        try AnswerEncoder.encode(MessagesResponse(messages: messages.map(WireReceivedMessage.init)))
    }

    @Test func aMessageWithEveryFieldIsWrittenAsTheEncoderWritesIt() throws {
        let received = AnswerEncoderTests.received
        let direct = try #require(DirectAnswer.messages([received]))
        #expect(direct == (try Self.reference([received])), "\(String(decoding: direct, as: UTF8.self))")
        #expect(DirectAnswer.messages([]) == (try Self.reference([])))
    }

    @Test func generatedMessagesAreWrittenAsTheEncoderWritesThem() throws {
        var random = SystemRandomNumberGenerator()
        let texts = ["", "plain", "quote \" backslash \\ slash /", "line\nfeed\ttab\u{01}\u{1F}", "é漢🙂", "\u{7F}"]
        func text() -> String { texts.randomElement(using: &random)! }
        func maybe<T>(_ value: @autoclosure () -> T) -> T? { Bool.random(using: &random) ? value() : nil }
        let entities: [EntityPath] = [.queue("q"), .topic("t"), .subscription("s", of: "t"), .queue("q").deadLetter, .subscription("s", of: "t").deadLetter]
        for _ in 0..<300 {
            var properties: [String: PropertyValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                let value: PropertyValue =
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0: .string(text())
                    case 1: .int(Int64.random(in: .min ... .max, using: &random))
                    case 2: .double(Double.random(in: -1e300...1e300, using: &random))
                    default: .bool(Bool.random(using: &random))
                    }
                properties[text() + String(Int.random(in: 0..<100, using: &random))] = value
            }
            let message = Message(
                messageId: text(), body: Data((0..<Int.random(in: 0..<300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }),
                contentType: maybe(text()), subject: maybe(text()), correlationId: maybe(text()), causationId: maybe(text()),
                sessionId: maybe(text()), replyTo: maybe(text()), timeToLive: maybe(.milliseconds(Int64.random(in: 1...Int64.max / 2, using: &random))),
                scheduledEnqueueTime: maybe(Date(millisecondsSince1970: Int64.random(in: 0...4_000_000_000_000, using: &random))),
                applicationProperties: properties, senderId: maybe(text()), senderSequence: maybe(Int64.random(in: .min ... .max, using: &random)),
                replyToSessionId: maybe(text()), to: maybe(text()), annotations: Bool.random(using: &random) ? properties : [:]
            )
            let entity = entities.randomElement(using: &random)!
            let received = ReceivedMessage(
                message: message, entity: entity, sequenceNumber: Int64.random(in: 0 ... .max, using: &random),
                enqueuedTime: Date(millisecondsSince1970: Int64.random(in: 0...4_000_000_000_000, using: &random)),
                deliveryCount: Int.random(in: 0...1000, using: &random), state: [.active, .deferred, .scheduled].randomElement(using: &random)!,
                lockToken: maybe(LockToken(entity: entity, sequenceNumber: 5, nonce: UUID())),
                lockedUntil: maybe(Date(millisecondsSince1970: 1_700_000_000_000)), expiresAt: maybe(Date(millisecondsSince1970: 1)),
                deadLetterReason: maybe(text()), deadLetterDescription: maybe(text())
            )
            let direct = try #require(DirectAnswer.messages([received, received]))
            #expect(direct == (try Self.reference([received, received])), "\(String(decoding: direct, as: UTF8.self))")
        }
    }

    /// Lock tokens are written from a path and a nonce made once per answer: each token is still
    /// its own, whatever the entities and nonces before it.
    @Test func lockTokensOfManyEntitiesAndNoncesAreEachWrittenAsTheEncoderWritesThem() throws {
        let (first, second) = (UUID(), UUID())
        let tokens = [
            (EntityPath.queue("orders"), first), (.queue("orders"), first), (.queue("orders").deadLetter, first),
            (.subscription("s", of: "t"), first), (.subscription("s", of: "t"), second), (.queue("orders"), second),
            (.queue("quote\"and\\slash"), second), (.queue("quote\"and\\slash"), second), (.queue("orders"), first),
        ]
        let messages = tokens.enumerated().map { index, token in
            ReceivedMessage(
                message: Message(text: "m"), entity: token.0, sequenceNumber: Int64(index), enqueuedTime: Date(millisecondsSince1970: 0),
                deliveryCount: 1, state: .active, lockToken: LockToken(entity: token.0, sequenceNumber: Int64(index) * 1000, nonce: token.1),
                lockedUntil: nil, expiresAt: nil, deadLetterReason: nil, deadLetterDescription: nil
            )
        }
        let direct = try #require(DirectAnswer.messages(messages))
        #expect(direct == (try Self.reference(messages)), "\(String(decoding: direct, as: UTF8.self))")
        // Valid names need no escaping; the others only show that the path is escaped as a whole.
        let valid = messages.filter { $0.entity.name != "quote\"and\\slash" }
        let decoded = try WireDecoding.decode(MessagesResponse.self, from: Data(try #require(DirectAnswer.messages(valid))))
        #expect(try WireLockToken.decode(decoded.messages.compactMap(\.lockToken)) == valid.compactMap(\.lockToken))
    }

    @Test func aDoubleJSONCannotSpellIsLeftToTheEncoders() {
        var received = AnswerEncoderTests.received
        received.message.applicationProperties["bad"] = .double(.infinity)
        #expect(DirectAnswer.messages([received]) == nil)
    }

    @Test func receiptsAreWrittenAsTheEncoderWritesThem() throws {
        let receipts = [
            SendReceipt(sequenceNumber: 1, isDuplicate: false), SendReceipt(sequenceNumber: .max, isDuplicate: true),
            SendReceipt(sequenceNumber: nil, isDuplicate: true),
        ]
        #expect(DirectAnswer.receipts(receipts) == (try AnswerEncoder.encode(SendResponse(receipts: receipts.map(WireReceipt.init)))))
        #expect(DirectAnswer.receipts([]) == (try AnswerEncoder.encode(SendResponse(receipts: []))))
    }
}
