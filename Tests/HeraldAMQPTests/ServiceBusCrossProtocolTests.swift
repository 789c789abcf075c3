import Foundation
import HeraldAMQP
import HeraldCore
import HeraldSQLite
import NIOCore
import Testing

/// One broker, two faces: what the Swift API sends arrives over AMQP with its fields and the
/// broker's annotations, and what an AMQP client sends arrives through the Swift API intact.
@Suite(.timeLimit(.minutes(1)))
struct ServiceBusCrossProtocolTests {
    @Test func aMessageSentThroughTheSwiftAPIArrivesOverAMQPWithItsFieldsAndAnnotations() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("orders")
            var message = Message(
                messageId: "order-1", body: Data("{\"id\":1}".utf8), contentType: "application/json", subject: "OrderPlaced", correlationId: "c-1",
                replyTo: "replies", timeToLive: .seconds(3600), applicationProperties: ["tenant": .string("acme"), "attempt": .int(2), "vip": .bool(true)])
            message.applicationProperties["ratio"] = .double(0.5)
            message.to = "billing"
            message.replyToSessionId = "reply-session"
            message.annotations = ["custom": .string("value")]
            let sequenceNumber = try #require(try await broker.send(message, to: .queue("orders")).sequenceNumber)
            try await ServiceBusSendingTests.serving(broker, verifyingWith: nil) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    _ = try #require(try await ServiceBusHostileClientTests.receiver(client, address: "orders", credit: 1))
                    var delivered: AMQPMessage?
                    while delivered == nil, let frame = try await client.readFrame() {
                        guard let body = frame.body, case .transfer = try AMQPPerformative(body) else { continue }
                        delivered = try AMQPMessage(from: frame.payload)
                    }
                    let amqp = try #require(delivered)
                    #expect(amqp.body == .data([Array("{\"id\":1}".utf8)]))
                    #expect(amqp.properties?.messageId == .string("order-1"))
                    #expect(amqp.properties?.correlationId == .string("c-1"))
                    #expect(amqp.properties?.contentType == "application/json")
                    #expect(amqp.properties?.subject == "OrderPlaced")
                    #expect(amqp.properties?.replyTo == "replies")
                    #expect(amqp.properties?.to == "billing" && amqp.properties?.replyToGroupId == "reply-session")
                    #expect(amqp.header?.ttl == 3_600_000)
                    #expect(amqp.header?.deliveryCount == 0, "Service Bus counts earlier deliveries")
                    let annotations = Dictionary(uniqueKeysWithValues: (amqp.messageAnnotations ?? []).compactMap { e in e.key.text.map { ($0, e.value) } })
                    #expect(annotations["x-opt-sequence-number"] == .long(sequenceNumber))
                    #expect(annotations["x-opt-locked-until"] != nil && annotations["x-opt-enqueued-time"] != nil)
                    #expect(annotations["custom"] == .string("value"))
                    let application = Dictionary(
                        uniqueKeysWithValues: (amqp.applicationProperties ?? []).compactMap { e in e.key.text.map { ($0, e.value) } })
                    #expect(application == ["tenant": .string("acme"), "attempt": .long(2), "vip": .bool(true), "ratio": .double(0.5)])
                }
            }
        }
    }

    @Test func aMessageSentOverAMQPArrivesThroughTheSwiftAPIIntact() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("orders")
            try await ServiceBusSendingTests.serving(broker, verifyingWith: nil) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    #expect(try await ServiceBusSendingTests.putToken("SharedAccessSignature sr=x&sig=AA%3D%3D&se=1&skn=any", client: client) == .int(202))
                    try await client.send(
                        .attach(AMQPAttach(name: "sender", handle: 2, role: .sender, source: AMQPSource(address: "s"), target: AMQPTarget(address: "orders"))))
                    _ = try await client.readPerformative()  // attach
                    _ = try await client.readPerformative()  // flow
                    var message = AMQPMessage(body: .data([Array("hello".utf8)]))
                    var properties = AMQPMessage.Properties()
                    properties.messageId = .uuid(UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC964FF")!)
                    properties.correlationId = .string("c-2")
                    properties.subject = "Greeting"
                    properties.contentType = "text/plain"
                    properties.replyTo = "replies"
                    properties.to = "billing"
                    properties.replyToGroupId = "reply-session"
                    message.properties = properties
                    message.messageAnnotations = [AMQPMapEntry(.symbol("custom"), .string("value")), AMQPMapEntry(.symbol("x-opt-custom"), .long(7))]
                    message.header = AMQPMessage.Header(durable: true, ttl: 60_000, deliveryCount: 0)
                    message.applicationProperties = [
                        AMQPMapEntry(.string("tenant"), .string("acme")), AMQPMapEntry(.string("count"), .int(7)), AMQPMapEntry(.string("ok"), .bool(false)),
                    ]
                    try await client.sendTransfer(AMQPTransfer(handle: 2, deliveryId: 1, deliveryTag: [1], settled: false), message: message)
                    guard case .disposition(let disposition) = try await client.readPerformative() else {
                        Issue.record("no disposition")
                        return
                    }
                    #expect(disposition.state == .accepted)
                }
            }
            let received = try #require(try await broker.receive(from: .queue("orders"), maxCount: 1).first)
            #expect(received.message.messageId == "6f9619ff-8b86-d011-b42d-00c04fc964ff")
            #expect(received.message.body == Data("hello".utf8))
            #expect(received.message.correlationId == "c-2")
            #expect(received.message.subject == "Greeting" && received.message.contentType == "text/plain" && received.message.replyTo == "replies")
            #expect(received.message.to == "billing" && received.message.replyToSessionId == "reply-session")
            #expect(received.message.annotations == ["custom": .string("value"), "x-opt-custom": .int(7)])
            #expect(received.message.timeToLive == .seconds(60))
            #expect(received.message.applicationProperties == ["tenant": .string("acme"), "count": .int(7), "ok": .bool(false)])
            #expect(received.deliveryCount == 1 && received.sequenceNumber > 0)
        }
    }
}
