public import Foundation
public import HeraldCQRS
public import HeraldCore
public import HeraldSQLite
import Synchronization

/// A sandbox for testing your own handlers, aggregates, process managers and projections: an
/// in-memory SQLite store that reads a ``/HeraldCore/ManualBrokerClock``, helpers to send
/// commands and publish events, processors that you run step by step, and accessors and
/// expectations on what was sent, published and dead-lettered.
///
/// Nothing runs in the background: ``runUntilIdle(maxRounds:)`` drives every registered
/// processor (with ``/HeraldCQRS/MessageProcessor/processAvailable()``) and projection until a
/// whole round finds nothing to do, and time moves only by ``advance(by:)``. Retry back-offs,
/// scheduled timeouts, lock expiry and sequence-gate timeouts therefore happen exactly when the
/// test says so.
///
/// ```swift
/// try await HeraldTestHarness.run { harness in
///     let orders = try await harness.createQueue("orders")
///     let events = try await harness.createTopic("events")
///     let audit = try await harness.createSubscription("audit", topic: "events")
///     var handlers = MessageHandlers()
///     handlers.on(PlaceOrder.self) { command, context in
///         try context.publish(OrderPlaced(orderId: command.orderId), to: events)
///     }
///     harness.processor(for: orders, handlers: handlers)
///
///     try await harness.send(PlaceOrder(commandId: "c-1", orderId: "o-1"), to: orders)
///     try await harness.runUntilIdle()
///
///     #expect(try await harness.events(OrderPlaced.self, in: audit).map(\.orderId) == ["o-1"])
///     try await harness.expectNoDeadLetters()
/// }
/// ```
///
/// The store is ``/HeraldSQLite/SQLiteBroker/inMemory(configuration:)`` by default: the embedded
/// store with its whole contract except durability, with no file to create or delete.
/// ``Storage/temporaryFile`` puts it in a file of a temporary directory instead, to look at with
/// `sqlite3` after a failure, say.
///
/// The harness is `Sendable`; its methods may be called from any task, but a test normally
/// drives it from one.
public final class HeraldTestHarness: Sendable {
    /// Where the harness keeps its store.
    public enum Storage: Sendable, Hashable {
        /// A new in-memory database (``/HeraldSQLite/SQLiteBroker/inMemory(configuration:)``),
        /// discarded at ``HeraldTestHarness/shutdown()``. The default.
        case memory
        /// A database file in a new temporary directory (``HeraldTestHarness/directory``), deleted
        /// at ``HeraldTestHarness/shutdown()``.
        case temporaryFile
    }

    /// A processor the harness drives, with the queue or subscription it reads.
    public struct RegisteredProcessor: Sendable {
        /// The queue or subscription the processor receives from.
        public let source: EntityPath
        /// The processor.
        public let processor: MessageProcessor
    }

    private struct State {
        var processors: [RegisteredProcessor] = []
        var projections: [ProjectionRunner] = []
        var isShutDown = false
    }

    /// The wall-clock time a harness's clock starts at unless told otherwise: 2027-01-15 08:00 UTC.
    public static let defaultStart = Date(timeIntervalSince1970: 1_800_000_000)

    /// The clock the store and every processor the harness builds read. Move it with ``advance(by:)``.
    public let clock: ManualBrokerClock
    /// The store: a fresh SQLite database, in memory or in ``directory`` (see ``Storage``).
    public let broker: SQLiteBroker
    /// ``broker`` as the protocol the CQRS layer builds on, for code that takes any store.
    public var store: any TransactionalBroker { self.broker }
    /// The temporary directory that holds the database file with ``Storage/temporaryFile``
    /// (``shutdown()`` deletes it); `nil` in memory.
    public let directory: URL?
    private let state = Mutex(State())

    /// Creates a harness with an empty store.
    ///
    /// - Parameters:
    ///   - start: The wall-clock time the manual clock starts at.
    ///   - storage: In memory (the default), or in a file of a new temporary directory.
    /// - Throws: ``/HeraldCore/HeraldError/Code/storeFailed`` when the store cannot be created.
    public init(start: Date = HeraldTestHarness.defaultStart, storage: Storage = .memory) throws {
        let clock = ManualBrokerClock(start: start)
        let configuration = SQLiteBroker.Configuration(clock: clock)
        self.clock = clock
        switch storage {
        case .memory:
            self.directory = nil
            self.broker = try SQLiteBroker.runningInMemory(configuration: configuration)
        case .temporaryFile:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-harness-\(UUID().uuidString)")
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw HeraldError(.storeFailed, "cannot create the harness directory \(directory.path): \(error)")
            }
            self.directory = directory
            self.broker = try SQLiteBroker.running(path: directory.appendingPathComponent("herald.sqlite").path, configuration: configuration)
        }
    }

    /// Creates a harness, runs `body` with it and shuts it down, also when `body` throws.
    ///
    /// - Parameters:
    ///   - start: The wall-clock time the manual clock starts at.
    ///   - storage: In memory (the default), or in a file of a new temporary directory.
    ///   - body: The test.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws, or ``/HeraldCore/HeraldError/Code/storeFailed`` when the store cannot be created.
    public static func run<T: Sendable>(
        start: Date = HeraldTestHarness.defaultStart, storage: Storage = .memory, _ body: (HeraldTestHarness) async throws -> T
    ) async throws -> T {
        let harness = try HeraldTestHarness(start: start, storage: storage)
        do {
            let result = try await body(harness)
            await harness.shutdown()
            return result
        } catch {
            await harness.shutdown()
            throw error
        }
    }

    /// Stops the registered processors, closes the store (which discards an in-memory one) and
    /// deletes ``directory``, if any. Calling it again does nothing.
    public func shutdown() async {
        let processors = self.state.withLock { state -> [RegisteredProcessor]? in
            if state.isShutDown { return nil }
            state.isShutDown = true
            return state.processors
        }
        guard let processors else { return }
        for registered in processors { registered.processor.stop() }
        await self.broker.close()
        if let directory = self.directory { try? FileManager.default.removeItem(at: directory) }
    }

    // MARK: Entities

    /// Creates a queue.
    ///
    /// - Parameters:
    ///   - name: The queue's name.
    ///   - options: Its options (lock duration, duplicate-detection window, …).
    /// - Returns: The queue's path.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, for example `entityAlreadyExists`.
    @discardableResult
    public func createQueue(_ name: String, options: EntityOptions = EntityOptions()) async throws -> EntityPath {
        try await self.broker.createQueue(name, options: options)
        return .queue(name)
    }

    /// Creates a topic.
    ///
    /// - Parameters:
    ///   - name: The topic's name.
    ///   - options: Its options.
    /// - Returns: The topic's path.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``.
    @discardableResult
    public func createTopic(_ name: String, options: EntityOptions = EntityOptions()) async throws -> EntityPath {
        try await self.broker.createTopic(name, options: options)
        return .topic(name)
    }

    /// Creates a subscription of `topic`.
    ///
    /// - Parameters:
    ///   - name: The subscription's name.
    ///   - topic: The topic's name.
    ///   - options: Its options.
    ///   - filter: Which of the topic's messages it receives; all by default.
    /// - Returns: The subscription's path.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, for example `entityNotFound` for a missing topic.
    @discardableResult
    public func createSubscription(
        _ name: String, topic: String, options: EntityOptions = EntityOptions(), filter: SubscriptionFilter = .all
    ) async throws -> EntityPath {
        try await self.broker.createSubscription(name, topic: topic, options: options, filter: filter)
        return .subscription(name, of: topic)
    }

    // MARK: Sending

    /// Sends `command` to `queue`, as ``/HeraldCQRS/CommandBus`` does, with its id as message id.
    ///
    /// - Parameters:
    ///   - command: The command.
    ///   - queue: The queue.
    ///   - sessionId: For session queues.
    ///   - correlationId: The workflow it belongs to; its command id by default.
    ///   - causationId: The message that caused it.
    ///   - delay: Schedules it this long after the harness clock's now.
    /// - Returns: The broker's receipt; `isDuplicate` when duplicate detection absorbed it.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, or an encoding error.
    @discardableResult
    public func send(
        _ command: some Command, to queue: EntityPath, sessionId: String? = nil, correlationId: String? = nil,
        causationId: String? = nil, delay: Duration? = nil
    ) async throws -> SendReceipt {
        let message = try MessageCoding.message(
            for: command, correlationId: correlationId ?? command.commandId, causationId: causationId, sessionId: sessionId,
            scheduledAt: delay.map { self.clock.now().addingTimeInterval($0.timeInterval) }
        )
        return try await self.broker.send(message, to: queue)
    }

    /// Publishes `event` to `topic` (or sends it to a queue).
    ///
    /// - Parameters:
    ///   - event: The event.
    ///   - topic: The topic.
    ///   - messageId: Its message id; publish twice with one id to test duplicate handling. A UUID by default.
    ///   - correlationId: The workflow it belongs to.
    ///   - causationId: The message that caused it.
    /// - Returns: The broker's receipt.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``, or an encoding error.
    @discardableResult
    public func publish(
        _ event: some Event, to topic: EntityPath, messageId: String = UUID().uuidString, correlationId: String? = nil,
        causationId: String? = nil
    ) async throws -> SendReceipt {
        let message = try MessageCoding.message(for: event, messageId: messageId, correlationId: correlationId, causationId: causationId)
        return try await self.broker.send(message, to: topic)
    }

    /// Sends a raw message, for example a poison one whose body does not decode.
    ///
    /// - Parameters:
    ///   - message: The message.
    ///   - entity: The queue or topic.
    /// - Returns: The broker's receipt.
    /// - Throws: The broker's ``/HeraldCore/HeraldError``.
    @discardableResult
    public func send(_ message: Message, to entity: EntityPath) async throws -> SendReceipt {
        try await self.broker.send(message, to: entity)
    }

    /// An event store on the harness's store.
    ///
    /// - Parameter topic: Where appended events are published in the same commit; `nil` for none.
    /// - Returns: The event store.
    public func eventStore(publishTo topic: EntityPath? = nil) -> EventStore {
        EventStore(broker: self.broker, publishTo: topic)
    }

    // MARK: Processors and projections

    /// Builds a processor of `source` on the harness's store and clock, and registers it with
    /// ``runUntilIdle(maxRounds:)``.
    ///
    /// - Parameters:
    ///   - source: The queue or subscription to receive from.
    ///   - handlers: The handlers to dispatch to.
    ///   - name: Names the processor; the source's path by default.
    ///   - configure: Changes the configuration (retry policy, sequence gate, sessions…). The
    ///     default receives 10 messages at a time.
    /// - Returns: The processor, for its ``/HeraldCQRS/MessageProcessor/statistics``.
    @discardableResult
    public func processor(
        for source: EntityPath, handlers: MessageHandlers, name: String? = nil,
        configure: (inout MessageProcessor.Configuration) -> Void = { _ in }
    ) -> MessageProcessor {
        var configuration = MessageProcessor.Configuration(name: name ?? source.description, maxConcurrency: 1, receiveBatchSize: 10)
        configure(&configuration)
        let processor = MessageProcessor(broker: self.broker, source: source, handlers: handlers, configuration: configuration, clock: self.clock)
        self.register(processor, source: source)
        return processor
    }

    /// Registers a processor built elsewhere with ``runUntilIdle(maxRounds:)``. Build it on
    /// ``broker`` (or a wrapper of it) with ``clock``, or back-offs and timeouts will not follow
    /// ``advance(by:)``.
    ///
    /// - Parameters:
    ///   - processor: The processor.
    ///   - source: The queue or subscription it receives from.
    public func register(_ processor: MessageProcessor, source: EntityPath) {
        self.state.withLock { $0.processors.append(RegisteredProcessor(source: source, processor: processor)) }
    }

    /// The processors registered so far, in registration order.
    public var processors: [RegisteredProcessor] { self.state.withLock { $0.processors } }

    /// Registers `projection`, which ``runUntilIdle(maxRounds:)`` catches up in every round.
    ///
    /// - Parameter projection: The projection.
    /// - Returns: Its runner, for its checkpoint.
    @discardableResult
    public func register(_ projection: any Projection) -> ProjectionRunner {
        let runner = ProjectionRunner(broker: self.broker, projection: projection)
        self.state.withLock { $0.projections.append(runner) }
        return runner
    }

    // MARK: Running

    /// Handles everything that is ready now: runs every registered processor's
    /// ``/HeraldCQRS/MessageProcessor/processAvailable()`` and catches every registered
    /// projection up, round after round, until a whole round handles nothing.
    ///
    /// Messages waiting for their time (a retry's back-off, a scheduled timeout) stay where they
    /// are until ``advance(by:)`` moves the clock past it.
    ///
    /// - Parameter maxRounds: Rounds after which the harness gives up (a handler that keeps
    ///   producing work).
    /// - Returns: The number of messages received and events projected.
    /// - Throws: ``ExpectationFailure`` when the store is still busy after `maxRounds`, or the
    ///   error of a processor or projection.
    @discardableResult
    public func runUntilIdle(maxRounds: Int = 1000) async throws -> Int {
        let (processors, projections) = self.state.withLock { ($0.processors, $0.projections) }
        var total = 0
        for _ in 0..<maxRounds {
            var round = 0
            for registered in processors {
                round += try await registered.processor.processAvailable()
            }
            for runner in projections {
                round += try await runner.catchUp()
            }
            if round == 0 { return total }
            total += round
        }
        throw ExpectationFailure("still busy after \(maxRounds) rounds of runUntilIdle (\(total) messages and events handled)")
    }

    /// Moves the clock forward: scheduled messages, retry back-offs, lock expiry, TTL, duplicate
    /// windows and sequence-gate timeouts all follow it.
    ///
    /// - Parameter duration: How far to move it.
    public func advance(by duration: Duration) {
        self.clock.advance(by: duration)
    }

    /// Runs until idle, then, while a registered source still holds messages that wait for
    /// their time (a retry's back-off, a scheduled message, a held out-of-order message),
    /// advances the clock by `step` and runs again, until nothing waits or `limit` has passed.
    ///
    /// - Parameters:
    ///   - step: How far the clock moves between rounds.
    ///   - limit: The most clock time to let pass.
    /// - Returns: How far the clock moved.
    /// - Throws: What ``runUntilIdle(maxRounds:)`` throws.
    @discardableResult
    public func runUntilSettled(step: Duration = .seconds(1), limit: Duration = .seconds(300)) async throws -> Duration {
        var elapsed = Duration.zero
        while true {
            try await self.runUntilIdle()
            var waiting = 0
            for registered in self.processors {
                let counts = try await self.broker.counts(of: registered.source)
                waiting += counts.active + counts.scheduled + counts.deferred + counts.locked
            }
            if waiting == 0 || elapsed >= limit { return elapsed }
            self.clock.advance(by: step)
            elapsed += step
        }
    }
}
