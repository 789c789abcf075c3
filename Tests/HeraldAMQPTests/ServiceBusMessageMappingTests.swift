import Foundation
import HeraldAMQP
import HeraldCore
import Testing

@testable import HeraldAMQPServer

/// Service Bus messages over AMQP and Herald messages, both ways.
struct ServiceBusMessageMappingTests {
    @Test func aMessageTheSDKSendsIsStoredWithItsFields() throws {
        var amqp = AMQPMessage(body: .data([Array("{\"sku\":\"A1\"}".utf8)]))
        amqp.header = AMQPMessage.Header(durable: true, ttl: 90_000)
        var properties = AMQPMessage.Properties()
        properties.messageId = .string("order-42")
        properties.correlationId = .uuid(UUID(uuidString: "00112233-4455-6677-8899-AABBCCDDEEFF")!)
        properties.contentType = "application/json"
        properties.subject = "PlaceOrder"
        properties.replyTo = "replies"
        properties.groupId = "customer-7"
        properties.to = "billing"
        properties.replyToGroupId = "reply-session"
        amqp.properties = properties
        amqp.messageAnnotations = [
            AMQPMapEntry(.symbol("x-opt-scheduled-enqueue-time"), .timestamp(1_800_000_000_000)),
            AMQPMapEntry(.symbol("x-opt-sequence-number"), .long(99)), AMQPMapEntry(.symbol("x-opt-partition-key"), .string("p")),
            AMQPMapEntry(.symbol("custom"), .string("value")), AMQPMapEntry(.symbol("x-opt-custom"), .int(7)),
            AMQPMapEntry(.symbol("kind"), .symbol("order")),
        ]
        amqp.applicationProperties = [
            AMQPMapEntry(.string("tenant"), .string("acme")), AMQPMapEntry(.string("attempt"), .int(2)),
            AMQPMapEntry(.string("ratio"), .double(0.5)), AMQPMapEntry(.string("urgent"), .bool(true)),
            AMQPMapEntry(.string("small"), .ubyte(7)), AMQPMapEntry(.string("when"), .timestamp(5)), AMQPMapEntry(.string("nothing"), .null),
        ]
        let message = try ServiceBusMessageMapping.message(from: amqp)
        #expect(message.messageId == "order-42")
        #expect(message.body == Data("{\"sku\":\"A1\"}".utf8))
        #expect(message.correlationId == "00112233-4455-6677-8899-aabbccddeeff")
        #expect(message.contentType == "application/json" && message.subject == "PlaceOrder" && message.replyTo == "replies")
        #expect(message.sessionId == "customer-7")
        #expect(message.to == "billing" && message.replyToSessionId == "reply-session")
        #expect(
            message.annotations == ["custom": .string("value"), "x-opt-custom": .int(7), "kind": .string("order")],
            "the sender's own annotations are kept; those the broker sets or reads are not")
        #expect(message.timeToLive == .seconds(90))
        #expect(message.scheduledEnqueueTime == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(
            message.applicationProperties == [
                "tenant": .string("acme"), "attempt": .int(2), "ratio": .double(0.5), "urgent": .bool(true), "small": .int(7), "when": .int(5),
            ])
    }

    @Test func aDeliveryCarriesTheBrokersAnnotations() throws {
        let message = Message(
            messageId: "m-1", body: Data("hi".utf8), correlationId: "c", sessionId: "s", timeToLive: .seconds(60),
            applicationProperties: ["tenant": .string("acme"), "n": .int(3)], replyToSessionId: "reply-session", to: "billing",
            annotations: ["custom": .string("value"), "x-opt-sequence-number": .int(1)])
        let token = LockToken(entity: .queue("orders").deadLetter, sequenceNumber: 17, nonce: UUID())
        var received = ReceivedMessage(
            message: message, entity: .queue("orders").deadLetter, sequenceNumber: 17, enqueuedTime: Date(timeIntervalSince1970: 1_700_000_000),
            deliveryCount: 3, state: .active, lockToken: token, lockedUntil: Date(timeIntervalSince1970: 1_700_000_030))
        received.deadLetterReason = "MaxDeliveryCountExceeded"
        received.deadLetterDescription = "3 deliveries"
        let amqp = ServiceBusMessageMapping.amqpMessage(for: received)
        #expect(amqp.header?.deliveryCount == 2, "Service Bus counts the deliveries before this one")
        #expect(
            ServiceBusMessageMapping.amqpMessage(for: received, peeked: true).header?.deliveryCount == 3,
            "a peek is no delivery: it shows the deliveries so far, as a receive's count of earlier ones would")
        #expect(amqp.header?.ttl == 60_000)
        let annotations = Dictionary(uniqueKeysWithValues: (amqp.messageAnnotations ?? []).map { ($0.key, $0.value) })
        #expect(annotations[.symbol("x-opt-sequence-number")] == .long(17))
        #expect(annotations[.symbol("x-opt-enqueued-time")] == .timestamp(1_700_000_000_000))
        #expect(annotations[.symbol("x-opt-locked-until")] == .timestamp(1_700_000_030_000))
        #expect(annotations[.symbol("x-opt-message-state")] == .int(0))
        #expect(annotations[.symbol("x-opt-deadletter-source")] == .string("orders"))
        #expect(annotations[.symbol("custom")] == .string("value"), "the sender's own annotation")
        #expect(amqp.messageAnnotations?.count == 6, "a sender's annotation never shadows the broker's")
        #expect(amqp.properties?.to == "billing" && amqp.properties?.replyToGroupId == "reply-session")
        #expect(amqp.properties?.messageId == .string("m-1") && amqp.properties?.groupId == "s" && amqp.properties?.correlationId == .string("c"))
        let application = Dictionary(uniqueKeysWithValues: (amqp.applicationProperties ?? []).map { ($0.key, $0.value) })
        #expect(application[.string("tenant")] == .string("acme") && application[.string("n")] == .long(3))
        #expect(application[.string("DeadLetterReason")] == .string("MaxDeliveryCountExceeded"))
        #expect(application[.string("DeadLetterErrorDescription")] == .string("3 deliveries"))
        #expect(amqp.body == .data([Array("hi".utf8)]))
    }

    @Test func whatHeraldCannotStoreIsRefused() {
        #expect(throws: AMQPError.self) { try ServiceBusMessageMapping.message(from: AMQPMessage(body: .value(.string("x")))) }
        #expect(throws: AMQPError.self) { try ServiceBusMessageMapping.message(from: AMQPMessage(body: .data([[1], [2]]))) }
        var binary = AMQPMessage(body: .data([[1]]))
        binary.applicationProperties = [AMQPMapEntry(.string("blob"), .binary([1]))]
        #expect(throws: AMQPError.self) { try ServiceBusMessageMapping.message(from: binary) }
        var huge = AMQPMessage(body: .data([[1]]))
        huge.applicationProperties = [AMQPMapEntry(.string("n"), .ulong(.max))]
        #expect(throws: AMQPError.self) { try ServiceBusMessageMapping.message(from: huge) }
        var listAnnotation = AMQPMessage(body: .data([[1]]))
        listAnnotation.messageAnnotations = [AMQPMapEntry(.symbol("list"), .list([.int(1)]))]
        #expect(throws: AMQPError.self) { try ServiceBusMessageMapping.message(from: listAnnotation) }
        var numberKey = AMQPMessage(body: .data([[1]]))
        numberKey.messageAnnotations = [AMQPMapEntry(.ulong(1), .int(1))]
        #expect(throws: AMQPError.self) { try ServiceBusMessageMapping.message(from: numberKey) }
    }

    @Test func lockTokensTravelInDotNetGUIDOrder() throws {
        let token = try #require(UUID(uuidString: "00112233-4455-6677-8899-AABBCCDDEEFF"))
        let tag = ServiceBusMessageMapping.deliveryTag(token)
        #expect(tag == [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        #expect(ServiceBusMessageMapping.lockToken(deliveryTag: tag) == token)
        #expect(ServiceBusMessageMapping.lockToken(deliveryTag: [1, 2, 3]) == nil)
    }
}
