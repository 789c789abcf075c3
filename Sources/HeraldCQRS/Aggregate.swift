public import HeraldCore

/// An event-sourced aggregate: its state is the fold of its stream's events.
///
/// ```swift
/// struct Order: Aggregate {
///     static let category = "order"
///     static let eventTypes = EventTypes([OrderPlaced.self, OrderConfirmed.self])
///     var status = "new"
///     init(id: String) {}
///     mutating func apply(_ event: any Event) {
///         if event is OrderConfirmed { status = "confirmed" }
///     }
/// }
/// ```
public protocol Aggregate: Sendable {
    /// The stream of an aggregate is `category-id`.
    static var category: String { get }
    /// The events the aggregate's stream holds.
    static var eventTypes: EventTypes { get }
    /// A new, empty aggregate.
    init(id: String)
    /// Folds one event into the state.
    mutating func apply(_ event: any Event)
}

extension Aggregate {
    /// The stream that holds the aggregate `id`.
    public static func stream(_ id: String) -> String { "\(Self.category)-\(id)" }
}

/// An aggregate loaded from its stream, with the version new events must be appended at.
public struct AggregateRoot<A: Aggregate>: Sendable {
    /// The aggregate's id.
    public let id: String
    /// The state.
    public private(set) var state: A
    /// The stream's version when loaded (0: the stream does not exist yet).
    public let version: Int64
    /// Events raised since loading, not yet saved.
    public private(set) var pending: [any Event] = []

    /// An aggregate at `version` whose state is already known, for loaders that keep snapshots
    /// or a cache instead of replaying the whole stream with ``HandlerContext/load(_:id:)``.
    ///
    /// - Parameters:
    ///   - id: The aggregate's id.
    ///   - state: Its state after the events up to `version`.
    ///   - version: The version of the last event folded into `state` (0: none).
    public init(id: String, state: A, version: Int64) {
        self.id = id
        self.state = state
        self.version = version
    }

    /// Applies `event` to the state and keeps it for ``HandlerContext/save(_:publishTo:)``.
    public mutating func raise(_ event: any Event) {
        self.state.apply(event)
        self.pending.append(event)
    }
}

extension HandlerContext {
    /// Rehydrates aggregate `id` from its stream.
    public func load<A: Aggregate>(_ type: A.Type, id: String) async throws -> AggregateRoot<A> {
        var state = A(id: id)
        var version: Int64 = 0
        while true {
            let events = try await self.store.readStream(A.stream(id), from: version + 1, maxCount: 500)
            for recorded in events {
                if let event = try A.eventTypes.decode(typeName: recorded.event.type, data: recorded.event.data) {
                    state.apply(event)
                }
                version = recorded.version
            }
            if events.count < 500 { break }
        }
        return AggregateRoot(id: id, state: state, version: version)
    }

    /// Appends the aggregate's raised events at the version it was loaded at (a concurrent
    /// writer makes the commit fail with `concurrencyConflict`, and the message is retried), and
    /// publishes them to `topic` in the same commit.
    public func save<A: Aggregate>(_ root: AggregateRoot<A>, publishTo topic: EntityPath?) throws {
        guard !root.pending.isEmpty else { return }
        try self.append(root.pending, to: A.stream(root.id), expectedVersion: root.version == 0 ? .noStream : .exactly(root.version), publishTo: topic)
    }
}
