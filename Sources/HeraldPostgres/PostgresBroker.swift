public import Foundation
public import HeraldCore
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// The scale-out broker: any number of processes, on any number of hosts, share one PostgreSQL
/// database and compete for the same queues with the guarantees of DESIGN.md §4.
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
/// ## Where state lives
/// Everything, locks included, lives in the database, so it holds across processes: a receive
/// claims messages with `SELECT … FOR UPDATE SKIP LOCKED` and updates their lease (lock nonce,
/// `locked_until`, delivery count) in the same statement; settlement checks the nonce and the
/// expiry in the row it changes. Session locks are rows of the `session` table; the duplicate
/// window is the `dedup` table. Sequence numbers come from a counter in the entity's row, whose
/// row lock a send holds until it commits: sends to one entity commit in sequence-number order, so
/// messages become visible in that order and a batch gets consecutive numbers.
///
/// ## Time
/// Every time-dependent statement takes its times as parameters computed from the broker's
/// ``HeraldCore/BrokerClock`` (tests pass a ``HeraldCore/ManualBrokerClock``); the database's own
/// clock is never read. Wall-clock time (`now()`) stamps messages and decides scheduling,
/// time-to-live and duplicate windows, as in the embedded store. Locks and session locks expire by
/// the *lock clock*: the wall-clock time read once when the broker is created, advanced by the
/// clock's monotonic reading since. Lock expiries written by different processes are thus
/// comparable (they are wall-clock times, as far as the hosts' clocks agree, which NTP keeps within
/// milliseconds), while a wall-clock jump inside a running process neither steals a lock early nor
/// keeps one forever. The lock duration should stay well above the clock skew between hosts.
///
/// ## Waking receivers
/// A receive that waits sleeps until a commit announces the entity or ``Configuration/pollInterval``
/// passes (lock expiries and scheduled times make messages visible without a commit). Commits of
/// this process wake its receivers at once; other processes hear of them through
/// `LISTEN`/`NOTIFY` on one channel per schema. The notification is a hint, never the delivery
/// path: it is sent after the commit, outside the sending transaction and with asynchronous
/// commit, coalescing what accumulated meanwhile, so sends never wait on PostgreSQL's notify lock.
///
/// ## Failure
/// A database error that is not an answer of the broker's own (a lost lock, a missing entity…)
/// stops the broker (fail-stop, DESIGN.md §4.10): a commit whose outcome is unknown is never
/// retried or acknowledged, and every later call throws ``HeraldCore/HeraldError/Code/storeFailed``.
/// Deadlocks and serialization failures, which PostgreSQL rolls back, are retried.
///
/// ## Hygiene
/// Completed messages are deleted, expired duplicate-detection entries and idle session rows are
/// pruned (a bounded number, at most once a second per broker). The message table has
/// `fillfactor = 50`, so locking a message is a HOT update that writes no index entry, and
/// aggressive per-table autovacuum settings (vacuum after 1% of the rows changed, no cost delay),
/// so the dead rows of completed messages are reclaimed while the queue is busy. Receive walks the
/// `message_ready` index in sequence order, which stays fast with a million messages queued; after
/// a burst of inserts the broker refreshes the table's planner statistics itself rather than wait
/// for autovacuum. As with every `SKIP LOCKED` queue, a transaction left open
/// elsewhere in the database holds back the xmin horizon, so vacuum cannot reclaim dead rows and
/// scans walk over them; keep `idle_in_transaction_session_timeout` set, and keep long analytical
/// queries off the primary.
public final class PostgresBroker: TransactionalBroker, Service {
    /// How the broker is set up.
    public struct Configuration: Sendable {
        /// The PostgreSQL schema that holds the broker's tables: brokers (and tenants, and tests)
        /// on different schemas are independent. Lowercase letters, digits and `_`, at most 48
        /// characters, not starting with a digit.
        public var schema: String
        /// The source of time; tests pass a ``HeraldCore/ManualBrokerClock``.
        public var clock: any BrokerClock
        /// Where the broker logs.
        public var logger: Logger
        /// How often a waiting receive looks again without a wake-up.
        public var pollInterval: Duration
        /// Called before each commit; a thrown error is treated as a failed commit (fault injection in tests).
        public var _beforeCommit: (@Sendable () throws -> Void)?

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - schema: The schema of the broker's tables.
        ///   - clock: The source of time.
        ///   - logger: Where the broker logs.
        ///   - pollInterval: How often a waiting receive looks again without a wake-up.
        public init(
            schema: String = "herald", clock: any BrokerClock = SystemBrokerClock(),
            logger: Logger = Logger(label: "herald.postgres"), pollInterval: Duration = .milliseconds(250)
        ) {
            self.schema = schema
            self.clock = clock
            self.logger = logger
            self.pollInterval = pollInterval
            self._beforeCommit = nil
        }
    }

    private struct Lifecycle {
        enum Phase { case created, running, ready, closing, closed }
        var phase = Phase.created
        var failure: HeraldError?
        var readyWaiters: [CheckedContinuation<Void, Never>] = []
        var inFlight = 0
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let client: PostgresClient
    let configuration: Configuration
    let tables: Tables
    let cache = EntityCache()
    let waiters = EntityWaiters()
    let locks = LockRegistry()
    let combiner = SendCombiner()
    private let lifecycle = Mutex(Lifecycle())
    private let lockClockBase: (wall: Int64, monotonic: Duration)
    private let channel: String
    private let pendingNotifications = Mutex<Set<String>>([])
    private let notifyWakeUps: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    private let stopSignal: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    private let lastPrune = Mutex<Int64>(0)
    /// Tags this broker's notifications, so its own listener ignores them (it woke its receivers already).
    private let instance = UUID().uuidString.prefix(8).lowercased()
    private let lastSweeps = Mutex<[Int64: Int64]>([:])
    private let analyzeState = Mutex<(inserted: Int, last: ContinuousClock.Instant?)>((0, nil))
    private let analyzeWakeUps: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)

    /// Creates a broker on `client`. Nothing is sent to the database until ``run()``.
    ///
    /// - Parameters:
    ///   - client: The connection pool; the caller runs it (`client.run()`) for as long as the broker.
    ///   - configuration: The schema, clock and logger.
    /// - Throws: ``HeraldCore/HeraldError/Code/invalidArgument`` for a schema name outside the rule.
    public init(client: PostgresClient, configuration: Configuration = Configuration()) throws {
        try Self.validateSchema(configuration.schema)
        self.client = client
        self.configuration = configuration
        self.tables = Tables(schema: configuration.schema)
        self.lockClockBase = (configuration.clock.now().millisecondsSince1970, configuration.clock.monotonicNow())
        self.channel = "herald_\(configuration.schema)"
        self.notifyWakeUps = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.stopSignal = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.analyzeWakeUps = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    static func validateSchema(_ schema: String) throws(HeraldError) {
        let bytes = Array(schema.utf8)
        let valid = !bytes.isEmpty && bytes.count <= 48
            && bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
            && !(bytes[0] >= 0x30 && bytes[0] <= 0x39)
        guard valid else {
            throw HeraldError(.invalidArgument, "a schema name has 1 to 48 characters of a-z 0-9 _ and does not start with a digit")
        }
    }

    // MARK: Lifecycle

    /// Applies the schema's migrations, then serves until ``close()`` is called, the task is
    /// cancelled, or a graceful shutdown begins; on the way out it releases the locks it holds.
    ///
    /// - Throws: ``HeraldCore/HeraldError/Code/storeFailed`` when the migrations cannot be applied.
    public func run() async throws {
        let alreadyRunning = self.lifecycle.withLock { state -> Bool in
            guard state.phase == .created else { return true }
            state.phase = .running
            return false
        }
        precondition(!alreadyRunning, "PostgresBroker.run() is called once")
        do {
            try await self.client.withConnection { connection in
                try await Schema.migrate(connection, tables: self.tables, schema: self.configuration.schema, logger: self.configuration.logger)
            }
        } catch {
            let failure = HeraldError(.storeFailed, "cannot apply Herald's migrations to schema \(self.configuration.schema): \(String(reflecting: error))")
            self.configuration.logger.critical("herald cannot start", metadata: ["error": "\(failure)"])
            self.setPhase(.closed, failure: failure)
            throw failure
        }
        self.setPhase(.ready, failure: nil)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.sendNotifications() }
            group.addTask { await self.analyzeWhenAsked() }
            await withGracefulShutdownHandler {
                for await _ in self.stopSignal.stream { break }
            } onGracefulShutdown: {
                self.stopSignal.continuation.yield()
            }
            group.cancelAll()
        }
        await self.close()
    }

    private func setPhase(_ phase: Lifecycle.Phase, failure: HeraldError?) {
        let waiting = self.lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.phase = phase
            if let failure, state.failure == nil { state.failure = failure }
            defer { state.readyWaiters = [] }
            return state.readyWaiters
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Lets running operations finish, releases the locks and sessions this broker holds (so other
    /// receivers get those messages at once rather than when the locks expire), and stops ``run()``.
    /// Later calls throw ``HeraldCore/HeraldError/Code/storeClosed``. The caller stops the client.
    public func close() async {
        let (first, wasReady, failed) = self.lifecycle.withLock { state -> (Bool, Bool, Bool) in
            guard state.phase != .closing && state.phase != .closed else { return (false, false, false) }
            let wasReady = state.phase == .ready
            state.phase = .closing
            return (true, wasReady, state.failure != nil)
        }
        guard first else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let drained = self.lifecycle.withLock { state -> Bool in
                if state.inFlight == 0 { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if drained { continuation.resume() }
        }
        if wasReady && !failed { await self.releaseLocks() }
        self.setPhase(.closed, failure: nil)
        self.stopSignal.continuation.yield()
        self.notifyWakeUps.continuation.finish()
        self.analyzeWakeUps.continuation.finish()
    }

    /// The storage error the broker stopped on, if it did (fail-stop).
    public var failure: HeraldError? { self.lifecycle.withLock { $0.failure } }

    private func releaseLocks() async {
        let (groups, sessions) = self.locks.drain()
        if groups.isEmpty && sessions.isEmpty { return }
        let now = self.now()
        var keys: Set<String> = []
        do {
            try await self.client.withConnection { connection in
                for (nonce, session) in sessions {
                    _ = try await connection.query(
                        """
                        UPDATE \(unescaped: self.tables.session) SET lock_nonce = NULL, locked_until = NULL
                        WHERE entity_id = \(session.entityId) AND session_id = \(session.sessionId) AND lock_nonce = \(nonce)
                        """, logger: self.configuration.logger
                    ).collect()
                    _ = try await connection.query(
                        """
                        UPDATE \(unescaped: self.tables.message) SET lock_nonce = NULL, locked_until = NULL
                        WHERE entity_id = \(session.entityId) AND session_id = \(session.sessionId) AND NOT dlq AND lock_nonce IS NOT NULL
                        """, logger: self.configuration.logger
                    ).collect()
                    keys.insert("\(session.entityId)")
                }
                for (nonce, group) in groups where group.lockedUntil > now.lock {
                    _ = try await connection.query(
                        """
                        UPDATE \(unescaped: self.tables.message) SET lock_nonce = NULL, locked_until = NULL
                        WHERE entity_id = \(group.entityId) AND seq = ANY(\(Array(group.sequenceNumbers))) AND lock_nonce = \(nonce)
                        """, logger: self.configuration.logger
                    ).collect()
                    keys.insert(group.deadLetter ? "\(group.entityId)d" : "\(group.entityId)")
                }
            }
        } catch {
            self.configuration.logger.warning("herald could not release its locks on close; they expire by time", metadata: ["error": "\(String(reflecting: error))"])
        }
        if !keys.isEmpty {
            let payload = self.instance + "|" + keys.sorted().joined(separator: ",")
            _ = try? await self.client.query(
                "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(self.channel), \(payload))", logger: self.configuration.logger
            ).collect()
        }
    }

    // MARK: Statistics

    /// Counts messages this broker inserted; after a burst, refreshes the planner's statistics of
    /// the message table (in the background) rather than wait for autovacuum's next round.
    ///
    /// Receive walks the `message_ready` index in sequence order. With statistics from when the
    /// table was small (or empty), PostgreSQL estimates that few rows match and prefers a bitmap
    /// scan and a sort of every row of the queue, which makes each receive cost as much as the
    /// queue is long. A fresh queue filled and drained within autovacuum's naptime (a minute)
    /// would never get out of that; so the first 5,000 inserts of a broker, and then 5,000 inserts
    /// at least a minute after the last refresh, trigger an `ANALYZE` of the table.
    func inserted(_ count: Int) {
        let due = self.analyzeState.withLock { state -> Bool in
            state.inserted += count
            guard state.inserted >= 5000 else { return false }
            if let last = state.last, ContinuousClock.now - last < .seconds(60) { return false }
            state.inserted = 0
            state.last = ContinuousClock.now
            return true
        }
        if due { self.analyzeWakeUps.continuation.yield() }
    }

    private func analyzeWhenAsked() async {
        for await _ in self.analyzeWakeUps.stream {
            do {
                _ = try await self.client.query(PostgresQuery(unsafeSQL: "ANALYZE \(self.tables.message)"), logger: self.configuration.logger).collect()
            } catch {
                self.configuration.logger.debug("herald could not analyze the message table", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    // MARK: Wake-ups

    /// Wakes this process's receivers waiting on `keys` now, and other processes' through NOTIFY.
    func announce(_ keys: Set<String>) {
        guard !keys.isEmpty else { return }
        self.waiters.notify(keys)
        self.pendingNotifications.withLock { $0.formUnion(keys) }
        self.notifyWakeUps.continuation.yield()
    }

    private func sendNotifications() async {
        for await _ in self.notifyWakeUps.stream {
            // Coalesce: what arrives within a few milliseconds goes out as one notification (other
            // processes' receivers wake a little later; this process's were woken at once).
            try? await Task.sleep(for: .milliseconds(2))
            let keys = self.pendingNotifications.withLock { pending -> [String] in
                defer { pending.removeAll() }
                return pending.sorted()
            }
            // A payload stays well under PostgreSQL's 8,000-byte limit.
            var chunks: [[String]] = [[]]
            var size = 0
            for key in keys {
                if size + key.utf8.count + 1 > 6900 {
                    chunks.append([])
                    size = 0
                }
                chunks[chunks.count - 1].append(key)
                size += key.utf8.count + 1
            }
            for chunk in chunks where !chunk.isEmpty {
                do {
                    // Its own transaction with asynchronous commit: it writes nothing worth an
                    // fsync, and holds PostgreSQL's notify lock only for an instant.
                    _ = try await self.client.query(
                        "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(self.channel), \(self.instance + "|" + chunk.joined(separator: ",")))",
                        logger: self.configuration.logger
                    ).collect()
                } catch {
                    self.configuration.logger.debug("herald could not notify other processes", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
        }
    }

    private func listen() async {
        while !Task.isCancelled {
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: self.channel) { notifications in
                        // Anything announced while not listening was missed: everyone looks again.
                        self.waiters.notifyAll()
                        for try await notification in notifications {
                            let parts = notification.payload.split(separator: "|", maxSplits: 1)
                            if parts.count == 2 && parts[0] == self.instance { continue }
                            self.waiters.notify(Set((parts.last ?? "").split(separator: ",").map(String.init)))
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                self.configuration.logger.warning("herald lost its LISTEN connection; polling until it is back", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    // MARK: Running operations

    /// What an operation reads the time as.
    func now() -> Now {
        let clock = self.configuration.clock
        let date = clock.now()
        let lock = self.lockClockBase.wall + (clock.monotonicNow() - self.lockClockBase.monotonic).milliseconds
        return Now(date: date, wall: date.millisecondsSince1970, lock: lock)
    }

    private struct Retry: Error {}

    private func enter() async throws {
        while true {
            enum Step { case go, wait, fail(HeraldError) }
            let step = self.lifecycle.withLock { state -> Step in
                if let failure = state.failure { return .fail(failure) }
                switch state.phase {
                case .ready:
                    state.inFlight += 1
                    return .go
                case .closing, .closed:
                    return .fail(HeraldError(.storeClosed, "the broker is closed"))
                case .created, .running:
                    return .wait
                }
            }
            switch step {
            case .go: return
            case .fail(let error): throw error
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.lifecycle.withLock { state -> Bool in
                        if state.phase == .created || state.phase == .running {
                            state.readyWaiters.append(continuation)
                            return false
                        }
                        return true
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    private func exit() {
        let drained = self.lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inFlight -= 1
            guard state.inFlight == 0 else { return [] }
            defer { state.drainWaiters = [] }
            return state.drainWaiters
        }
        for continuation in drained { continuation.resume() }
    }

    /// Stops the broker for good and returns the error every later call gets.
    func failStop(_ error: any Error, during what: String) -> HeraldError {
        let failure = HeraldError(.storeFailed, "database error during \(what), the broker stopped accepting work: \(String(reflecting: error))")
        let reported = self.lifecycle.withLock { state -> HeraldError in
            if state.failure == nil {
                state.failure = failure
                self.configuration.logger.critical("herald store failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return state.failure ?? failure
        }
        return reported
    }

    private func beforeCommit() throws {
        guard let hook = self.configuration._beforeCommit else { return }
        do {
            try hook()
        } catch {
            throw self.failStop(error, during: "commit")
        }
    }

    /// Runs `body` with a connection, in a transaction (`transaction`) or as autocommit statements,
    /// retrying it whole after a deadlock or serialization failure. A ``HeraldCore/HeraldError``
    /// thrown by `body` rolls back its writes and is the operation's result; any other error
    /// stops the broker.
    ///
    /// - Parameters:
    ///   - write: Whether the operation changes anything (the commit hook runs only then).
    ///   - transaction: `false` for an operation that is one statement, committed by itself.
    func perform<T: Sendable>(
        _ what: String, write: Bool = true, transaction: Bool = true, _ body: @escaping @Sendable (Store) async throws -> T
    ) async throws -> T {
        try await self.enter()
        defer { self.exit() }
        var attempt = 0
        while true {
            attempt += 1
            let now = self.now()
            do {
                let value = try await self.client.withConnection { connection in
                    try await self.attempt(what, connection: connection, now: now, write: write, transaction: transaction, body)
                }
                if let failure = self.failure { throw failure }
                return value
            } catch is Retry {
                if attempt >= 20 { throw self.failStop(Retry(), during: "\(what) (retried \(attempt) times)") }
                try? await Task.sleep(for: .milliseconds(Int.random(in: 1...(2 * attempt))))
            } catch let error as HeraldError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw self.classify(error, during: what)
            }
        }
    }

    private func attempt<T: Sendable>(
        _ what: String, connection: PostgresConnection, now: Now, write: Bool, transaction: Bool, _ body: @Sendable (Store) async throws -> T
    ) async throws -> T {
        let store = Store(connection: connection, broker: self, now: now)
        if transaction {
            do { try await store.execute("BEGIN") } catch { throw self.classify(error, during: what) }
        } else if write {
            try self.beforeCommit()
        }
        let value: T
        do {
            value = try await body(store)
            if transaction && write { try self.beforeCommit() }
        } catch {
            if transaction { try? await store.execute("ROLLBACK") }
            throw self.classify(error, during: what)
        }
        if transaction {
            do {
                try await store.execute("COMMIT")
            } catch {
                // The outcome is unknown: never retried, never acknowledged.
                throw self.failStop(error, during: "the commit of \(what)")
            }
        }
        return value
    }

    private func classify(_ error: any Error, during what: String) -> any Error {
        switch error {
        case let error as HeraldError:
            return error
        case is Retry:
            return error
        case is CancellationError:
            return CancellationError()
        case let error as PSQLError:
            if error.code == .queryCancelled { return CancellationError() }
            if let state = error.serverInfo?[.sqlState], state == "40001" || state == "40P01" { return Retry() }
            return self.failStop(error, during: what)
        default:
            return self.failStop(error, during: what)
        }
    }

    /// Runs `attempt` until `isDone` accepts its result or `maxWaitTime` passes, sleeping between
    /// attempts until a commit announces `key` (or ``Configuration/pollInterval`` passes).
    private func waiting<T>(
        for key: @escaping () async throws -> String, maxWaitTime: Duration, until isDone: (T) -> Bool, _ attempt: () async throws -> T
    ) async throws -> T {
        if maxWaitTime < .zero { throw HeraldError(.invalidArgument, "maxWaitTime cannot be negative") }
        let deadline = ContinuousClock.now + maxWaitTime
        var waitKey: String?
        while true {
            let generation = waitKey.map { self.waiters.generation(of: $0) } ?? 0
            let result = try await attempt()
            let remaining = deadline - ContinuousClock.now
            if isDone(result) || remaining <= .zero || Task.isCancelled { return result }
            if waitKey == nil {
                // First empty answer: from now on wake-ups for the entity count.
                waitKey = try await key()
                continue
            }
            await self.waiters.wait(for: waitKey!, after: generation, timeout: min(remaining, self.configuration.pollInterval))
            // A wait cancelled (its client went away, the server shuts down) takes nothing more.
            if Task.isCancelled { return result }
        }
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

    /// Runs the occasional clean-ups (expired duplicate-detection entries, idle session rows) at
    /// most once a second per broker, inside a send.
    func shouldPrune(_ now: Now) -> Bool {
        self.lastPrune.withLock { last in
            guard now.wall - last >= 1000 else { return false }
            last = now.wall
            return true
        }
    }

    // MARK: Entities

    public func createQueue(_ name: String, options: EntityOptions) async throws {
        try await self.perform("createQueue") { try await $0.createEntity(.queue(name), options: options, filter: nil) }
    }

    public func deleteQueue(_ name: String) async throws {
        try await self.perform("deleteQueue") { try await $0.deleteEntity(.queue(name)) }
    }

    public func listQueues() async throws -> [EntityDescription] {
        try await self.perform("listQueues", write: false, transaction: false) {
            try await $0.listEntities(kind: .queue, topic: nil).map { EntityDescription(path: $0.path, options: $0.options) }
        }
    }

    public func createTopic(_ name: String, options: EntityOptions) async throws {
        try await self.perform("createTopic") { try await $0.createEntity(.topic(name), options: options, filter: nil) }
    }

    public func deleteTopic(_ name: String) async throws {
        try await self.perform("deleteTopic") { try await $0.deleteEntity(.topic(name)) }
    }

    public func listTopics() async throws -> [EntityDescription] {
        try await self.perform("listTopics", write: false, transaction: false) {
            try await $0.listEntities(kind: .topic, topic: nil).map { EntityDescription(path: $0.path, options: $0.options) }
        }
    }

    public func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws {
        try await self.perform("createSubscription") { try await $0.createEntity(.subscription(name, of: topic), options: options, filter: filter) }
    }

    public func deleteSubscription(_ name: String, topic: String) async throws {
        try await self.perform("deleteSubscription") { try await $0.deleteEntity(.subscription(name, of: topic)) }
    }

    public func listSubscriptions(topic: String) async throws -> [SubscriptionDescription] {
        try await self.perform("listSubscriptions", write: false, transaction: false) { try await $0.listEntities(kind: .subscription, topic: topic) }
    }

    // MARK: Sending

    public func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] {
        if messages.isEmpty { return [] }
        let plan: SendPlan
        if let cached = try Store.planSend(messages, to: entity, cache: self.cache) {
            plan = cached
        } else {
            plan = try await self.perform("send", write: false, transaction: false) { try await $0.planSend(messages, to: entity) }
        }
        let outcome: SendOutcome
        if plan.isSimple {
            outcome = try await self.sendCombined(plan)
        } else {
            outcome = try await self.perform("send") { try await $0.send(messages, to: entity) }
        }
        self.announce(outcome.wake)
        self.inserted(outcome.receipts.count)
        return outcome.receipts
    }

    /// Sends a simple plan together with the simple sends to the same queue that wait meanwhile.
    private func sendCombined(_ plan: SendPlan) async throws -> SendOutcome {
        switch await self.combiner.arrive(plan) {
        case .done(let result):
            return try result.get()
        case .lead(let group):
            let plans = group.map(\.plan)
            let result: SendCombiner.Result
            do {
                result = .success(try await self.perform("send", transaction: false) { try await $0.sendSimple(plans) })
            } catch {
                result = .failure(error)
            }
            // Hand each follower its share.
            var offset = 0
            var own: SendCombiner.Result = .failure(HeraldError(.storeFailed, "the send was not run"))
            for (index, waiter) in group.enumerated() {
                let share: SendCombiner.Result = result.map { outcome in
                    SendOutcome(receipts: Array(outcome.receipts[offset..<(offset + waiter.plan.messages.count)]), wake: outcome.wake)
                }
                offset += waiter.plan.messages.count
                if index == 0 { own = share } else { waiter.continuation.resume(returning: .done(share)) }
            }
            self.combiner.finished(plan.target.id)
            return try own.get()
        }
    }

    public func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws {
        try await self.perform("cancelScheduled") { try await $0.cancelScheduled(sequenceNumbers, in: entity) }
    }

    // MARK: Receiving

    public func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxBytes: .max, maxWaitTime: maxWaitTime, mode: mode)
    }

    public func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.waiting(
            for: { try await self.perform("receive", write: false, transaction: false) { try await $0.waitKey(entity) } },
            maxWaitTime: maxWaitTime, until: { !$0.isEmpty }
        ) {
            let outcome = try await self.perform("receive", transaction: false) { try await $0.receive(from: entity, maxCount: maxCount, maxBytes: maxBytes, mode: mode) }
            self.announce(outcome.wake)
            return outcome.messages
        }
    }

    public func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        let outcome = try await self.perform("receiveDeferred") { try await $0.receiveDeferred(from: entity, sequenceNumbers: sequenceNumbers) }
        self.announce(outcome.wake)
        return outcome.messages
    }

    public func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try await self.perform("peek", write: false, transaction: false) { try await $0.peek(entity, from: fromSequenceNumber, maxCount: maxCount) }
    }

    // MARK: Settlement

    @discardableResult
    public func complete(_ token: LockToken) async throws -> SettlementOutcome {
        try await self.complete([token])
    }

    @discardableResult
    public func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome {
        if tokens.isEmpty { return .settled }
        let fast: Bool
        if let entity = self.cache.entity(tokens[0].entity.entityKey), tokens[0].entity.kind == entity.path.kind {
            fast = Store.canCompleteInOneStatement(tokens, entity: entity)
        } else {
            fast = try await self.perform("complete", write: false, transaction: false) { try await $0.canCompleteInOneStatement(tokens) }
        }
        var outcome = SettlementOutcome.settled
        if fast {
            do {
                try await self.perform("complete", transaction: false) { try await $0.completeInOneStatement(tokens) }
            } catch let error as HeraldError where error.code == .lockLost {
                // Perhaps a retry of a complete that committed: the transaction finds out.
                outcome = try await self.perform("complete") { try await $0.complete(tokens) }
            }
        } else {
            outcome = try await self.perform("complete") { try await $0.complete(tokens) }
        }
        self.locks.settled(tokens)
        return outcome
    }

    @discardableResult
    public func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome {
        let (outcome, wake) = try await self.perform("abandon") { try await $0.abandon(token, delay: delay) }
        self.locks.settled([token])
        self.announce(wake)
        return outcome
    }

    @discardableResult
    public func `defer`(_ token: LockToken) async throws -> SettlementOutcome {
        let outcome = try await self.perform("defer") { try await $0.deferMessage(token) }
        self.locks.settled([token])
        return outcome
    }

    @discardableResult
    public func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome {
        let (outcome, wake) = try await self.perform("deadLetter") { try await $0.deadLetter(token, reason: reason, description: description) }
        self.locks.settled([token])
        self.announce(wake)
        return outcome
    }

    public func renewLock(_ token: LockToken) async throws -> Date {
        let (until, display) = try await self.perform("renewLock") { try await $0.renewLock(token) }
        self.locks.renewed(token, until: until)
        return display
    }

    // MARK: Sessions

    public func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock {
        let accepted = try await self.waiting(
            for: { try await self.perform("acceptSession", write: false, transaction: false) { try await $0.waitKey(entity) } },
            maxWaitTime: maxWaitTime, until: { $0 != nil }
        ) {
            try await self.perform("acceptSession") { try await $0.acceptSession(on: entity, sessionId: sessionId) }
        }
        guard let accepted else {
            throw HeraldError(.noSessionAvailable, "no session of '\(entity)' has messages and no holder")
        }
        self.locks.accepted(accepted.lock, entityId: accepted.entityId)
        return accepted.lock
    }

    public func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage] {
        try await self.waiting(
            for: { try await self.perform("receive", write: false, transaction: false) { try await $0.waitKey(session.entity) } },
            maxWaitTime: maxWaitTime, until: { !$0.isEmpty }
        ) {
            let outcome = try await self.perform("receive") { try await $0.receive(from: session, maxCount: maxCount) }
            self.announce(outcome.wake)
            return outcome.messages
        }
    }

    public func sessionState(_ session: SessionLock) async throws -> Data? {
        try await self.perform("sessionState", write: false) { try await $0.sessionState(session) }
    }

    public func setSessionState(_ state: Data?, for session: SessionLock) async throws {
        try await self.perform("setSessionState") { try await $0.setSessionState(state, for: session) }
    }

    public func renewSessionLock(_ session: SessionLock) async throws -> SessionLock {
        try await self.perform("renewSessionLock") { try await $0.renewSessionLock(session) }
    }

    public func releaseSession(_ session: SessionLock) async throws {
        let wake = try await self.perform("releaseSession") { try await $0.releaseSession(session) }
        self.locks.released(session)
        self.announce(wake)
    }

    // MARK: Dead letters and counts

    @discardableResult
    public func resubmit(_ token: LockToken) async throws -> SettlementOutcome {
        let (outcome, wake) = try await self.perform("resubmit") { try await $0.resubmit(token) }
        self.locks.settled([token])
        self.announce(wake)
        return outcome
    }

    public func counts(of entity: EntityPath) async throws -> EntityCounts {
        let (counts, wake) = try await self.perform("counts") { try await $0.counts(entity) }
        self.announce(wake)
        return counts
    }
}

extension PostgresBroker {
    public func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt {
        if transaction.isEmpty { return TransactionReceipt(sends: [], streamVersions: [:]) }
        let (receipt, wake) = try await self.perform("commit") { try await $0.commit(transaction) }
        self.locks.settled(transaction.completions)
        self.announce(wake)
        return receipt
    }

    public func document(_ key: String, in collection: String) async throws -> VersionedDocument? {
        try BrokerTransaction.checkKey(collection, "collection")
        try BrokerTransaction.checkKey(key, "document key")
        return try await self.perform("document", write: false, transaction: false) { try await $0.document(key, in: collection) }
    }

    public func documents(in collection: String) async throws -> [String: VersionedDocument] {
        try BrokerTransaction.checkKey(collection, "collection")
        return try await self.perform("documents", write: false, transaction: false) { try await $0.documents(in: collection) }
    }

    public func inboxContains(_ entry: InboxEntry) async throws -> Bool {
        try BrokerTransaction.checkKey(entry.handler, "handler name")
        try BrokerTransaction.checkKey(entry.messageId, "message id")
        return try await self.perform("inboxContains", write: false, transaction: false) { try await $0.inboxContains(entry) }
    }

    public func readStream(_ stream: String, from version: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try BrokerTransaction.checkKey(stream, "stream name")
        return try await self.perform("readStream", write: false, transaction: false) { try await $0.readEvents(stream: stream, from: version, maxCount: maxCount) }
    }

    public func readAll(from position: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try await self.perform("readAll", write: false, transaction: false) { try await $0.readEvents(stream: nil, from: position, maxCount: maxCount) }
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
