public import Foundation
public import HeraldCore

/// A request to do something, handled by exactly one receiver. Sent to a queue.
///
/// ```swift
/// struct PlaceOrder: Command {
///     static let typeName = "conference.PlaceOrder"
///     var commandId: String
///     var orderId: String
/// }
/// ```
public protocol Command: Codable, Sendable {
    /// The stable name the command travels under (the message's `subject`). Keep it when the
    /// Swift type is renamed: receivers dispatch on it.
    static var typeName: String { get }
    /// The command's unique id, which is its message id: duplicate detection, the inbox and
    /// retries all key on it.
    var commandId: String { get }
}

/// A fact that happened, delivered to every subscriber. Published to a topic or appended to a stream.
public protocol Event: Codable, Sendable {
    /// The stable name the event travels and is stored under.
    static var typeName: String { get }
}

/// Encodes typed messages into broker messages and back.
public enum MessageCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    /// The JSON encoding of `value`.
    public static func encode(_ value: some Encodable) throws -> Data {
        try Self.encoder.encode(value)
    }

    /// Decodes `type` from JSON.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }

    /// The broker message that carries `command`.
    public static func message(
        for command: some Command, correlationId: String?, causationId: String?, sessionId: String? = nil,
        scheduledAt: Date? = nil
    ) throws -> Message {
        Message(
            messageId: command.commandId, body: try Self.encode(command), contentType: "application/json",
            subject: type(of: command).typeName, correlationId: correlationId, causationId: causationId,
            sessionId: sessionId, scheduledEnqueueTime: scheduledAt
        )
    }

    /// The broker message that carries `event`.
    public static func message(for event: some Event, messageId: String, correlationId: String?, causationId: String?, sessionId: String? = nil) throws
        -> Message
    {
        Message(
            messageId: messageId, body: try Self.encode(event), contentType: "application/json",
            subject: type(of: event).typeName, correlationId: correlationId, causationId: causationId, sessionId: sessionId
        )
    }

    /// The stored form of `event`.
    public static func eventData(for event: some Event, correlationId: String?, causationId: String?) throws -> EventData {
        EventData(type: type(of: event).typeName, data: try Self.encode(event), correlationId: correlationId, causationId: causationId)
    }
}

/// Decodes stored or received events by their type name.
public struct EventTypes: Sendable {
    private var decoders: [String: @Sendable (Data) throws -> any Event]

    /// A registry of `types`.
    public init(_ types: [any Event.Type]) {
        self.decoders = [:]
        for type in types { self.register(type) }
    }

    /// Adds `type`.
    public mutating func register<E: Event>(_ type: E.Type) {
        self.decoders[E.typeName] = { try MessageCoding.decode(E.self, from: $0) }
    }

    /// The event of `typeName` encoded in `data`, or `nil` for a type the registry does not know.
    public func decode(typeName: String, data: Data) throws -> (any Event)? {
        try self.decoders[typeName].map { try $0(data) }
    }
}
