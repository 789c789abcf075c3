public import Foundation
public import HeraldCore
public import Logging
import Synchronization
import Tracing

/// What a handler sees of the message it handles, and where it puts what handling it means.
///
/// Everything a handler emits through the context (commands, events, appended events, state)
/// is collected and committed in one transaction with the completion of the incoming message and
/// its inbox record (GUARANTEES.md §4.8): all of it happens once, or none of it. Outgoing messages
/// carry the incoming message's correlation id, and its message id as their causation id.
///
/// With a tracer bootstrapped, each message the handler sends or publishes, and each event it
/// appends to be published, gets a producer span `create <destination>` (a child of the
/// processor's `process` span), whose trace context the message carries in its application
/// properties: the span that processes it, perhaps much later (a scheduled timeout), continues the trace.
public final class HandlerContext: Sendable {
    /// The message being handled.
    public let message: ReceivedMessage
    /// The store, for reads (documents, event streams) before deciding.
    public let store: any TransactionalBroker
    /// The broker's clock.
    public let clock: any BrokerClock
    /// The handler's stable name, which keys its inbox.
    public let handlerName: String
    private let pending = Mutex(BrokerTransaction())
    private let processorLogger: Logger
    let tracer: (any Tracer)?

    init(
        message: ReceivedMessage, store: any TransactionalBroker, clock: any BrokerClock, handlerName: String, logger: Logger,
        tracer: (any Tracer)?
    ) {
        self.message = message
        self.store = store
        self.clock = clock
        self.handlerName = handlerName
        self.processorLogger = logger
        self.tracer = tracer
    }

    /// The processor's logger with the message's metadata: `herald.message_id`,
    /// `herald.correlation_id` (the correlation id outgoing messages carry), `herald.causation_id`
    /// (the incoming message's own causation id, when it has one), `herald.handler` and
    /// `herald.subject`.
    public var logger: Logger {
        var logger = self.processorLogger
        logger[metadataKey: "herald.message_id"] = "\(self.message.message.messageId)"
        logger[metadataKey: "herald.correlation_id"] = "\(self.correlationId)"
        if let causationId = self.message.message.causationId { logger[metadataKey: "herald.causation_id"] = "\(causationId)" }
        logger[metadataKey: "herald.handler"] = "\(self.handlerName)"
        if let subject = self.message.message.subject { logger[metadataKey: "herald.subject"] = "\(subject)" }
        return logger
    }

    /// The correlation id outgoing messages carry: the incoming one's, or its message id.
    public var correlationId: String { self.message.message.correlationId ?? self.message.message.messageId }

    /// The causation id outgoing messages carry: the incoming message id.
    public var causationId: String { self.message.message.messageId }

    /// The transaction collected so far.
    var transaction: BrokerTransaction { self.pending.withLock { $0 } }

    /// Changes the transaction directly, for what the typed helpers do not cover.
    public func withTransaction<T>(_ body: (inout BrokerTransaction) throws -> T) rethrows -> T {
        try self.pending.withLock { try body(&$0) }
    }

    /// Sends `command` to `queue` when the handling commits; `at` schedules it (a timeout).
    public func send(_ command: some Command, to queue: EntityPath, sessionId: String? = nil, at time: Date? = nil) throws {
        var message = try MessageCoding.message(
            for: command, correlationId: self.correlationId, causationId: self.causationId, sessionId: sessionId, scheduledAt: time
        )
        self.traceCreation(of: &message, to: queue)
        self.pending.withLock { $0.send(message, to: queue) }
    }

    /// Cancels a command scheduled with ``send(_:to:sessionId:at:)``, if it has not fired yet.
    public func cancelScheduled(commandId: String, in queue: EntityPath) {
        self.pending.withLock { $0.cancelScheduled(messageId: commandId, in: queue) }
    }

    /// Publishes `event` to `topic` when the handling commits. Its message id is derived from the
    /// incoming message and `key`, so a re-handling publishes the same id (absorbed downstream).
    public func publish(_ event: some Event, to topic: EntityPath, key: String = "0", sessionId: String? = nil) throws {
        var message = try MessageCoding.message(
            for: event, messageId: "\(self.causationId)/\(type(of: event).typeName)/\(key)",
            correlationId: self.correlationId, causationId: self.causationId, sessionId: sessionId
        )
        self.traceCreation(of: &message, to: topic)
        self.pending.withLock { $0.send(message, to: topic) }
    }

    /// Appends `events` to `stream` at `expectedVersion` when the handling commits, publishing
    /// them to `topic` in the same commit.
    public func append(_ events: [any Event], to stream: String, expectedVersion: ExpectedVersion, publishTo topic: EntityPath?) throws {
        var data = try events.map { try MessageCoding.eventData(for: $0, correlationId: self.correlationId, causationId: self.causationId) }
        if let topic, let tracer = self.tracer {
            for index in data.indices {
                let span = tracer.startSpan("create \(topic)", ofKind: .producer)
                span.attributes.setMessaging(operation: "create", type: "create", entity: topic)
                span.attributes[MessagingAttribute.heraldSubject] = data[index].type
                span.attributes[MessagingAttribute.conversationId] = self.correlationId
                MessagingTracing.inject(span.context, into: &data[index].applicationProperties, tracer: tracer)
                span.end()
            }
        }
        self.pending.withLock { $0.append(data, to: stream, expectedVersion: expectedVersion, publishTo: topic) }
    }

    /// With a tracer, records the creation of `message` for `destination` in a producer span and
    /// gives the message the span's trace context.
    private func traceCreation(of message: inout Message, to destination: EntityPath) {
        guard let tracer = self.tracer else { return }
        let span = tracer.startSpan("create \(destination)", ofKind: .producer)
        span.attributes.setMessaging(operation: "create", type: "create", entity: destination)
        span.attributes.setMessage(message)
        MessagingTracing.inject(span.context, into: &message.applicationProperties, tracer: tracer)
        span.end()
    }

    /// Reads a JSON document and its version.
    public func load<T: Decodable>(_ type: T.Type, collection: String, key: String) async throws -> (value: T, version: Int64)? {
        guard let document = try await self.store.document(key, in: collection) else { return nil }
        return (try MessageCoding.decode(type, from: document.data), document.version)
    }

    /// Writes a JSON document when the handling commits, if it is still at `expectedVersion`.
    public func save(_ value: some Encodable, collection: String, key: String, expectedVersion: Int64) throws {
        let data = try MessageCoding.encode(value)
        self.pending.withLock { $0.write(data, collection: collection, key: key, expectedVersion: expectedVersion) }
    }
}
