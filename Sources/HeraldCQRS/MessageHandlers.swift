import HeraldCore

/// The handlers a ``MessageProcessor`` dispatches to, by message type name.
///
/// ```swift
/// var handlers = MessageHandlers()
/// handlers.on(PlaceOrder.self) { command, context in
///     try context.publish(OrderPlaced(orderId: command.orderId), to: .topic("orders"))
/// }
/// ```
public struct MessageHandlers: Sendable {
    struct Entry: Sendable {
        /// The handler's stable name, which keys its inbox.
        var name: String
        var run: @Sendable (ReceivedMessage, HandlerContext) async throws -> Void
    }

    private(set) var entries: [String: Entry] = [:]

    /// No handlers.
    public init() {}

    /// Handles commands of type `C`. `name` keys the inbox (default: the type name); keep it
    /// stable, or already handled commands are handled again.
    public mutating func on<C: Command>(_ type: C.Type, name: String? = nil, _ handler: @escaping @Sendable (C, HandlerContext) async throws -> Void) {
        self.entries[C.typeName] = Entry(name: name ?? C.typeName) { message, context in
            try await handler(try Self.decode(C.self, message), context)
        }
    }

    /// Handles events of type `E`.
    public mutating func on<E: Event>(_ type: E.Type, name: String? = nil, _ handler: @escaping @Sendable (E, HandlerContext) async throws -> Void) {
        self.entries[E.typeName] = Entry(name: name ?? E.typeName) { message, context in
            try await handler(try Self.decode(E.self, message), context)
        }
    }

    /// The type names handled.
    public var typeNames: [String] { self.entries.keys.sorted() }

    private static func decode<T: Decodable>(_ type: T.Type, _ message: ReceivedMessage) throws -> T {
        do {
            return try MessageCoding.decode(type, from: message.message.body)
        } catch {
            throw UndecodableMessage(description: "\(message.message.subject ?? "?") does not decode: \(error)")
        }
    }
}

/// A message whose body does not decode as its type: poison, dead-lettered at once.
struct UndecodableMessage: Error, CustomStringConvertible {
    let description: String
}
