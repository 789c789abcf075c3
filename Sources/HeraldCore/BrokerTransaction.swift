public import Foundation

/// Changes that a store commits atomically: all of them or none (GUARANTEES.md §4.8).
///
/// A message handler collects here what handling a message means (completing it, the messages
/// it emits, the state it changes, the inbox record that makes it idempotent, the events it
/// appends) and hands the whole to ``TransactionalBroker/commit(_:)``. Reads happen before, with
/// versions; the commit checks those versions (optimistic concurrency), so a conflicting writer
/// gets ``HeraldError/Code/concurrencyConflict`` and nothing of the transaction is applied.
public struct BrokerTransaction: Sendable {
    /// A message to send, to a queue or topic.
    public struct Send: Sendable, Hashable {
        /// The queue or topic.
        public var entity: EntityPath
        /// The message.
        public var message: Message
    }

    /// A scheduled message to cancel, by sequence number or by message id.
    public struct Cancellation: Sendable, Hashable {
        /// The queue or topic it was sent to.
        public var entity: EntityPath
        /// Its sequence number (a topic's: what its send returned); cancelling an unknown one
        /// fails the transaction (``MessageBroker/cancelScheduled(_:in:)``).
        public var sequenceNumber: Int64?
        /// Its message id; cancelling a message that is no longer scheduled (it fired, or was
        /// cancelled) is not an error, so a timeout can be cancelled without knowing whether it fired.
        /// In a topic, every subscription's copy with that id that is still scheduled is cancelled.
        public var messageId: String?
    }

    /// A received message to set aside or dead-letter with the transaction.
    public struct Settlement: Sendable, Hashable {
        /// The lock token of the delivery.
        public var token: LockToken
        /// `nil` to defer; otherwise the dead-letter reason.
        public var deadLetterReason: String?
        /// The dead-letter description.
        public var deadLetterDescription: String?
    }

    /// A document to write (or delete) if it is at the expected version.
    public struct DocumentWrite: Sendable, Hashable {
        /// The collection, for example `orders` or `checkpoints`.
        public var collection: String
        /// The document's key within the collection.
        public var key: String
        /// The new content; `nil` deletes the document.
        public var data: Data?
        /// The version the document must have now: 0 when it must not exist yet.
        public var expectedVersion: Int64
    }

    /// Events to append to a stream, and the topic they are published to in the same commit.
    public struct Append: Sendable, Hashable {
        /// The stream.
        public var stream: String
        /// The events, in order.
        public var events: [EventData]
        /// The version the stream must be at.
        public var expectedVersion: ExpectedVersion
        /// The topic the events are published to (the outbox, committed with the append).
        public var publishTo: EntityPath?
    }

    /// Lock tokens of received messages to complete.
    public private(set) var completions: [LockToken] = []
    /// Received messages to defer or dead-letter.
    public private(set) var settlements: [Settlement] = []
    /// Messages to send, in order.
    public internal(set) var sends: [Send] = []
    /// Scheduled messages to cancel.
    public private(set) var cancellations: [Cancellation] = []
    /// Documents to write.
    public private(set) var documentWrites: [DocumentWrite] = []
    /// (handler, message id) pairs to record in the inbox; the commit fails with
    /// ``HeraldError/Code/alreadyProcessed`` if one is there already.
    public private(set) var inboxEntries: [InboxEntry] = []
    /// Events to append.
    public internal(set) var appends: [Append] = []

    /// An empty transaction.
    public init() {}

    /// Whether the transaction changes nothing.
    public var isEmpty: Bool {
        self.completions.isEmpty && self.settlements.isEmpty && self.sends.isEmpty && self.cancellations.isEmpty && self.documentWrites.isEmpty
            && self.inboxEntries.isEmpty && self.appends.isEmpty
    }

    /// The messages the transaction completes, sends and publishes; at most ``HeraldLimits/maxBatchCount``.
    public var messageCount: Int {
        self.completions.count + self.settlements.count + self.sends.count + self.appends.reduce(0) { $0 + ($1.publishTo == nil ? 0 : $1.events.count) }
    }

    /// Completes a received message with the transaction (send-via).
    public mutating func complete(_ token: LockToken) {
        self.completions.append(token)
    }

    /// Defers a received message with the transaction; it is received again only by sequence number.
    public mutating func `defer`(_ token: LockToken) {
        self.settlements.append(Settlement(token: token, deadLetterReason: nil, deadLetterDescription: nil))
    }

    /// Dead-letters a received message with the transaction.
    public mutating func deadLetter(_ token: LockToken, reason: String, description: String?) {
        self.settlements.append(Settlement(token: token, deadLetterReason: reason, deadLetterDescription: description))
    }

    /// Sends a message with the transaction.
    public mutating func send(_ message: Message, to entity: EntityPath) {
        self.sends.append(Send(entity: entity, message: message))
    }

    /// Cancels a scheduled message with the transaction.
    public mutating func cancelScheduled(_ sequenceNumber: Int64, in entity: EntityPath) {
        self.cancellations.append(Cancellation(entity: entity, sequenceNumber: sequenceNumber, messageId: nil))
    }

    /// Cancels the scheduled message with `messageId` in `entity`, if it is still scheduled.
    public mutating func cancelScheduled(messageId: String, in entity: EntityPath) {
        self.cancellations.append(Cancellation(entity: entity, sequenceNumber: nil, messageId: messageId))
    }

    /// Writes a document if it is at `expectedVersion` (0: it must not exist); it will be at `expectedVersion + 1`.
    public mutating func write(_ data: Data, collection: String, key: String, expectedVersion: Int64) {
        self.documentWrites.append(DocumentWrite(collection: collection, key: key, data: data, expectedVersion: expectedVersion))
    }

    /// Deletes a document if it is at `expectedVersion`.
    public mutating func delete(collection: String, key: String, expectedVersion: Int64) {
        self.documentWrites.append(DocumentWrite(collection: collection, key: key, data: nil, expectedVersion: expectedVersion))
    }

    /// Records that `handler` handled `messageId`; the commit fails with
    /// ``HeraldError/Code/alreadyProcessed`` when it already did.
    public mutating func recordInbox(handler: String, messageId: String) {
        self.inboxEntries.append(InboxEntry(handler: handler, messageId: messageId))
    }

    /// Appends events to a stream at `expectedVersion`, publishing each to `topic` in the same commit.
    public mutating func append(_ events: [EventData], to stream: String, expectedVersion: ExpectedVersion, publishTo topic: EntityPath? = nil) {
        self.appends.append(Append(stream: stream, events: events, expectedVersion: expectedVersion, publishTo: topic))
    }

    /// Checks the transaction's shape (limits and names) before it reaches a store.
    public func validate() throws(HeraldError) {
        if self.messageCount > HeraldLimits.maxBatchCount {
            throw HeraldError(.batchTooLarge, "a transaction holds at most \(HeraldLimits.maxBatchCount) messages; got \(self.messageCount)")
        }
        for write in self.documentWrites {
            try Self.checkKey(write.collection, "collection")
            try Self.checkKey(write.key, "document key")
            if write.expectedVersion < 0 { throw HeraldError(.invalidArgument, "a document's expected version is 0 or more") }
        }
        for entry in self.inboxEntries { try entry.check() }
        for append in self.appends {
            try Self.checkKey(append.stream, "stream name")
            for event in append.events { try Self.checkKey(event.type, "event type") }
        }
    }

    /// Checks a name of the stored state (a collection, a document key, a handler, an inbox
    /// message id, a stream, an event type): 1 to 256 UTF-8 bytes. Stores check the names a read
    /// takes with it too, so a read with a name no write could store is an error, not "absent".
    public static func checkKey(_ value: String, _ what: String) throws(HeraldError) {
        guard !value.isEmpty, value.utf8.count <= 256 else {
            throw HeraldError(.identifierTooLong, "a \(what) has 1 to 256 bytes; got \(value.utf8.count)")
        }
    }
}

extension TransactionalBroker {
    /// Which of `entries` the inbox holds, asking ``inboxContains(_:)`` for each: stores that can
    /// answer in one read implement it themselves.
    public func inboxEntries(among entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        var found: Set<InboxEntry> = []
        for entry in entries where try await self.inboxContains(entry) { found.insert(entry) }
        return found
    }
}

/// One (handler, message id) pair of the inbox.
public struct InboxEntry: Sendable, Hashable, Codable {
    /// The handler's stable name.
    public var handler: String
    /// The message it handled.
    public var messageId: String

    /// Creates an entry.
    public init(handler: String, messageId: String) {
        self.handler = handler
        self.messageId = messageId
    }

    /// Checks both names (``BrokerTransaction/checkKey(_:_:)``), as every write and read of the inbox does.
    package func check() throws(HeraldError) {
        try BrokerTransaction.checkKey(self.handler, "handler name")
        try BrokerTransaction.checkKey(self.messageId, "message id")
    }
}

/// The version an append expects its stream to be at.
public enum ExpectedVersion: Sendable, Hashable, Codable {
    /// Append whatever the version.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream's last event must have this version (1 for a stream of one event).
    case exactly(Int64)
}

extension ExpectedVersion {
    /// Checks a stream at `current` (0: no stream) against the expectation.
    ///
    /// - Throws: ``HeraldError/Code/concurrencyConflict`` when it does not match.
    public func check(current: Int64, stream: String) throws(HeraldError) {
        let matches: Bool
        switch self {
        case .any: matches = true
        case .noStream: matches = current == 0
        case .exactly(let expected): matches = current == expected
        }
        guard matches else {
            throw HeraldError(.concurrencyConflict, "stream '\(stream)' is at version \(current), not \(self)")
        }
    }
}

/// An event to append: its type, payload and metadata.
public struct EventData: Sendable, Hashable, Codable {
    /// The stable type name.
    public var type: String
    /// The encoded event.
    public var data: Data
    /// Ties together the messages of one workflow.
    public var correlationId: String?
    /// The id of the message that caused the event.
    public var causationId: String?
    /// Application properties of the message the event is published as, such as the trace
    /// context of the span that appended it. They travel with the published message only: the
    /// store keeps the event without them, and ``TransactionalBroker/readStream(_:from:maxCount:)``
    /// reads it back without them.
    public var applicationProperties: [String: PropertyValue]

    /// Creates an event.
    public init(
        type: String, data: Data, correlationId: String? = nil, causationId: String? = nil, applicationProperties: [String: PropertyValue] = [:]
    ) {
        self.type = type
        self.data = data
        self.correlationId = correlationId
        self.causationId = causationId
        self.applicationProperties = applicationProperties
    }
}

extension EventData {
    private enum CodingKeys: String, CodingKey { case type, data, correlationId, causationId, applicationProperties }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            type: try container.decode(String.self, forKey: .type), data: try container.decode(Data.self, forKey: .data),
            correlationId: try container.decodeIfPresent(String.self, forKey: .correlationId),
            causationId: try container.decodeIfPresent(String.self, forKey: .causationId),
            applicationProperties: try container.decodeIfPresent([String: PropertyValue].self, forKey: .applicationProperties) ?? [:]
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.type, forKey: .type)
        try container.encode(self.data, forKey: .data)
        try container.encodeIfPresent(self.correlationId, forKey: .correlationId)
        try container.encodeIfPresent(self.causationId, forKey: .causationId)
        if !self.applicationProperties.isEmpty { try container.encode(self.applicationProperties, forKey: .applicationProperties) }
    }

    /// The message an appended event is published as: id `stream@version`, the type as subject,
    /// the stream and version as application properties (beside the event's own
    /// ``applicationProperties``).
    public func publishedMessage(stream: String, version: Int64) -> Message {
        var properties = self.applicationProperties
        properties["stream"] = .string(stream)
        properties["version"] = .int(version)
        return Message(
            messageId: RecordedEvent.messageId(stream: stream, version: version),
            body: self.data, contentType: "application/json", subject: self.type,
            correlationId: self.correlationId, causationId: self.causationId,
            applicationProperties: properties
        )
    }
}

/// An event as the store keeps it.
public struct RecordedEvent: Sendable, Hashable, Codable {
    /// Its stream.
    public var stream: String
    /// Its version within the stream: 1, 2, 3…
    public var version: Int64
    /// Its position among all events of the store: strictly increasing, never reused.
    public var position: Int64
    /// When it was appended.
    public var recordedAt: Date
    /// The event.
    public var event: EventData

    /// Creates a recorded event.
    public init(stream: String, version: Int64, position: Int64, recordedAt: Date, event: EventData) {
        self.stream = stream
        self.version = version
        self.position = position
        self.recordedAt = recordedAt
        self.event = event
    }

    /// The message id an appended event is published with: one id scheme end to end, so a
    /// re-published event is absorbed by duplicate detection and the inbox.
    public static func messageId(stream: String, version: Int64) -> String { "\(stream)@\(version)" }
}

/// A document as the store keeps it.
public struct VersionedDocument: Sendable, Hashable {
    /// The content.
    public var data: Data
    /// 1 after the first write, then one more per write.
    public var version: Int64

    /// Creates a document.
    public init(data: Data, version: Int64) {
        self.data = data
        self.version = version
    }
}

/// What a committed transaction produced.
public struct TransactionReceipt: Sendable, Hashable {
    /// The receipt of each send, in the order of ``BrokerTransaction/sends``.
    public var sends: [SendReceipt]
    /// The version each appended stream is at after the commit.
    public var streamVersions: [String: Int64]

    /// Creates a receipt.
    public init(sends: [SendReceipt], streamVersions: [String: Int64]) {
        self.sends = sends
        self.streamVersions = streamVersions
    }
}

/// A broker whose store can commit message operations together with documents, inbox records
/// and event streams (GUARANTEES.md §4.8). The CQRS layer is built on it and imports no store.
public protocol TransactionalBroker: MessageBroker {
    /// Commits `transaction` atomically and durably: all of it, or, when a lock is lost, a
    /// version does not match or the inbox already holds an entry, none of it.
    func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt
    /// A document and its version, or `nil`.
    func document(_ key: String, in collection: String) async throws -> VersionedDocument?
    /// Every document of a collection, by key.
    func documents(in collection: String) async throws -> [String: VersionedDocument]
    /// Whether `handler` already handled `messageId`.
    func inboxContains(_ entry: InboxEntry) async throws -> Bool
    /// Which of `entries` the inbox holds: for a batch of received messages, one read instead of
    /// one per message (a default asks ``inboxContains(_:)`` for each).
    func inboxEntries(among entries: [InboxEntry]) async throws -> Set<InboxEntry>
    /// Events of `stream` from `version` on (1 is the first), at most `maxCount`.
    func readStream(_ stream: String, from version: Int64, maxCount: Int) async throws -> [RecordedEvent]
    /// Events of every stream from `position` on, in position order, at most `maxCount`.
    func readAll(from position: Int64, maxCount: Int) async throws -> [RecordedEvent]
}
