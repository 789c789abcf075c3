import Foundation
import HeraldAMQP
import NIOCore
import Testing

/// Messages: every section, the batch form Service Bus senders use, and bytes that are not a message.
struct AMQPMessageTests {
    static func serviceBusMessage(_ index: Int) -> AMQPMessage {
        var message = AMQPMessage(body: .data([Array("order \(index)".utf8)]))
        message.header = AMQPMessage.Header(durable: true, ttl: 60_000, deliveryCount: 0)
        message.messageAnnotations = [
            AMQPMapEntry(.symbol("x-opt-sequence-number"), .long(Int64(index))),
            AMQPMapEntry(.symbol("x-opt-enqueued-time"), .timestamp(1_765_000_000_000)),
            AMQPMapEntry(.symbol("x-opt-locked-until"), .timestamp(1_765_000_060_000)),
        ]
        var properties = AMQPMessage.Properties()
        properties.messageId = .string("m-\(index)")
        properties.correlationId = .uuid(UUID())
        properties.subject = "PlaceOrder"
        properties.contentType = "application/json"
        properties.groupId = "session-\(index % 3)"
        properties.creationTime = 1_765_000_000_000
        message.properties = properties
        message.applicationProperties = [AMQPMapEntry(.string("tenant"), .string("acme")), AMQPMapEntry(.string("attempt"), .int(2))]
        return message
    }

    @Test func everySectionRoundTrips() throws {
        var message = Self.serviceBusMessage(1)
        message.deliveryAnnotations = [AMQPMapEntry(.symbol("x-opt-hint"), .bool(true))]
        message.footer = [AMQPMapEntry(.symbol("checksum"), .binary([1, 2]))]
        for body: AMQPMessage.Body in [.data([[1], [2, 3]]), .sequence([[.int(1)], [.string("x")]]), .value(.string("hello")), .data([])] {
            message.body = body
            var buffer = ByteBuffer()
            try buffer.writeAMQPMessage(message)
            #expect(try AMQPMessage(from: buffer) == message)
        }
    }

    @Test func aBatchIsDataSectionsEachHoldingAMessage() throws {
        // Service Bus senders send a batch with message format 0x80013700: its body's data
        // sections are whole encoded messages.
        let messages = (0..<5).map(Self.serviceBusMessage)
        let chunks = try messages.map { message in
            var buffer = ByteBuffer()
            try buffer.writeAMQPMessage(message)
            return Array(buffer.readableBytesView)
        }
        var envelope = ByteBuffer()
        try envelope.writeAMQPMessage(AMQPMessage(body: .data(chunks)))
        guard case .data(let unpacked) = try AMQPMessage(from: envelope).body else {
            Issue.record("the batch body is not data")
            return
        }
        #expect(try unpacked.map { try AMQPMessage(from: ByteBuffer(bytes: $0)) } == messages)
    }

    @Test func theDeliveryCountIsWrittenEvenWhenZero() throws {
        var message = AMQPMessage(body: .value(.null))
        message.header = AMQPMessage.Header()
        var buffer = ByteBuffer()
        try buffer.writeAMQPMessage(message)
        // header: 0x00 0x53 0x70, then a list whose last field is delivery-count 0 (uint0).
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes.prefix(3) == [0x00, 0x53, 0x70])
        #expect(bytes[3] == 0xc0 && bytes[4 + Int(bytes[4])] == 0x43)
    }

    @Test func bytesThatAreNotAMessageAreTypedErrors() throws {
        func message(_ sections: [AMQPValue]) throws -> ByteBuffer {
            var buffer = ByteBuffer()
            for section in sections { try buffer.writeAMQPValue(section) }
            return buffer
        }
        let properties = AMQPValue.described(descriptor: .ulong(0x73), value: .list([]))
        let header = AMQPValue.described(descriptor: .ulong(0x70), value: .list([]))
        let data = AMQPValue.described(descriptor: .ulong(0x75), value: .binary([1]))
        let value = AMQPValue.described(descriptor: .ulong(0x77), value: .null)
        #expect(throws: AMQPMessageError.self) { try AMQPMessage(from: message([properties, header])) }
        #expect(throws: AMQPMessageError.self) { try AMQPMessage(from: message([properties, properties])) }
        #expect(throws: AMQPMessageError.self) { try AMQPMessage(from: message([data, value])) }
        #expect(throws: AMQPMessageError.self) { try AMQPMessage(from: message([.string("not a section")])) }
        #expect(throws: AMQPMessageError.self) { try AMQPMessage(from: message([.described(descriptor: .ulong(0x75), value: .string("x"))])) }
        #expect(throws: AMQPMessageError.self) {
            try AMQPMessage(from: message([.described(descriptor: .ulong(0x73), value: .list([.null, .string("not binary")]))]))
        }
        #expect(throws: AMQPMessageError.malformed(.truncated)) { try AMQPMessage(from: ByteBuffer(bytes: [0x00, 0x53, 0x75, 0xa0, 9])) }
    }
}
