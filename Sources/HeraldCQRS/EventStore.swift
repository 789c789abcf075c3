public import HeraldCore
public import Logging

/// Reads and appends event streams on a ``/HeraldCore/TransactionalBroker`` (GUARANTEES.md §5).
///
/// An append publishes its events to the configured topic in the same commit (the outbox lives
/// in the same store), so no event is stored and never published, or published and never stored.
/// Each published event's message id is `stream@version`.
public struct EventStore: Sendable {
    private let broker: any TransactionalBroker
    private let topic: EntityPath?

    /// An event store on `broker` publishing appended events to `topic`.
    public init(broker: any TransactionalBroker, publishTo topic: EntityPath?) {
        self.broker = broker
        self.topic = topic
    }

    /// Appends `events` to `stream` if it is at `expectedVersion`; returns the new version.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/concurrencyConflict`` when another writer got there first.
    @discardableResult
    public func append(_ events: [any Event], to stream: String, expectedVersion: ExpectedVersion, correlationId: String? = nil) async throws -> Int64 {
        var transaction = BrokerTransaction()
        transaction.append(
            try events.map { try MessageCoding.eventData(for: $0, correlationId: correlationId, causationId: nil) },
            to: stream, expectedVersion: expectedVersion, publishTo: self.topic
        )
        return try await self.broker.commit(transaction).streamVersions[stream] ?? 0
    }

    /// The events of `stream` from `version` on.
    public func read(stream: String, from version: Int64 = 1, maxCount: Int = 1000) async throws -> [RecordedEvent] {
        try await self.broker.readStream(stream, from: version, maxCount: maxCount)
    }

    /// The events of every stream from `position` on.
    public func readAll(from position: Int64 = 1, maxCount: Int = 1000) async throws -> [RecordedEvent] {
        try await self.broker.readAll(from: position, maxCount: maxCount)
    }
}

/// A read model fed by every event of the store, in position order, exactly once.
public protocol Projection: Sendable {
    /// Names the projection; its checkpoint is stored under this name.
    var name: String { get }
    /// Adds to `transaction` what `event` changes in the read model. The transaction also
    /// moves the checkpoint, so a crash between the two cannot happen.
    func apply(_ event: RecordedEvent, to transaction: inout BrokerTransaction) async throws
}

/// Runs a ``Projection`` as a catch-up subscription with a stored checkpoint.
///
/// ``catchUp(batchSize:)`` applies what is new, once; ``run()`` keeps the projection caught up as a
/// `Service` (see ``ProjectionRunner/run()``).
public struct ProjectionRunner: Sendable {
    private let broker: any TransactionalBroker
    private let projection: any Projection
    /// How long ``run()`` waits before looking for new events once it has caught up.
    public let pollInterval: Duration
    let logger: Logger

    /// A runner of `projection` on `broker`.
    ///
    /// - Parameters:
    ///   - broker: The store the events and the read model are in.
    ///   - projection: The projection.
    ///   - pollInterval: How long ``run()`` waits before looking again once it has caught up.
    ///   - logger: Where ``run()`` logs the failures it retries.
    public init(
        broker: any TransactionalBroker, projection: any Projection, pollInterval: Duration = .milliseconds(500),
        logger: Logger = Logger(label: "herald.projection")
    ) {
        self.broker = broker
        self.projection = projection
        self.pollInterval = pollInterval
        var logger = logger
        logger[metadataKey: "herald.projection"] = "\(projection.name)"
        self.logger = logger
    }

    /// The position of the last event applied.
    public func checkpoint() async throws -> Int64 {
        try await self.broker.document(self.projection.name, in: "herald.checkpoints").map { try MessageCoding.decode(Int64.self, from: $0.data) } ?? 0
    }

    /// Applies every event after the checkpoint, a batch per transaction; returns how many.
    @discardableResult
    public func catchUp(batchSize: Int = 50) async throws -> Int {
        var applied = 0
        while true {
            let count = try await self.applyNextBatch(batchSize: batchSize)
            if count == 0 { return applied }
            applied += count
        }
    }

    /// Applies the next `batchSize` events after the checkpoint in one transaction, which also
    /// moves the checkpoint; returns how many (0: caught up).
    func applyNextBatch(batchSize: Int) async throws -> Int {
        let document = try await self.broker.document(self.projection.name, in: "herald.checkpoints")
        let position = try document.map { try MessageCoding.decode(Int64.self, from: $0.data) } ?? 0
        let events = try await self.broker.readAll(from: position + 1, maxCount: batchSize)
        guard let last = events.last else { return 0 }
        var transaction = BrokerTransaction()
        for event in events { try await self.projection.apply(event, to: &transaction) }
        transaction.write(
            try MessageCoding.encode(last.position), collection: "herald.checkpoints", key: self.projection.name, expectedVersion: document?.version ?? 0)
        _ = try await self.broker.commit(transaction)
        return events.count
    }
}
