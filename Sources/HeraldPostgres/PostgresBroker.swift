public import CoreMetrics
import Foundation
public import HeraldCore
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization
public import Tracing

/// The scale-out broker: any number of processes, on any number of hosts, share one PostgreSQL
/// database and compete for the same queues with the guarantees of GUARANTEES.md §4.
///
/// The broker is a `Service`: it runs on a postgres-nio `PostgresClient`, which must be running
/// too, and its ``run()`` applies the schema's migrations, then listens for wake-ups until
/// ``close()`` (or cancellation, or a graceful shutdown). Operations wait until the migrations
/// are applied.
///
/// ```swift
/// let client = PostgresClient(configuration: try PostgresBroker.clientConfiguration(url: "postgres://herald@db/herald"))
/// let broker = try PostgresBroker(client: client, configuration: .init(schema: "orders"))
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { await client.run() }
///     group.addTask { try await broker.run() }
///     try await broker.send(Message(text: "hello"), to: .queue("orders"))
///     await broker.close()
///     group.cancelAll()
/// }
/// ```
/// ``withBroker(clientConfiguration:configuration:_:)`` does that wiring for a scope.
///
/// Everything, locks included, lives in the database, so brokers in any number of processes
/// share it; times come from the broker's ``/HeraldCore/BrokerClock``, never from the database's
/// clock. A database that cannot be reached answers ``/HeraldCore/HeraldError/Code/storeUnavailable``
/// until it is back; any other database error stops the broker (fail-stop,
/// ``/HeraldCore/HeraldError/Code/storeFailed``). <doc:PostgresStore> tells how the store works.
public final class PostgresBroker: TransactionalBroker, Service {
    /// How the broker is set up.
    public struct Configuration: Sendable {
        /// The PostgreSQL schema that holds the broker's tables: brokers (and tenants, and tests)
        /// on different schemas are independent. Lowercase letters, digits and `_`, at most 48
        /// characters, not starting with a digit.
        public var schema: String
        /// The source of time; tests pass a ``/HeraldCore/ManualBrokerClock``.
        public var clock: any BrokerClock
        /// Where the broker logs.
        public var logger: Logger
        /// How often a waiting receive looks again without a wake-up.
        public var pollInterval: Duration
        /// How long an operation waits for a connection of the pool before it throws
        /// ``/HeraldCore/HeraldError/Code/storeUnavailable`` (the database is unreachable, or every
        /// connection stays busy). Only the wait is bounded: a statement once started runs to its end.
        /// Once the broker found the database unreachable, and until it answers again, operations
        /// wait at most a second, so that an outage is answered quickly.
        public var connectionTimeout: Duration
        /// How long ``PostgresBroker/run()`` keeps trying to reach the database and apply the
        /// migrations before it gives up with ``/HeraldCore/HeraldError/Code/storeFailed``.
        public var startTimeout: Duration
        /// How many dead letters one step of a bulk job handles, in one transaction: a larger step
        /// finishes a job in fewer transactions, a smaller one holds its rows for less time.
        public var bulkJobStepSize: Int = 100
        /// Called before each commit; a thrown error is treated as a failed commit (fault injection in tests).
        package var _beforeCommit: (@Sendable () throws -> Void)?
        /// Where the broker's counters go (see the README's "Tracing, metrics and logs"); `nil`:
        /// the factory `MetricsSystem.bootstrap` installed when the broker is created.
        public var metricsFactory: (any MetricsFactory)?
        /// Where the broker's spans go (see the README's "Tracing, metrics and logs"): by default the
        /// tracer in force when the configuration is made (bootstrapped, or bound with `withTracer`);
        /// `nil` for none. Without one, no span is made and nothing is added to messages.
        public var tracer: (any Tracer)?

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - schema: The schema of the broker's tables.
        ///   - clock: The source of time.
        ///   - logger: Where the broker logs.
        ///   - pollInterval: How often a waiting receive looks again without a wake-up.
        ///   - connectionTimeout: How long an operation waits for a connection of the pool.
        ///   - startTimeout: How long ``PostgresBroker/run()`` tries to reach the database.
        public init(
            schema: String = "herald", clock: any BrokerClock = SystemBrokerClock(),
            logger: Logger = Logger(label: "herald.postgres"), pollInterval: Duration = .milliseconds(250),
            connectionTimeout: Duration = .seconds(10), startTimeout: Duration = .seconds(30)
        ) {
            self.schema = schema
            self.clock = clock
            self.logger = logger
            self.pollInterval = pollInterval
            self.connectionTimeout = connectionTimeout
            self.startTimeout = startTimeout
            self._beforeCommit = nil
            self.tracer = MessagingTracing.current
        }
    }

    let configuration: Configuration
    let tables: Tables
    let statements: PreparedStatements
    let cache = EntityCache()
    let waiters = EntityWaiters()
    let locks = LockRegistry()
    let combiner = SendCombiner()
    let connections: PooledConnections
    let waker: PostgresWaker
    let statistics: TableStatistics
    let metrics: BrokerMetrics
    let tracer: (any Tracer)?
    /// Works through the bulk jobs on dead letters (see PostgresBroker+Management.swift).
    let jobs = BulkJobRunner()
    let lifecycle = Mutex(LifecycleStateMachine<CheckedContinuation<Void, Never>>())
    /// Ends ``run()``: yielded by ``close()``.
    let stopSignal = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    private let lockClockBase: (wall: Int64, monotonic: Duration)
    private let lastPrune = Mutex<Int64>(0)
    private let lastSweeps = Mutex<[Int64: Int64]>([:])
    private let lastCacheChecks = Mutex<[Int64: ContinuousClock.Instant]>([:])

    /// Creates a broker on `client`. Nothing is sent to the database until ``run()``.
    ///
    /// - Parameters:
    ///   - client: The connection pool; the caller runs it (`client.run()`) for as long as the broker.
    ///   - configuration: The schema, clock and logger.
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` for a schema name outside the rule.
    public init(client: PostgresClient, configuration: Configuration = Configuration()) throws {
        try Self.validateSchema(configuration.schema)
        self.configuration = configuration
        self.metrics = BrokerMetrics(factory: configuration.metricsFactory)
        self.tracer = MessagingTracing.active(configuration.tracer)
        self.tables = Tables(schema: configuration.schema)
        self.statements = PreparedStatements(tables: self.tables)
        self.lockClockBase = (configuration.clock.now().millisecondsSince1970, configuration.clock.monotonicNow())
        let connections = PooledConnections(client: client, connectionTimeout: configuration.connectionTimeout)
        self.connections = connections
        self.waker = PostgresWaker(
            connections: connections, waiters: self.waiters, cache: self.cache, schema: configuration.schema, logger: configuration.logger)
        self.statistics = TableStatistics(connections: connections, table: self.tables.message, logger: configuration.logger)
    }

    static func validateSchema(_ schema: String) throws(HeraldError) {
        let bytes = Array(schema.utf8)
        let valid =
            !bytes.isEmpty && bytes.count <= 48
            && bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
            && !(bytes[0] >= 0x30 && bytes[0] <= 0x39)
        guard valid else {
            throw HeraldError(.invalidArgument, "a schema name has 1 to 48 characters of a-z 0-9 _ and does not start with a digit")
        }
    }

    /// What an operation reads the time as.
    func now() -> Now {
        let clock = self.configuration.clock
        let date = clock.now()
        let lock = self.lockClockBase.wall + (clock.monotonicNow() - self.lockClockBase.monotonic).milliseconds
        return Now(date: date, wall: date.millisecondsSince1970, lock: lock)
    }

    /// Wakes the receivers waiting on `keys`, in this process and in others.
    func announce(_ keys: Set<String>) {
        self.waker.announce(keys)
    }

    /// Whether a receive of entity `id` should sweep expired messages now: at most once a second
    /// of the broker's wall clock (forwards or backwards) per entity.
    func shouldSweep(_ id: Int64, _ now: Now) -> Bool {
        self.lastSweeps.withLock { sweeps in
            if let last = sweeps[id], abs(now.wall - last) < 1000 { return false }
            if sweeps.count > 10_000 { sweeps.removeAll() }
            sweeps[id] = now.wall
            return true
        }
    }

    /// Whether an empty receive of entity `id` should check that the cached entity still exists
    /// (another process may have deleted or recreated it): at most once a second per entity, so
    /// that receivers waiting on an empty queue do not pay a second round trip for each look. A
    /// receive thus finds a queue another process recreated within a second.
    func shouldCheckCache(_ id: Int64) -> Bool {
        let now = ContinuousClock.now
        return self.lastCacheChecks.withLock { checks in
            if let last = checks[id], now - last < .seconds(1) { return false }
            if checks.count > 10_000 { checks.removeAll() }
            checks[id] = now
            return true
        }
    }

    /// Runs the occasional clean-ups (expired duplicate-detection entries, idle session rows) at
    /// most once a second per broker, inside a send.
    func shouldPrune(_ now: Now) -> Bool {
        self.lastPrune.withLock { last in
            guard now.wall - last >= 1000 else { return false }
            last = now.wall
            return true
        }
    }
}

/// The time an operation runs at.
struct Now: Sendable {
    /// Wall-clock time.
    let date: Date
    /// ``date`` in milliseconds since 1970: stamps, schedules, time-to-live, duplicate windows.
    let wall: Int64
    /// The lock clock, in milliseconds: lock and session-lock expiry.
    let lock: Int64

    /// The wall-clock time at which a lock-clock deadline falls, for display.
    func display(lock deadline: Int64) -> Date {
        self.date.addingTimeInterval(TimeInterval(deadline - self.lock) / 1000)
    }
}
