package import Tracing

/// The spans Herald's library layer emits, after the OpenTelemetry messaging semantic conventions,
/// and the trace context that travels in application properties.
///
/// Each component takes its tracer once, when its configuration is made (``current``, as
/// AsyncHTTPClient does), and keeps `nil` when none is bootstrapped (`InstrumentationSystem`'s
/// default, `NoOpTracer`): every entry point then costs a `nil` check, with no span, no context and
/// no property. Spans are made at the API of the brokers (send, receive, settle, commit), of the
/// CQRS layer (the message a handler creates, the processing of a message) and of the HTTP server,
/// never in a store's writer.
///
/// The trace context is whatever the bootstrapped tracer propagates (W3C `traceparent` and
/// `tracestate` with swift-otel), written into the message's application properties when it is
/// sent and read back when it is processed.
package enum MessagingTracing {
    /// `messaging.system`.
    package static let system = "herald"

    /// The tracer in force now, bootstrapped or bound to the task with `withTracer`; `nil` for the
    /// no-op one. Looking it up costs hundreds of nanoseconds: components take it once, when their
    /// configuration is made, not per operation.
    package static var current: (any Tracer)? {
        self.active(InstrumentationSystem.tracer)
    }

    /// `tracer`, or `nil` for none or the no-op one.
    package static func active(_ tracer: (any Tracer)?) -> (any Tracer)? {
        guard let tracer, !(tracer is NoOpTracer) else { return nil }
        return tracer
    }

    // MARK: Trace context in application properties

    /// The trace context `properties` carry, or `nil` when they carry none.
    package static func context(in properties: [String: PropertyValue], tracer: any Tracer) -> ServiceContext? {
        var context = ServiceContext.topLevel
        tracer.extract(properties, into: &context, using: PropertiesCarrier())
        return context.isEmpty ? nil : context
    }

    /// Writes `context` into `properties` unless they carry a trace context already (that of the
    /// span that created the message, which stays its creation context).
    package static func inject(_ context: ServiceContext, into properties: inout [String: PropertyValue], tracer: any Tracer) {
        guard self.context(in: properties, tracer: tracer) == nil else { return }
        tracer.inject(context, into: &properties, using: PropertiesCarrier())
    }

    /// Writes `context` into every message that carries no trace context yet.
    package static func inject(_ context: ServiceContext, into messages: inout [Message], tracer: any Tracer) {
        for index in messages.indices { self.inject(context, into: &messages[index].applicationProperties, tracer: tracer) }
    }

    // MARK: Spans

    /// Runs `body` in a span of `tracer`, a child of `parent` (by default the task's current
    /// context), with the span's context current; records what `body` throws, and ends the span.
    package static func withSpan<T>(
        _ name: String, ofKind kind: SpanKind, parent: ServiceContext? = nil, tracer: any Tracer, _ body: (any Span) async throws -> T
    ) async throws -> T {
        let span = tracer.startSpan(name, context: parent ?? ServiceContext.current ?? .topLevel, ofKind: kind)
        defer { span.end() }
        do {
            return try await ServiceContext.withValue(span.context) { try await body(span) }
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    /// Runs `body` in a producer span `send <destination>` (operation type `send`), having given
    /// the span's context to each of `messages` that carries none; without a tracer, runs `body`.
    @inlinable
    package static func send<T>(
        _ messages: [Message], to entity: EntityPath, tracer: (any Tracer)?, _ body: ([Message]) async throws -> T
    ) async throws -> T {
        guard let tracer else { return try await body(messages) }
        return try await self.tracedSend(messages, to: entity, tracer: tracer, body)
    }

    @usableFromInline
    static func tracedSend<T>(
        _ messages: [Message], to entity: EntityPath, tracer: any Tracer, _ body: ([Message]) async throws -> T
    ) async throws -> T {
        try await self.withSpan("send \(entity)", ofKind: .producer, tracer: tracer) { span in
            span.attributes.setMessaging(operation: "send", type: "send", entity: entity)
            span.attributes.setBatch(messages)
            var messages = messages
            self.inject(span.context, into: &messages, tracer: tracer)
            return try await body(messages)
        }
    }

    /// Runs `body`, the commit of `transaction`, in a span `commit` (operation type `send` when it
    /// sends or publishes, `settle` otherwise), having given the span's context to each message
    /// and published event that carries none; without a tracer, runs `body`.
    @inlinable
    package static func commit<T>(
        _ transaction: BrokerTransaction, tracer: (any Tracer)?, _ body: (BrokerTransaction) async throws -> T
    ) async throws -> T {
        guard let tracer else { return try await body(transaction) }
        return try await self.tracedCommit(transaction, tracer: tracer, body)
    }

    @usableFromInline
    static func tracedCommit<T>(
        _ transaction: BrokerTransaction, tracer: any Tracer, _ body: (BrokerTransaction) async throws -> T
    ) async throws -> T {
        let published = transaction.appends.reduce(0) { $0 + ($1.publishTo == nil ? 0 : $1.events.count) }
        let sends = transaction.sends.count + published
        return try await self.withSpan("commit", ofKind: sends > 0 ? .producer : .client, tracer: tracer) { span in
            span.attributes[MessagingAttribute.system] = Self.system
            span.attributes[MessagingAttribute.operationName] = "commit"
            span.attributes[MessagingAttribute.operationType] = sends > 0 ? "send" : "settle"
            if sends > 0 { span.attributes[MessagingAttribute.batchMessageCount] = sends }
            let settled = transaction.completions.count + transaction.settlements.count
            if settled > 0 { span.attributes[MessagingAttribute.heraldSettledCount] = settled }
            var transaction = transaction
            if sends > 0 { transaction.injectTraceContext(span.context, tracer: tracer) }
            return try await body(transaction)
        }
    }

    /// Runs a receive from `entity`; when it brings messages, records a client span `receive
    /// <destination>` (operation type `receive`) from its start to its end, linked to each
    /// message's creation context. A receive that brings nothing leaves no span: an idle
    /// consumer's polls would otherwise fill the traces.
    @inlinable
    package static func receive(
        from entity: EntityPath, tracer: (any Tracer)?, _ body: () async throws -> [ReceivedMessage]
    ) async throws -> [ReceivedMessage] {
        guard let tracer else { return try await body() }
        let start = DefaultTracerClock.now
        let messages = try await body()
        if !messages.isEmpty { self.recordReceive(messages, from: entity, start: start, tracer: tracer) }
        return messages
    }

    @usableFromInline
    static func recordReceive(_ messages: [ReceivedMessage], from entity: EntityPath, start: DefaultTracerClock.Instant, tracer: any Tracer) {
        let span = tracer.startSpan("receive \(entity)", ofKind: .client, at: start)
        span.attributes.setMessaging(operation: "receive", type: "receive", entity: entity)
        if messages.count == 1 {
            span.attributes.setMessage(messages[0])
        } else {
            span.attributes[MessagingAttribute.batchMessageCount] = messages.count
        }
        for message in messages {
            if let context = self.context(in: message.message.applicationProperties, tracer: tracer) {
                span.addLink(SpanLink(context: context, attributes: [:]))
            }
        }
        span.end()
    }

    /// Runs `body`, a settlement of the message `token` locks, in a client span `<operation>
    /// <destination>` (operation type `settle`; `operation` is `complete`, `abandon`, `defer`,
    /// `dead_letter` or `resubmit`); without a tracer, runs `body`.
    @inlinable
    package static func settle<T>(_ operation: String, _ token: LockToken, tracer: (any Tracer)?, _ body: () async throws -> T) async throws -> T {
        guard let tracer else { return try await body() }
        return try await self.withSpan("\(operation) \(token.entity)", ofKind: .client, tracer: tracer) { span in
            span.attributes.setMessaging(operation: operation, type: "settle", entity: token.entity)
            span.attributes[MessagingAttribute.heraldSequenceNumber] = token.sequenceNumber
            return try await body()
        }
    }
}

/// Reads and writes the trace context in application properties, as strings.
package struct PropertiesCarrier: Injector, Extractor {
    package init() {}

    package func inject(_ value: String, forKey key: String, into carrier: inout [String: PropertyValue]) {
        carrier[key] = .string(value)
    }

    package func extract(key: String, from carrier: [String: PropertyValue]) -> String? {
        guard case .string(let value)? = carrier[key] else { return nil }
        return value
    }
}

/// The attribute names of Herald's spans: OpenTelemetry's messaging conventions, and
/// `messaging.herald.*` for what they have no name for.
package enum MessagingAttribute {
    /// Always `herald`.
    package static let system = "messaging.system"
    /// The queue or topic (for a subscription: its topic).
    package static let destinationName = "messaging.destination.name"
    /// The subscription, for one.
    package static let subscriptionName = "messaging.destination.subscription.name"
    /// `create`, `send`, `receive`, `process` or `settle`.
    package static let operationType = "messaging.operation.type"
    /// Herald's name of the operation: `send`, `receive`, `process`, `complete`, …
    package static let operationName = "messaging.operation.name"
    /// The message id.
    package static let messageId = "messaging.message.id"
    /// The correlation id.
    package static let conversationId = "messaging.message.conversation_id"
    /// The size of the body in bytes.
    package static let bodySize = "messaging.message.body.size"
    /// How many messages a batch operation handles.
    package static let batchMessageCount = "messaging.batch.message_count"
    /// The processor's name (its consumers share the source).
    package static let consumerGroup = "messaging.consumer.group.name"
    /// How many times the message has been delivered, this time included.
    package static let heraldDeliveryCount = "messaging.herald.message.delivery_count"
    /// The message's sequence number in its entity.
    package static let heraldSequenceNumber = "messaging.herald.message.sequence_number"
    /// The message's subject (its CQRS type name).
    package static let heraldSubject = "messaging.herald.message.subject"
    /// How many received messages a transaction settles.
    package static let heraldSettledCount = "messaging.herald.settled_count"
    /// The reason a message was dead-lettered.
    package static let heraldDeadLetterReason = "messaging.herald.dead_letter.reason"
    /// How the processor settled the message: `complete`, `abandon`, `dead_letter`, `defer`.
    package static let heraldDisposition = "messaging.herald.disposition"
}

extension SpanAttributes {
    /// Sets `messaging.system`, the operation's name and type, and the destination of `entity`.
    package mutating func setMessaging(operation: String, type: String, entity: EntityPath) {
        self[MessagingAttribute.system] = MessagingTracing.system
        self[MessagingAttribute.operationName] = operation
        self[MessagingAttribute.operationType] = type
        for (key, value) in entity.destinationAttributes { self[key] = value }
    }

    /// Sets the message's id (when there is one message) or the batch's size.
    package mutating func setBatch(_ messages: [Message]) {
        if messages.count == 1 {
            self.setMessage(messages[0])
        } else {
            self[MessagingAttribute.batchMessageCount] = messages.count
        }
    }

    /// Sets the attributes of one message.
    package mutating func setMessage(_ message: Message) {
        self[MessagingAttribute.messageId] = message.messageId
        self[MessagingAttribute.bodySize] = message.body.count
        if let correlationId = message.correlationId { self[MessagingAttribute.conversationId] = correlationId }
        if let subject = message.subject { self[MessagingAttribute.heraldSubject] = subject }
    }

    /// Sets the attributes of one delivered message: those of the message as sent, its sequence
    /// number and its delivery count.
    package mutating func setMessage(_ message: ReceivedMessage) {
        self.setMessage(message.message)
        self[MessagingAttribute.heraldSequenceNumber] = message.sequenceNumber
        self[MessagingAttribute.heraldDeliveryCount] = message.deliveryCount
    }
}

extension EntityPath {
    /// `messaging.destination.name` (the queue or topic) and, for a subscription,
    /// `messaging.destination.subscription.name`; a dead-letter queue's name ends in
    /// `/$deadletterqueue`. Metrics carry the same pairs as dimensions.
    package var destinationAttributes: [(String, String)] {
        let suffix = self.isDeadLetter ? "/$deadletterqueue" : ""
        switch self.kind {
        case .queue, .topic: return [(MessagingAttribute.destinationName, self.name + suffix)]
        case .subscription:
            return [(MessagingAttribute.destinationName, self.topic ?? ""), (MessagingAttribute.subscriptionName, self.name + suffix)]
        }
    }
}

extension BrokerTransaction {
    /// Gives `context` to each message sent and each event published that carries no trace context.
    mutating func injectTraceContext(_ context: ServiceContext, tracer: any Tracer) {
        for index in self.sends.indices {
            MessagingTracing.inject(context, into: &self.sends[index].message.applicationProperties, tracer: tracer)
        }
        for append in self.appends.indices where self.appends[append].publishTo != nil {
            for index in self.appends[append].events.indices {
                MessagingTracing.inject(context, into: &self.appends[append].events[index].applicationProperties, tracer: tracer)
            }
        }
    }
}
