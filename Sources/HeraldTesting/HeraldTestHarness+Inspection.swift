public import HeraldCQRS
public import HeraldCore
import HeraldSQLite

extension HeraldTestHarness {
    /// A message in a dead-letter queue, with why it is there.
    public struct DeadLetter: Sendable, Hashable {
        /// The dead letter as the broker keeps it (body, properties, delivery count).
        public let message: ReceivedMessage
        /// The queue or subscription it was dead-lettered from.
        public var origin: EntityPath { self.message.entity.origin }
        /// Its message id.
        public var messageId: String { self.message.message.messageId }
        /// Its type name (the message's subject).
        public var subject: String? { self.message.message.subject }
        /// Why it was dead-lettered: `HandlerFailed`, `UnknownMessageType`, `UndecodableMessage`,
        /// `SequenceGapTimeout`, `MaxDeliveryCountExceeded`, `TTLExpired`, or a handler's own reason.
        public var reason: String? { self.message.deadLetterReason }
        /// The description given with the reason.
        public var reasonDescription: String? { self.message.deadLetterDescription }

        /// Wraps a message peeked from a dead-letter queue.
        ///
        /// - Parameter message: The dead letter.
        public init(_ message: ReceivedMessage) {
            self.message = message
        }
    }

    /// A broken expectation of the harness: what was expected, and where.
    public struct ExpectationFailure: Error, Sendable, CustomStringConvertible {
        /// What went wrong.
        public let message: String
        /// The file of the failed expectation (`#fileID`).
        public let file: String
        /// The line of the failed expectation.
        public let line: UInt

        /// Creates a failure.
        ///
        /// - Parameters:
        ///   - message: What went wrong.
        ///   - file: The file of the expectation.
        ///   - line: The line of the expectation.
        public init(_ message: String, file: StaticString = #fileID, line: UInt = #line) {
            self.message = message
            self.file = "\(file)"
            self.line = line
        }

        /// `file:line: message`.
        public var description: String { "\(self.file):\(self.line): \(self.message)" }
    }

    // MARK: Accessors

    /// Every message `entity` holds, in sequence-number order, in any state (active, locked,
    /// scheduled, deferred), without locking them.
    ///
    /// - Parameter entity: A queue, a subscription, or a dead-letter queue (`.deadLetter`).
    /// - Returns: The messages.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, for example `entityNotFound`.
    public func messages(in entity: EntityPath) async throws -> [ReceivedMessage] {
        var all: [ReceivedMessage] = []
        var next: Int64 = 1
        while true {
            let page = try await self.broker.peek(entity, fromSequenceNumber: next, maxCount: HeraldLimits.maxReceiveCount)
            all += page
            guard let last = page.last, page.count == HeraldLimits.maxReceiveCount else { return all }
            next = last.sequenceNumber + 1
        }
    }

    /// The commands of type `C` that `queue` holds (sent and not yet handled), in order.
    ///
    /// - Parameters:
    ///   - type: The command type; messages of other types are skipped.
    ///   - queue: The queue.
    /// - Returns: The decoded commands.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, or a decoding error.
    public func commands<C: Command>(_ type: C.Type, in queue: EntityPath) async throws -> [C] {
        try await self.decoded(type, typeName: C.typeName, in: queue)
    }

    /// The events of type `E` that `subscription` holds (published and not yet handled), in order.
    ///
    /// - Parameters:
    ///   - type: The event type; messages of other types are skipped.
    ///   - subscription: A subscription of the topic the events were published to.
    /// - Returns: The decoded events.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, or a decoding error.
    public func events<E: Event>(_ type: E.Type, in subscription: EntityPath) async throws -> [E] {
        try await self.decoded(type, typeName: E.typeName, in: subscription)
    }

    /// The events of `stream` in the event store, decoded by `types` (unknown types are skipped).
    ///
    /// - Parameters:
    ///   - stream: The stream, for example `order-42`.
    ///   - types: The event types to decode.
    /// - Returns: The events in version order.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, or a decoding error.
    public func events(inStream stream: String, types: EventTypes) async throws -> [any Event] {
        var events: [any Event] = []
        var version: Int64 = 1
        while true {
            let page = try await self.broker.readStream(stream, from: version, maxCount: 500)
            for recorded in page {
                if let event = try types.decode(typeName: recorded.event.type, data: recorded.event.data) { events.append(event) }
            }
            guard let last = page.last, page.count == 500 else { return events }
            version = last.version + 1
        }
    }

    /// The dead letters of a queue or subscription, in order, with their reasons.
    ///
    /// - Parameter entity: The queue or subscription (not its dead-letter path).
    /// - Returns: The dead letters.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``.
    public func deadLetters(of entity: EntityPath) async throws -> [DeadLetter] {
        try await self.messages(in: entity.origin.deadLetter).map(DeadLetter.init)
    }

    /// The dead letters of every queue and every subscription of the store.
    ///
    /// - Returns: The dead letters, by queue or subscription.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``.
    public func allDeadLetters() async throws -> [EntityPath: [DeadLetter]] {
        var result: [EntityPath: [DeadLetter]] = [:]
        for entity in try await self.receivableEntities() {
            let letters = try await self.deadLetters(of: entity)
            if !letters.isEmpty { result[entity] = letters }
        }
        return result
    }

    /// How many messages a queue or subscription holds, by state.
    ///
    /// - Parameter entity: The queue or subscription.
    /// - Returns: The counts.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``.
    public func counts(of entity: EntityPath) async throws -> EntityCounts {
        try await self.broker.counts(of: entity)
    }

    /// A JSON document of the store (a read model, a process manager's state), decoded.
    ///
    /// - Parameters:
    ///   - type: The document's type.
    ///   - collection: Its collection.
    ///   - key: Its key.
    /// - Returns: The document, or `nil` when there is none.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, or a decoding error.
    public func document<T: Decodable>(_ type: T.Type, collection: String, key: String) async throws -> T? {
        guard let document = try await self.broker.document(key, in: collection) else { return nil }
        return try MessageCoding.decode(type, from: document.data)
    }

    /// Every queue and subscription of the store.
    ///
    /// - Returns: Their paths.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``.
    public func receivableEntities() async throws -> [EntityPath] {
        var paths = try await self.broker.listQueues().map(\.path)
        for topic in try await self.broker.listTopics() {
            paths += try await self.broker.listSubscriptions(topic: topic.path.name).map(\.path)
        }
        return paths
    }

    // MARK: Expectations

    /// Fails unless no queue or subscription holds a message in any state: everything sent was
    /// handled, nothing is scheduled, deferred or locked. Dead letters are not counted.
    ///
    /// - Parameters:
    ///   - entities: The entities to check; every queue and subscription by default.
    ///   - file: The file of the expectation (`#fileID`), for the failure.
    ///   - line: The line of the expectation, for the failure.
    /// - Throws: ``ExpectationFailure`` naming the entities that are not empty, with their counts.
    public func expectIdle(_ entities: [EntityPath]? = nil, file: StaticString = #fileID, line: UInt = #line) async throws {
        var busy: [String] = []
        for entity in try await self.entities(entities) {
            var counts = try await self.counts(of: entity)
            counts.deadLettered = 0
            if counts != EntityCounts() { busy.append("\(entity): \(counts)") }
        }
        if !busy.isEmpty { throw ExpectationFailure("not idle: \(busy.joined(separator: "; "))", file: file, line: line) }
    }

    /// Fails when a queue or subscription has dead letters.
    ///
    /// - Parameters:
    ///   - entities: The entities to check; every queue and subscription by default.
    ///   - file: The file of the expectation (`#fileID`), for the failure.
    ///   - line: The line of the expectation, for the failure.
    /// - Throws: ``ExpectationFailure`` listing the dead letters with their reasons.
    public func expectNoDeadLetters(_ entities: [EntityPath]? = nil, file: StaticString = #fileID, line: UInt = #line) async throws {
        var found: [String] = []
        for entity in try await self.entities(entities) {
            for letter in try await self.deadLetters(of: entity) {
                found.append("\(entity): \(letter.messageId) (\(letter.subject ?? "?")): \(letter.reason ?? "?") \(letter.reasonDescription ?? "")")
            }
        }
        if !found.isEmpty { throw ExpectationFailure("unexpected dead letters: \(found.joined(separator: "; "))", file: file, line: line) }
    }

    /// Fails unless `entity`'s dead-letter queue holds the message `messageId`, with `reason` when given.
    ///
    /// - Parameters:
    ///   - messageId: The message id.
    ///   - entity: The queue or subscription it was dead-lettered from.
    ///   - reason: The reason it must carry.
    ///   - file: The file of the expectation (`#fileID`), for the failure.
    ///   - line: The line of the expectation, for the failure.
    /// - Returns: The dead letter.
    /// - Throws: ``ExpectationFailure`` when it is missing or has another reason.
    @discardableResult
    public func expectDeadLetter(
        _ messageId: String, in entity: EntityPath, reason: String? = nil, file: StaticString = #fileID, line: UInt = #line
    ) async throws -> DeadLetter {
        let letters = try await self.deadLetters(of: entity)
        guard let letter = letters.first(where: { $0.messageId == messageId }) else {
            throw ExpectationFailure(
                "no dead letter '\(messageId)' in \(entity); it holds \(letters.map { "\($0.messageId): \($0.reason ?? "?")" })",
                file: file, line: line
            )
        }
        if let reason, letter.reason != reason {
            throw ExpectationFailure("dead letter '\(messageId)' has reason \(letter.reason ?? "nil"), not \(reason)", file: file, line: line)
        }
        return letter
    }

    /// Fails unless `queue` holds exactly `count` commands of type `C`; returns them.
    ///
    /// - Parameters:
    ///   - type: The command type.
    ///   - queue: The queue.
    ///   - count: How many it must hold.
    ///   - file: The file of the expectation (`#fileID`), for the failure.
    ///   - line: The line of the expectation, for the failure.
    /// - Returns: The commands.
    /// - Throws: ``ExpectationFailure`` with the count found.
    @discardableResult
    public func expectCommands<C: Command>(
        _ type: C.Type, in queue: EntityPath, count: Int, file: StaticString = #fileID, line: UInt = #line
    ) async throws -> [C] {
        let commands = try await self.commands(type, in: queue)
        if commands.count != count {
            throw ExpectationFailure("expected \(count) \(C.typeName) in \(queue), found \(commands.count)", file: file, line: line)
        }
        return commands
    }

    /// Fails unless `subscription` holds exactly `count` events of type `E`; returns them.
    ///
    /// - Parameters:
    ///   - type: The event type.
    ///   - subscription: The subscription.
    ///   - count: How many it must hold.
    ///   - file: The file of the expectation (`#fileID`), for the failure.
    ///   - line: The line of the expectation, for the failure.
    /// - Returns: The events.
    /// - Throws: ``ExpectationFailure`` with the count found.
    @discardableResult
    public func expectEvents<E: Event>(
        _ type: E.Type, in subscription: EntityPath, count: Int, file: StaticString = #fileID, line: UInt = #line
    ) async throws -> [E] {
        let events = try await self.events(type, in: subscription)
        if events.count != count {
            throw ExpectationFailure("expected \(count) \(E.typeName) in \(subscription), found \(events.count)", file: file, line: line)
        }
        return events
    }

    // MARK: Helpers

    private func decoded<T: Decodable>(_ type: T.Type, typeName: String, in entity: EntityPath) async throws -> [T] {
        try await self.messages(in: entity).filter { $0.message.subject == typeName }.map {
            try MessageCoding.decode(type, from: $0.message.body)
        }
    }

    private func entities(_ entities: [EntityPath]?) async throws -> [EntityPath] {
        if let entities { return entities }
        return try await self.receivableEntities()
    }
}
