import Foundation
import HeraldAMQP
import HeraldCore

/// How a Service Bus message over AMQP and a Herald ``Message`` map to each other, the way the
/// Service Bus SDKs read and write the sections (message-id, correlation-id, `group-id` as the
/// session id, `header.ttl`, the `x-opt-…` annotations, application properties).
enum ServiceBusMessageMapping {
    /// The annotation of a scheduled message's enqueue time.
    static let scheduledEnqueueTime = AMQPValue.symbol("x-opt-scheduled-enqueue-time")

    /// The annotations the broker sets on deliveries or reads from sends: never kept as a sender's
    /// own, and never shadowed by one on the way out.
    static let brokerAnnotations: Set<String> = [
        "x-opt-scheduled-enqueue-time", "x-opt-sequence-number", "x-opt-enqueued-time", "x-opt-locked-until", "x-opt-lock-token",
        "x-opt-message-state", "x-opt-deadletter-source", "x-opt-enqueue-sequence-number", "x-opt-partition-key",
        "x-opt-via-partition-key", "x-opt-partition-id",
    ]

    // MARK: From the client

    /// The message a client sent, as Herald stores it.
    ///
    /// - Throws: `amqp:not-implemented` for what Herald cannot store: a body other than one data
    ///   section, an application property or annotation that is binary, a list, a map or a
    ///   decimal, an annotation keyed by a number.
    static func message(from amqp: AMQPMessage) throws(AMQPError) -> Message {
        let body: Data
        switch amqp.body {
        case .data(let chunks) where chunks.count <= 1: body = Data(chunks.first ?? [])
        default: throw AMQPError(condition: AMQPCondition.notImplemented, description: "Herald stores a message body of one data section (bytes)")
        }
        let properties = amqp.properties ?? AMQPMessage.Properties()
        var message = Message(
            messageId: Self.identifier(properties.messageId) ?? RandomIdentifier.uuidString(), body: body, contentType: properties.contentType,
            subject: properties.subject, correlationId: Self.identifier(properties.correlationId), sessionId: properties.groupId,
            replyTo: properties.replyTo, timeToLive: amqp.header?.ttl.map { .milliseconds(Int64($0)) },
            replyToSessionId: properties.replyToGroupId, to: properties.to)
        for entry in amqp.messageAnnotations ?? [] {
            if entry.key == Self.scheduledEnqueueTime, case .timestamp(let milliseconds) = entry.value {
                message.scheduledEnqueueTime = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            }
            guard let key = entry.key.text else {
                throw AMQPError(condition: AMQPCondition.notImplemented, description: "Herald keeps message annotations keyed by symbols")
            }
            if Self.brokerAnnotations.contains(key) { continue }
            if let value = try Self.property(entry.value, key: key, kind: "annotation") { message.annotations[key] = value }
        }
        for entry in amqp.applicationProperties ?? [] {
            guard let key = entry.key.text else {
                throw AMQPError(condition: AMQPCondition.invalidField, description: "application property keys are strings")
            }
            if let value = try Self.property(entry.value, key: key, kind: "application property") { message.applicationProperties[key] = value }
        }
        return message
    }

    /// A message-id or correlation-id as text: strings as they are, UUIDs in lowercase, numbers
    /// in decimal, binary in hexadecimal.
    static func identifier(_ value: AMQPValue) -> String? {
        switch value {
        case .string(let text): text
        case .uuid(let uuid): uuid.uuidString.lowercased()
        case .ulong(let number): String(number)
        case .binary(let bytes): bytes.map { String(format: "%02x", $0) }.joined()
        default: nil
        }
    }

    static func property(_ value: AMQPValue, key: String, kind: StaticString) throws(AMQPError) -> PropertyValue? {
        switch value {
        case .null: return nil
        case .string(let text), .symbol(let text): return .string(text)
        case .char(let scalar): return .string(String(Character(scalar)))
        case .uuid(let uuid): return .string(uuid.uuidString.lowercased())
        case .bool(let flag): return .bool(flag)
        case .float(let number): return .double(Double(number))
        case .double(let number): return .double(number)
        case .timestamp(let milliseconds): return .int(milliseconds)
        default:
            guard let number = value.signed else {
                throw AMQPError(
                    condition: AMQPCondition.notImplemented,
                    description:
                        "\(kind) '\(key.prefix(100))' is of a type Herald does not store (it stores strings, integers, doubles and booleans)")
            }
            return .int(number)
        }
    }

    // MARK: To the client

    /// The AMQP message of a delivery (or, `peeked`, of a peek): the message as sent, with the
    /// broker's annotations.
    static func amqpMessage(for received: ReceivedMessage, peeked: Bool = false) -> AMQPMessage {
        let message = received.message
        var amqp = AMQPMessage(body: .data([Array(message.body)]))
        // Service Bus counts earlier deliveries in the header; Herald's count of a delivery
        // includes it, a peek is none.
        amqp.header = AMQPMessage.Header(
            durable: true, ttl: message.timeToLive.map { UInt32(clamping: $0.milliseconds) },
            deliveryCount: UInt32(clamping: max(received.deliveryCount - (peeked ? 0 : 1), 0)))
        var annotations = [
            AMQPMapEntry(.symbol("x-opt-sequence-number"), .long(received.sequenceNumber)),
            AMQPMapEntry(.symbol("x-opt-enqueued-time"), .timestamp(received.enqueuedTime.millisecondsSince1970)),
            AMQPMapEntry(.symbol("x-opt-message-state"), .int(Self.state(received.state))),
        ]
        if let lockedUntil = received.lockedUntil {
            annotations.append(AMQPMapEntry(.symbol("x-opt-locked-until"), .timestamp(lockedUntil.millisecondsSince1970)))
        }
        if let scheduled = message.scheduledEnqueueTime {
            annotations.append(AMQPMapEntry(Self.scheduledEnqueueTime, .timestamp(scheduled.millisecondsSince1970)))
        }
        if received.entity.isDeadLetter {
            annotations.append(AMQPMapEntry(.symbol("x-opt-deadletter-source"), .string(received.entity.origin.entityKey)))
        }
        for (key, value) in message.annotations.sorted(by: { $0.key < $1.key }) where !Self.brokerAnnotations.contains(key) {
            annotations.append(AMQPMapEntry(.symbol(key), Self.value(value)))
        }
        amqp.messageAnnotations = annotations
        var properties = AMQPMessage.Properties()
        properties.messageId = .string(message.messageId)
        properties.correlationId = message.correlationId.map { .string($0) } ?? .null
        properties.contentType = message.contentType
        properties.subject = message.subject
        properties.replyTo = message.replyTo
        properties.groupId = message.sessionId
        properties.to = message.to
        properties.replyToGroupId = message.replyToSessionId
        properties.absoluteExpiryTime = received.expiresAt?.millisecondsSince1970
        amqp.properties = properties
        var application = message.applicationProperties.sorted { $0.key < $1.key }.map { key, value in
            AMQPMapEntry(.string(key), Self.value(value))
        }
        if let reason = received.deadLetterReason { application.append(AMQPMapEntry(.string("DeadLetterReason"), .string(reason))) }
        if let description = received.deadLetterDescription {
            application.append(AMQPMapEntry(.string("DeadLetterErrorDescription"), .string(description)))
        }
        amqp.applicationProperties = application.isEmpty ? nil : application
        return amqp
    }

    static func value(_ property: PropertyValue) -> AMQPValue {
        switch property {
        case .string(let text): .string(text)
        case .int(let number): .long(number)
        case .double(let number): .double(number)
        case .bool(let flag): .bool(flag)
        }
    }

    private static func state(_ state: ReceivedMessage.State) -> Int32 {
        switch state {
        case .active: 0
        case .deferred: 1
        case .scheduled: 2
        }
    }

    // MARK: Lock tokens

    /// A lock token as a delivery tag: the UUID's 16 bytes in .NET's GUID order (the first three
    /// groups little-endian), which is how the SDKs read the tag back into a UUID.
    static func deliveryTag(_ token: UUID) -> [UInt8] {
        let bytes = withUnsafeBytes(of: token.uuid, Array.init)
        return [bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4], bytes[7], bytes[6]] + bytes[8..<16]
    }

    /// The UUID of a delivery tag in .NET's GUID order; `nil` unless it has 16 bytes.
    static func lockToken(deliveryTag tag: [UInt8]) -> UUID? {
        guard tag.count == 16 else { return nil }
        let bytes = [tag[3], tag[2], tag[1], tag[0], tag[5], tag[4], tag[7], tag[6]] + tag[8..<16]
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9], bytes[10], bytes[11],
                bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}
