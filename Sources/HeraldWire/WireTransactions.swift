public import Foundation
public import HeraldCore

// The bodies of the transaction and state routes (GUARANTEES.md §4.8): a transaction travels as one
// request and commits all or nothing on the server.

/// A settlement inside a transaction: defer (no reason) or dead-letter (with a reason).
public struct WireSettlement: Codable, Sendable, Hashable {
    /// The lock token (``WireLockToken``) of the delivery.
    public var lockToken: String
    /// The dead-letter reason; absent for a defer.
    public var deadLetterReason: String?
    /// More about the reason, for people.
    public var deadLetterDescription: String?
    /// Creates the body from its fields.
    public init(lockToken: String, deadLetterReason: String?, deadLetterDescription: String?) {
        self.lockToken = lockToken
        self.deadLetterReason = deadLetterReason
        self.deadLetterDescription = deadLetterDescription
    }
}

/// A message sent inside a transaction.
public struct WireTransactionSend: Codable, Sendable, Hashable {
    /// The queue or topic to send to.
    public var entity: WireEntity
    /// The message.
    public var message: WireMessage
    /// Creates the body from its fields.
    public init(entity: WireEntity, message: WireMessage) {
        self.entity = entity
        self.message = message
    }
}

/// A scheduled message cancelled inside a transaction, by sequence number or by message id.
public struct WireCancellation: Codable, Sendable, Hashable {
    /// The queue or topic the message was scheduled on.
    public var entity: WireEntity
    /// The sequence number of the scheduled message; or give ``messageId``.
    public var sequenceNumber: Int64?
    /// The message id of the scheduled message; or give ``sequenceNumber``.
    public var messageId: String?
    /// Creates the body from its fields.
    public init(entity: WireEntity, sequenceNumber: Int64?, messageId: String?) {
        self.entity = entity
        self.sequenceNumber = sequenceNumber
        self.messageId = messageId
    }
}

/// A versioned document written (or, without `data`, deleted) if its version is `expectedVersion`.
public struct WireDocumentWrite: Codable, Sendable, Hashable {
    /// The collection the document belongs to.
    public var collection: String
    /// The document's key within its collection.
    public var key: String
    /// The new content, base64; absent to delete the document.
    public var data: String?
    /// The version the document must have now; 0 for a document that must not exist.
    public var expectedVersion: Int64
    /// Creates the body from its fields.
    public init(collection: String, key: String, data: String?, expectedVersion: Int64) {
        self.collection = collection
        self.key = key
        self.data = data
        self.expectedVersion = expectedVersion
    }
}

/// A handler's inbox record: this handler has handled this message.
public struct WireInboxEntry: Codable, Sendable, Hashable {
    /// The handler that handled the message.
    public var handler: String
    /// The message id.
    public var messageId: String
    /// Creates the wire form of `entry`.
    public init(_ entry: InboxEntry) {
        self.handler = entry.handler
        self.messageId = entry.messageId
    }
    /// The inbox record.
    public var entry: InboxEntry { InboxEntry(handler: self.handler, messageId: self.messageId) }
}

/// An event to append.
public struct WireEventData: Codable, Sendable, Hashable {
    /// The event's type name.
    public var type: String
    /// The event's content, base64.
    public var data: String
    /// The correlation id.
    public var correlationId: String?
    /// The id of the message or event that caused it.
    public var causationId: String?
    /// Application properties of the message the event is published as (the trace context, for
    /// example); absent for none. Not stored with the event.
    public var applicationProperties: [String: WireProperty]?
    /// Creates the wire form of `event`.
    public init(_ event: EventData) {
        self.type = event.type
        self.data = event.data.base64EncodedString()
        self.correlationId = event.correlationId
        self.causationId = event.causationId
        self.applicationProperties = event.applicationProperties.isEmpty ? nil : event.applicationProperties.mapValues(WireProperty.init)
    }
    /// The event data.
    public func event() throws(HeraldError) -> EventData {
        EventData(
            type: self.type, data: try WireBase64.decode(self.data, "an event's data"), correlationId: self.correlationId,
            causationId: self.causationId, applicationProperties: try WireProperty.properties(self.applicationProperties)
        )
    }
}

/// Events appended to a stream at an expected version, optionally published to a topic in the
/// same commit. `expect` is `any`, `noStream` or `exactly` (with `version`).
public struct WireAppend: Codable, Sendable, Hashable {
    /// The event stream.
    public var stream: String
    /// The events to append, in order.
    public var events: [WireEventData]
    /// The version the stream must have: `any`, `noStream`, or `exactly` with ``version``.
    public var expect: String
    /// The version the stream must have, when ``expect`` is `exactly`.
    public var version: Int64?
    /// The topic the events are published to, in the same commit (the outbox); absent for none.
    public var publishTo: WireEntity?
    /// Creates the wire form of `append`.
    public init(_ append: BrokerTransaction.Append) {
        self.stream = append.stream
        self.events = append.events.map(WireEventData.init)
        switch append.expectedVersion {
        case .any: self.expect = "any"
        case .noStream: self.expect = "noStream"
        case .exactly(let version):
            self.expect = "exactly"
            self.version = version
        }
        self.publishTo = append.publishTo.map(WireEntity.init)
    }
    /// The expected version ``expect`` and ``version`` describe.
    public func expectedVersion() throws(HeraldError) -> ExpectedVersion {
        switch (self.expect, self.version) {
        case ("any", nil): .any
        case ("noStream", nil): .noStream
        case ("exactly", let version?): .exactly(version)
        default: throw HeraldError(.invalidArgument, "expect is any, noStream, or exactly with a version")
        }
    }
}

/// `POST /v1/transactions/commit`: everything commits together, or nothing does.
public struct CommitRequest: Codable, Sendable, Hashable {
    /// Lock tokens of deliveries to complete.
    public var completions: [String]?
    /// Deliveries to defer or dead-letter.
    public var settlements: [WireSettlement]?
    /// Messages to send.
    public var sends: [WireTransactionSend]?
    /// Scheduled messages to cancel.
    public var cancellations: [WireCancellation]?
    /// Documents to write or delete, each at its expected version.
    public var documentWrites: [WireDocumentWrite]?
    /// Inbox records to add: these handlers handled these messages.
    public var inboxEntries: [WireInboxEntry]?
    /// Events to append to streams.
    public var appends: [WireAppend]?

    /// Creates the wire form of `transaction`.
    public init(_ transaction: BrokerTransaction) {
        func nonEmpty<T>(_ values: [T]) -> [T]? { values.isEmpty ? nil : values }
        self.completions = nonEmpty(transaction.completions.map(WireLockToken.encode))
        self.settlements = nonEmpty(
            transaction.settlements.map {
                WireSettlement(
                    lockToken: WireLockToken.encode($0.token), deadLetterReason: $0.deadLetterReason, deadLetterDescription: $0.deadLetterDescription)
            }
        )
        self.sends = nonEmpty(transaction.sends.map { WireTransactionSend(entity: WireEntity($0.entity), message: WireMessage($0.message)) })
        self.cancellations = nonEmpty(
            transaction.cancellations.map { WireCancellation(entity: WireEntity($0.entity), sequenceNumber: $0.sequenceNumber, messageId: $0.messageId) }
        )
        self.documentWrites = nonEmpty(
            transaction.documentWrites.map {
                WireDocumentWrite(collection: $0.collection, key: $0.key, data: $0.data?.base64EncodedString(), expectedVersion: $0.expectedVersion)
            }
        )
        self.inboxEntries = nonEmpty(transaction.inboxEntries.map(WireInboxEntry.init))
        self.appends = nonEmpty(transaction.appends.map(WireAppend.init))
    }

    /// The transaction, rebuilt in the request's order.
    public func transaction() throws(HeraldError) -> BrokerTransaction {
        var transaction = BrokerTransaction()
        for token in try WireLockToken.decode(self.completions ?? []) { transaction.complete(token) }
        for settlement in self.settlements ?? [] {
            let token = try WireLockToken.decode(settlement.lockToken)
            if let reason = settlement.deadLetterReason {
                transaction.deadLetter(token, reason: reason, description: settlement.deadLetterDescription)
            } else {
                guard settlement.deadLetterDescription == nil else {
                    throw HeraldError(.invalidArgument, "a settlement with a deadLetterDescription needs a deadLetterReason")
                }
                transaction.defer(token)
            }
        }
        for send in self.sends ?? [] { transaction.send(try send.message.message(), to: try send.entity.path()) }
        for cancellation in self.cancellations ?? [] {
            let entity = try cancellation.entity.path()
            switch (cancellation.sequenceNumber, cancellation.messageId) {
            case (let sequenceNumber?, nil): transaction.cancelScheduled(sequenceNumber, in: entity)
            case (nil, let messageId?): transaction.cancelScheduled(messageId: messageId, in: entity)
            default: throw HeraldError(.invalidArgument, "a cancellation names a sequenceNumber or a messageId")
            }
        }
        for write in self.documentWrites ?? [] {
            if let data = write.data {
                transaction.write(
                    try WireBase64.decode(data, "a document's data"), collection: write.collection, key: write.key, expectedVersion: write.expectedVersion)
            } else {
                transaction.delete(collection: write.collection, key: write.key, expectedVersion: write.expectedVersion)
            }
        }
        for entry in self.inboxEntries ?? [] { transaction.recordInbox(handler: entry.handler, messageId: entry.messageId) }
        for append in self.appends ?? [] {
            var events: [EventData] = []
            for event in append.events { events.append(try event.event()) }
            transaction.append(events, to: append.stream, expectedVersion: try append.expectedVersion(), publishTo: try append.publishTo?.path())
        }
        return transaction
    }
}

/// The answer of `commit`: a receipt per send, in order, and each appended stream's new version.
public struct CommitResponse: Codable, Sendable, Hashable {
    /// The receipts of the transaction's sends, in order.
    public var receipts: [WireReceipt]
    /// The version of each appended stream after the commit.
    public var streamVersions: [String: Int64]
    /// Creates the wire form of `receipt`.
    public init(_ receipt: TransactionReceipt) {
        self.receipts = receipt.sends.map(WireReceipt.init)
        self.streamVersions = receipt.streamVersions
    }
    /// The transaction receipt.
    public var receipt: TransactionReceipt {
        TransactionReceipt(sends: self.receipts.map(\.receipt), streamVersions: self.streamVersions)
    }
}

/// A document with its version.
public struct WireDocument: Codable, Sendable, Hashable {
    /// Base64.
    public var data: String
    /// The document's version: 1 after its first write, one more after each.
    public var version: Int64
    /// Creates the wire form of `document`.
    public init(_ document: VersionedDocument) {
        self.data = document.data.base64EncodedString()
        self.version = document.version
    }
    /// The document.
    public func document() throws(HeraldError) -> VersionedDocument {
        VersionedDocument(data: try WireBase64.decode(self.data, "a document's data"), version: self.version)
    }
}

/// `POST /v1/state/documents/get`.
public struct DocumentRequest: Codable, Sendable, Hashable {
    /// The collection.
    public var collection: String
    /// The document's key within its collection.
    public var key: String
    /// Creates the body from its fields.
    public init(collection: String, key: String) {
        self.collection = collection
        self.key = key
    }
}

/// The answer of `getDocument`: the document, or none.
public struct DocumentResponse: Codable, Sendable, Hashable {
    /// The document; absent when there is none.
    public var document: WireDocument?
    /// Creates the body from its fields.
    public init(document: WireDocument?) { self.document = document }
}

/// `POST /v1/state/documents/list`.
public struct CollectionRequest: Codable, Sendable, Hashable {
    /// The collection to list.
    public var collection: String
    /// Creates the body from its fields.
    public init(collection: String) { self.collection = collection }
}

/// The answer of `listDocuments`, by key.
public struct DocumentsResponse: Codable, Sendable, Hashable {
    /// The documents of the collection, by key.
    public var documents: [String: WireDocument]
    /// Creates the body from its fields.
    public init(documents: [String: WireDocument]) { self.documents = documents }
}

/// The answer of `inboxContains`.
public struct InboxResponse: Codable, Sendable, Hashable {
    /// Whether the inbox holds the record.
    public var contains: Bool
    /// Creates the body from its fields.
    public init(contains: Bool) { self.contains = contains }
}

/// `POST /v1/events/read-stream`.
public struct ReadStreamRequest: Codable, Sendable, Hashable {
    /// The stream to read.
    public var stream: String
    /// The first version to read.
    public var fromVersion: Int64
    /// The most items to return.
    public var maxCount: Int
    /// Creates the body from its fields.
    public init(stream: String, fromVersion: Int64, maxCount: Int) {
        self.stream = stream
        self.fromVersion = fromVersion
        self.maxCount = maxCount
    }
}

/// `POST /v1/events/read-all`.
public struct ReadAllRequest: Codable, Sendable, Hashable {
    /// The first position (in the log of all events) to read.
    public var fromPosition: Int64
    /// The most items to return.
    public var maxCount: Int
    /// Creates the body from its fields.
    public init(fromPosition: Int64, maxCount: Int) {
        self.fromPosition = fromPosition
        self.maxCount = maxCount
    }
}

/// A stored event.
public struct WireRecordedEvent: Codable, Sendable, Hashable {
    /// The stream the event belongs to.
    public var stream: String
    /// The event's version in its stream.
    public var version: Int64
    /// The event's position in the log of all events.
    public var position: Int64
    /// When the event was recorded, in milliseconds since 1970.
    public var recordedAt: Int64
    /// The event.
    public var event: WireEventData
    /// Creates the wire form of `recorded`.
    public init(_ recorded: RecordedEvent) {
        self.stream = recorded.stream
        self.version = recorded.version
        self.position = recorded.position
        self.recordedAt = recorded.recordedAt.millisecondsSince1970
        self.event = WireEventData(recorded.event)
    }
    /// The recorded event.
    public func recorded() throws(HeraldError) -> RecordedEvent {
        RecordedEvent(
            stream: self.stream, version: self.version, position: self.position, recordedAt: Date(millisecondsSince1970: self.recordedAt),
            event: try self.event.event())
    }
}

/// The answer of the event reads.
public struct EventsResponse: Codable, Sendable, Hashable {
    /// The events, in order.
    public var events: [WireRecordedEvent]
    /// Creates the body from its fields.
    public init(events: [WireRecordedEvent]) { self.events = events }
}

/// Base64 fields, decoded with a clear error.
public enum WireBase64 {
    /// The bytes of `string`, or `invalidArgument` naming `what`.
    public static func decode(_ string: String, _ what: String) throws(HeraldError) -> Data {
        guard let data = Data(base64Encoded: string) else { throw HeraldError(.invalidArgument, "\(what) is not base64") }
        return data
    }
}
