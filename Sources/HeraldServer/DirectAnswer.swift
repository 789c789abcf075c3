import Foundation
import HeraldCore
import HeraldWire

/// The answers of the busiest routes (receive, send), written straight from the broker's values
/// into JSON bytes: no wire value per message, no `Encodable` dispatch per field. The bytes are
/// exactly what ``AnswerEncoder`` writes for the wire types (``HeraldWire/MessagesResponse``,
/// ``HeraldWire/SendResponse``): the same keys in the same order, absent values left out.
enum DirectAnswer {
    /// The JSON of `MessagesResponse(messages: messages.map(WireReceivedMessage.init))`; `nil`
    /// when a property or annotation is a double JSON cannot spell (infinite, NaN), which the encoders refuse.
    static func messages(_ messages: [ReceivedMessage]) -> [UInt8]? {
        for received in messages where !received.message.applicationProperties.isEmpty || !received.message.annotations.isEmpty {
            for case .double(let value) in received.message.applicationProperties.values where !value.isFinite { return nil }
            for case .double(let value) in received.message.annotations.values where !value.isFinite { return nil }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(messages.reduce(16) { $0 + 480 + $1.message.body.count * 4 / 3 })
        bytes += #"{"messages":["#.utf8
        var lockTokens = WireLockToken.JSONWriter()
        for (index, received) in messages.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.append(received, lockTokens: &lockTokens, to: &bytes)
        }
        bytes += "]}".utf8
        return bytes
    }

    /// The JSON of `SendResponse(receipts: receipts.map(WireReceipt.init))`.
    static func receipts(_ receipts: [SendReceipt]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + receipts.count * 48)
        bytes += #"{"receipts":["#.utf8
        for (index, receipt) in receipts.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            var fields = Fields(&bytes)
            fields.integer("sequenceNumber", receipt.sequenceNumber, into: &bytes)
            fields.key("isDuplicate", into: &bytes)
            JSONText.appendBool(receipt.isDuplicate, to: &bytes)
            bytes.append(UInt8(ascii: "}"))
        }
        bytes += "]}".utf8
        return bytes
    }

    /// One `WireReceivedMessage`, its fields in declaration order.
    private static func append(_ received: ReceivedMessage, lockTokens: inout WireLockToken.JSONWriter, to bytes: inout [UInt8]) {
        var fields = Fields(&bytes)
        fields.key("message", into: &bytes)
        Self.append(received.message, to: &bytes)
        fields.key("entity", into: &bytes)
        Self.append(received.entity, to: &bytes)
        fields.integer("sequenceNumber", received.sequenceNumber, into: &bytes)
        fields.integer("enqueuedTime", received.enqueuedTime.millisecondsSince1970, into: &bytes)
        fields.integer("deliveryCount", Int64(received.deliveryCount), into: &bytes)
        fields.string("state", received.state.rawValue, into: &bytes)
        if let token = received.lockToken {
            fields.key("lockToken", into: &bytes)
            lockTokens.append(token, to: &bytes)
        }
        fields.integer("lockedUntil", received.lockedUntil?.millisecondsSince1970, into: &bytes)
        fields.integer("expiresAt", received.expiresAt?.millisecondsSince1970, into: &bytes)
        fields.string("deadLetterReason", received.deadLetterReason, into: &bytes)
        fields.string("deadLetterDescription", received.deadLetterDescription, into: &bytes)
        bytes.append(UInt8(ascii: "}"))
    }

    /// One `WireMessage` of a received message: the body in base64, never `text`.
    private static func append(_ message: Message, to bytes: inout [UInt8]) {
        var fields = Fields(&bytes)
        fields.string("messageId", message.messageId, into: &bytes)
        fields.key("body", into: &bytes)
        // Base64 needs no escaping.
        bytes.append(UInt8(ascii: "\""))
        bytes += message.body.base64EncodedData()
        bytes.append(UInt8(ascii: "\""))
        fields.string("contentType", message.contentType, into: &bytes)
        fields.string("subject", message.subject, into: &bytes)
        fields.string("correlationId", message.correlationId, into: &bytes)
        fields.string("causationId", message.causationId, into: &bytes)
        fields.string("sessionId", message.sessionId, into: &bytes)
        fields.string("replyTo", message.replyTo, into: &bytes)
        fields.integer("timeToLiveMs", message.timeToLive?.milliseconds, into: &bytes)
        fields.integer("scheduledEnqueueTime", message.scheduledEnqueueTime?.millisecondsSince1970, into: &bytes)
        Self.append("applicationProperties", message.applicationProperties, to: &fields, bytes: &bytes)
        fields.string("senderId", message.senderId, into: &bytes)
        fields.integer("senderSequence", message.senderSequence, into: &bytes)
        fields.string("replyToSessionId", message.replyToSessionId, into: &bytes)
        fields.string("to", message.to, into: &bytes)
        Self.append("annotations", message.annotations, to: &fields, bytes: &bytes)
        bytes.append(UInt8(ascii: "}"))
    }

    /// A map of typed values under `key`, left out when empty.
    private static func append(_ key: String, _ values: [String: PropertyValue], to fields: inout Fields, bytes: inout [UInt8]) {
        guard !values.isEmpty else { return }
        fields.key(key, into: &bytes)
        var entries = Fields(&bytes)
        for (name, value) in values {
            entries.key(name, into: &bytes)
            Self.append(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// One `WireEntity`.
    private static func append(_ path: EntityPath, to bytes: inout [UInt8]) {
        var fields = Fields(&bytes)
        switch path.kind {
        case .queue: fields.string("queue", path.name, into: &bytes)
        case .topic: fields.string("topic", path.name, into: &bytes)
        case .subscription:
            fields.string("topic", path.topic, into: &bytes)
            fields.string("subscription", path.name, into: &bytes)
        }
        if path.isDeadLetter {
            fields.key("deadLetter", into: &bytes)
            JSONText.appendBool(true, to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// One `WireProperty`.
    private static func append(_ value: PropertyValue, to bytes: inout [UInt8]) {
        var fields = Fields(&bytes)
        switch value {
        case .string(let value): fields.string("string", value, into: &bytes)
        case .int(let value): fields.integer("int", value, into: &bytes)
        case .double(let value):
            fields.key("double", into: &bytes)
            _ = JSONText.appendDouble(value, to: &bytes)  // finite: messages(_:) checked
        case .bool(let value):
            fields.key("bool", into: &bytes)
            JSONText.appendBool(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }
}

/// The fields of one object being written: opens it, and puts the commas between its fields.
private struct Fields {
    private var isFirst = true

    init(_ bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
    }

    mutating func key(_ name: String, into bytes: inout [UInt8]) {
        if self.isFirst { self.isFirst = false } else { bytes.append(UInt8(ascii: ",")) }
        JSONText.appendString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    /// `"name":"value"`, or nothing for `nil`.
    mutating func string(_ name: String, _ value: String?, into bytes: inout [UInt8]) {
        guard let value else { return }
        self.key(name, into: &bytes)
        JSONText.appendString(value, to: &bytes)
    }

    /// `"name":value`, or nothing for `nil`.
    mutating func integer(_ name: String, _ value: Int64?, into bytes: inout [UInt8]) {
        guard let value else { return }
        self.key(name, into: &bytes)
        JSONText.appendInteger(value, to: &bytes)
    }
}
