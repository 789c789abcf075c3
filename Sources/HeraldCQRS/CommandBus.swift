import Foundation
public import HeraldCore

/// Sends typed commands to queues.
///
/// ```swift
/// let commands = CommandBus(broker: broker)
/// try await commands.send(PlaceOrder(commandId: UUID().uuidString, orderId: "o-1"), to: .queue("orders"))
/// ```
public struct CommandBus: Sendable {
    private let broker: any MessageBroker
    private let clock: any BrokerClock

    /// A bus over `broker`; `clock` (the broker's) dates delayed commands.
    public init(broker: any MessageBroker, clock: any BrokerClock = SystemBrokerClock()) {
        self.broker = broker
        self.clock = clock
    }

    /// Sends `command` to `queue`; returns once it is durable. A re-send of the same command id
    /// is absorbed by the queue's duplicate detection (if on) and by the handlers' inbox.
    ///
    /// - Parameters:
    ///   - command: The command; its `commandId` becomes the message id.
    ///   - queue: The queue its handler's processor receives from.
    ///   - sessionId: For session queues: the commands of one session are handled in order.
    ///   - correlationId: Ties the command to a workflow; defaults to the command id.
    ///   - causationId: The id of the message that caused it.
    ///   - delay: Deliver the command only after this long.
    @discardableResult
    public func send(
        _ command: some Command, to queue: EntityPath, sessionId: String? = nil, correlationId: String? = nil,
        causationId: String? = nil, delay: Duration? = nil
    ) async throws -> SendReceipt {
        let scheduledAt = delay.map { self.clock.now().addingTimeInterval($0.timeInterval) }
        let message = try MessageCoding.message(
            for: command, correlationId: correlationId ?? command.commandId, causationId: causationId,
            sessionId: sessionId, scheduledAt: scheduledAt
        )
        return try await self.broker.send(message, to: queue)
    }
}

/// Publishes typed events to a topic.
public struct EventBus: Sendable {
    private let broker: any MessageBroker
    private let topic: EntityPath

    /// A bus publishing to `topic` on `broker`.
    public init(broker: any MessageBroker, topic: EntityPath) {
        self.broker = broker
        self.topic = topic
    }

    /// Publishes `events` atomically (all or none), each with the message id `messageIds` gives
    /// it (a fresh UUID by default; events of an event store use `stream@version`).
    @discardableResult
    public func publish(
        _ events: [any Event], correlationId: String? = nil, causationId: String? = nil,
        messageIds: (Int) -> String = { _ in RandomIdentifier.uuidString() }
    ) async throws -> [SendReceipt] {
        var messages: [Message] = []
        for (index, event) in events.enumerated() {
            messages.append(try MessageCoding.message(for: event, messageId: messageIds(index), correlationId: correlationId, causationId: causationId))
        }
        return try await self.broker.send(messages, to: self.topic)
    }
}
