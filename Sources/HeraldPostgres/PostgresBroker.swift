public import Foundation
public import HeraldCore
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

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
/// A database that cannot be reached (stopped, restarting, crashed, a network failure) does not
/// stop the broker: calls throw ``HeraldCore/HeraldError/Code/storeUnavailable`` until it is back,
/// and the broker reconnects by itself. Waiting for a pool connection takes at most
/// ``Configuration/connectionTimeout``; a statement once started is never cut short. A lost
/// connection during a commit (or during a write that is one statement) leaves its outcome unknown:
/// it is never acknowledged nor retried by the broker, and the error says the outcome is unknown; a
/// client's retry is safe where duplicate detection or the settlement memory recognizes it.
/// ``run()`` tries to reach the database for ``Configuration/startTimeout`` before it gives up.
///
/// Any other database error that is not an answer of the broker's own (a lost lock, a missing
/// entity…) stops the broker (fail-stop, GUARANTEES.md §4.10): every later call throws
/// ``HeraldCore/HeraldError/Code/storeFailed``. Deadlocks and serialization failures, which
/// PostgreSQL rolls back, are retried.
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
        /// How long an operation waits for a connection of the pool before it throws
        /// ``HeraldCore/HeraldError/Code/storeUnavailable`` (the database is unreachable, or every
        /// connection stays busy). Only the wait is bounded: a statement once started runs to its end.
        /// Once the broker found the database unreachable, and until it answers again, operations
        /// wait at most a second, so that an outage is answered quickly.
        public var connectionTimeout: Duration
        /// How long ``PostgresBroker/run()`` keeps trying to reach the database and apply the
        /// migrations before it gives up with ``HeraldCore/HeraldError/Code/storeFailed``.
        public var startTimeout: Duration
        /// Called before each commit; a thrown error is treated as a failed commit (fault injection in tests).
        public var _beforeCommit: (@Sendable () throws -> Void)?

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
        }
    }

    private struct Lifecycle {
        enum Phase { case created, running, ready, closing, closed }
        var phase = Phase.created
        var failure: HeraldError?
        /// The database could not be reached yet while starting: operations fail at once rather than wait.
        var startFailing = false
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
    /// Whether the last contact with the database found it unreachable (for logging the transitions).
    private let unreachable = Atomic<Bool>(false)

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
    /// While the database cannot be reached it tries again, for up to
    /// ``Configuration/startTimeout``; operations meanwhile throw
    /// ``HeraldCore/HeraldError/Code/storeUnavailable``.
    ///
    /// - Throws: ``HeraldCore/HeraldError/Code/storeFailed`` when the database cannot be reached
    ///   within the start timeout or the migrations cannot be applied; every operation throws it from then on.
    public func run() async throws {
        let alreadyRunning = self.lifecycle.withLock { state -> Bool in
            guard state.phase == .created else { return true }
            state.phase = .running
            return false
        }
        precondition(!alreadyRunning, "PostgresBroker.run() is called once")
        guard try await self.migrate() else { return }
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

    /// Applies the migrations, trying again while the database cannot be reached, until the start
    /// timeout, then makes the broker ready; `false` when the broker was closed meanwhile.
    private func migrate() async throws -> Bool {
        let start = ContinuousClock.now
        let deadline = start + self.configuration.startTimeout
        var attempts = 0
        while true {
            attempts += 1
            let timeout = min(self.configuration.connectionTimeout, max(deadline - ContinuousClock.now, .milliseconds(100)))
            do {
                try await self.withConnection(timeout: timeout) { connection in
                    try await Schema.migrate(connection, tables: self.tables, schema: self.configuration.schema, logger: self.configuration.logger)
                }
                let waiting = self.lifecycle.withLock { state -> [CheckedContinuation<Void, Never>]? in
                    guard state.phase == .running else { return nil }
                    state.phase = .ready
                    state.startFailing = false
                    defer { state.readyWaiters = [] }
                    return state.readyWaiters
                }
                guard let waiting else { return false }
                for continuation in waiting { continuation.resume() }
                if attempts > 1 { self.configuration.logger.notice("herald reached PostgreSQL and started") }
                return true
            } catch {
                let stillStarting = self.lifecycle.withLock { $0.phase == .running }
                if !stillStarting { return false }
                let failure: HeraldError
                if Task.isCancelled {
                    failure = HeraldError(.storeClosed, "the broker was stopped before it could start")
                } else if Self.isUnreachable(error) {
                    if ContinuousClock.now < deadline {
                        self.startFailing(error, attempt: attempts)
                        try? await Task.sleep(for: min(.seconds(1), deadline - ContinuousClock.now))
                        continue
                    }
                    failure = HeraldError(
                        .storeFailed,
                        "cannot reach PostgreSQL to apply Herald's migrations to schema \(self.configuration.schema): "
                            + "gave up after \(attempts) attempts in \(self.configuration.startTimeout) (is the server running, and the URL right?); "
                            + "the last error: \(Self.describe(error))"
                    )
                } else {
                    failure = HeraldError(.storeFailed, "cannot apply Herald's migrations to schema \(self.configuration.schema): \(String(reflecting: error))")
                }
                self.configuration.logger.critical("herald cannot start", metadata: ["error": "\(failure)"])
                self.setPhase(.closed, failure: failure)
                throw failure
            }
        }
    }

    /// Notes that the database could not be reached while starting: operations fail at once
    /// (``HeraldCore/HeraldError/Code/storeUnavailable``) instead of waiting for the start.
    private func startFailing(_ error: any Error, attempt: Int) {
        let waiting = self.lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.startFailing = true
            defer { state.readyWaiters = [] }
            return state.readyWaiters
        }
        for continuation in waiting { continuation.resume() }
        self.configuration.logger.warning(
            "herald cannot reach PostgreSQL yet; trying again",
            metadata: ["attempt": "\(attempt)", "error": "\(Self.describe(error))"]
        )
    }

    /// Returns once ``run()`` has applied the migrations; throws what stopped it if it could not.
    func started() async throws {
        while true {
            enum Step { case ready, wait, fail(HeraldError) }
            let step = self.lifecycle.withLock { state -> Step in
                switch state.phase {
                case .ready: return .ready
                case .closing, .closed: return .fail(state.failure ?? HeraldError(.storeClosed, "the broker is closed"))
                case .created, .running: return .wait
                }
            }
            switch step {
            case .ready: return
            case .fail(let error): throw error
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.lifecycle.withLock { state -> Bool in
                        guard state.phase == .created || state.phase == .running else { return true }
                        state.readyWaiters.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
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
            keys = try await self.withConnection { connection in
                var keys: Set<String> = []
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
                return keys
            }
        } catch {
            self.configuration.logger.warning("herald could not release its locks on close; they expire by time", metadata: ["error": "\(String(reflecting: error))"])
        }
        if !keys.isEmpty {
            let payload = self.instance + "|" + keys.sorted().joined(separator: ",")
            try? await self.withConnection { connection in
                _ = try await connection.query(
                    "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(self.channel), \(payload))", logger: self.configuration.logger
                ).collect()
            }
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
                try await self.withConnection { connection in
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "ANALYZE \(self.tables.message)"), logger: self.configuration.logger).collect()
                }
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
                    let payload = self.instance + "|" + chunk.joined(separator: ",")
                    try await self.withConnection { connection in
                        _ = try await connection.query(
                            "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(self.channel), \(payload))", logger: self.configuration.logger
                        ).collect()
                    }
                } catch {
                    self.configuration.logger.debug("herald could not notify other processes", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
        }
    }

    /// Listens for other processes' wake-ups; a lost connection (the database restarted) is
    /// replaced as soon as the database is back, and receivers poll meanwhile.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await self.withConnection { connection in
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
                // While the database is away, waiting for a connection times out again and again: not worth a warning each time.
                let level: Logger.Level = error is NoConnection ? .debug : .warning
                self.configuration.logger.log(
                    level: level, "herald lost its LISTEN connection; polling until it is back", metadata: ["error": "\(Self.describe(error))"]
                )
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
                case .running where state.startFailing:
                    return .fail(HeraldError(.storeUnavailable, "the broker cannot reach PostgreSQL yet (it is starting and trying again); nothing was applied"))
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
                        if (state.phase == .created || state.phase == .running) && !state.startFailing {
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
    /// thrown by `body` rolls back its writes and is the operation's result; a database that cannot
    /// be reached is ``HeraldCore/HeraldError/Code/storeUnavailable``; any other error stops the broker.
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
                let value = try await self.withConnection { connection in
                    try await self.attempt(what, connection: connection, now: now, write: write, transaction: transaction, body)
                }
                if let failure = self.failure { throw failure }
                self.reachable()
                return value
            } catch is Retry {
                if attempt >= 20 { throw self.failStop(Retry(), during: "\(what) (retried \(attempt) times)") }
                try? await Task.sleep(for: .milliseconds(Int.random(in: 1...(2 * attempt))))
            } catch let error as HeraldError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as NoConnection {
                throw self.unavailable(error, during: what, outcome: .notApplied)
            } catch let error as ConnectionLost {
                throw self.unavailable(error, during: what, outcome: write ? .unknown : .notApplied)
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
            // A transaction that lost its connection before COMMIT was rolled back; a write that
            // is one statement may have been committed when its connection went away.
            throw self.classify(error, during: what, ifConnectionLost: transaction || !write ? .notApplied : .unknown)
        }
        if transaction {
            do {
                try await store.execute("COMMIT")
            } catch {
                // The outcome is unknown: never retried, never acknowledged.
                if let error = error as? PSQLError, Self.isConnectionLoss(error) {
                    throw self.unavailable(error, during: "the commit of \(what)", outcome: .unknown)
                }
                throw self.failStop(error, during: "the commit of \(what)")
            }
        }
        return value
    }

    /// What is known of an operation's effect when the connection to the database was lost.
    enum LostOutcome {
        /// Nothing was applied: the operation can be retried as a whole.
        case notApplied
        /// It may have been committed before the connection went away.
        case unknown
    }

    private func classify(_ error: any Error, during what: String, ifConnectionLost outcome: LostOutcome = .notApplied) -> any Error {
        switch error {
        case let error as HeraldError:
            return error
        case is Retry:
            return error
        case is CancellationError:
            return CancellationError()
        case let error as NoConnection:
            return self.unavailable(error, during: what, outcome: .notApplied)
        case let error as PSQLError:
            if error.code == .queryCancelled { return CancellationError() }
            if let state = error.serverInfo?[.sqlState], state == "40001" || state == "40P01" { return Retry() }
            if Self.isConnectionLoss(error) { return self.unavailable(error, during: what, outcome: outcome) }
            return self.failStop(error, during: what)
        default:
            return self.failStop(error, during: what)
        }
    }

    /// Whether `error` says the connection to the database is gone or cannot be made (the server
    /// stopped, crashed, restarts, or the network failed), rather than that a statement failed.
    static func isConnectionLoss(_ error: PSQLError) -> Bool {
        switch error.code {
        case .serverClosedConnection, .connectionError, .clientClosedConnection, .uncleanShutdown:
            return true
        case .server:
            guard let state = error.serverInfo?[.sqlState] else { return false }
            // 08: connection exceptions; 57P01–57P03: the server shuts down, crashed, or is starting;
            // 53300: too many connections.
            return state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03" || state == "53300"
        default:
            return false
        }
    }

    /// Whether `error` means the database cannot be reached now (worth trying again later).
    static func isUnreachable(_ error: any Error) -> Bool {
        switch error {
        case is NoConnection, is ConnectionLost: true
        case let error as PSQLError: Self.isConnectionLoss(error)
        default: false
        }
    }

    /// The ``HeraldCore/HeraldError/Code/storeUnavailable`` error of `what`, which could not
    /// reach the database; notes the broker is cut off (once, in the log) and forgets what it
    /// cached, which may be stale once the database is back (restored, or changed meanwhile).
    func unavailable(_ error: any Error, during what: String, outcome: LostOutcome) -> HeraldError {
        self.cache.forgetAll()
        if !self.unreachable.exchange(true, ordering: .relaxed) {
            self.configuration.logger.warning(
                "herald cannot reach PostgreSQL; answering storeUnavailable until it is back",
                metadata: ["error": "\(Self.describe(error))"]
            )
        }
        switch outcome {
        case .notApplied:
            return HeraldError(.storeUnavailable, "PostgreSQL cannot be reached (during \(what)); nothing was applied, try again later: \(Self.describe(error))")
        case .unknown:
            return HeraldError(
                .storeUnavailable,
                "the connection to PostgreSQL was lost during \(what): the outcome is unknown (it may have been applied); "
                    + "a retry is safe where duplicate detection or the settlement memory recognizes it: \(Self.describe(error))"
            )
        }
    }

    /// Notes that the database answered; logs the recovery after an outage.
    private func reachable() {
        guard self.unreachable.load(ordering: .relaxed), self.unreachable.exchange(false, ordering: .relaxed) else { return }
        self.cache.forgetAll()
        self.configuration.logger.notice("herald reaches PostgreSQL again")
    }

    /// A short account of a connection failure, without query text or parameters.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as NoConnection:
            return "no connection to PostgreSQL within \(error.timeout)"
        case is ConnectionLost:
            return "the connection closed under the operation"
        case let error as PSQLError:
            var text = "\(error.code)"
            if let state = error.serverInfo?[.sqlState] { text += " \(state)" }
            if let message = error.serverInfo?[.message] { text += ": \(message)" }
            if let underlying = error.underlying { text += " (\(underlying))" }
            return text
        default:
            return "\(error)"
        }
    }

    /// No connection of the pool could be had within the connection timeout.
    struct NoConnection: Error {
        let timeout: Duration
    }

    /// The connection closed under a statement that did not end with it (postgres-nio can lose a
    /// statement written to a connection that is closing); the operation was given up.
    struct ConnectionLost: Error {}

    /// Runs `body` on a connection of the pool, waiting for one at most `timeout` (by default
    /// ``Configuration/connectionTimeout``, or a second while the database is known to be
    /// unreachable); the body itself is not timed, but it is given up (``ConnectionLost``) when its
    /// connection has been closed for a second and it still runs.
    ///
    /// postgres-nio's pool queues a request while it cannot connect and fails it only after a
    /// minute, and has no setting for that; and a statement written to a connection that is
    /// closing can wait forever. So the work runs in a task of its own, watched by another: it is
    /// withdrawn (cancelled) when no connection came in time, and abandoned when its connection died.
    func withConnection<T: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let timeout =
            timeout ?? (self.unreachable.load(ordering: .relaxed) ? min(self.configuration.connectionTimeout, .seconds(1)) : self.configuration.connectionTimeout)
        let operation = PooledOperation<T>()
        let work = Task {
            do {
                let value = try await self.client.withConnection { connection in
                    guard operation.acquire(connection) else { throw CancellationError() }
                    return try await body(connection)
                }
                operation.finish(.success(value))
            } catch {
                // Not acquired and not cancelled: the pool gave up by itself (its circuit breaker).
                operation.finish(.failure(operation.isAcquired || Task.isCancelled ? error : NoConnection(timeout: timeout)))
            }
        }
        let watchdog = Task {
            try? await Task.sleep(for: timeout)
            if Task.isCancelled { return }
            if operation.timeOut() {
                operation.finish(.failure(NoConnection(timeout: timeout)))
                work.cancel()
                return
            }
            var closedSince: ContinuousClock.Instant?
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                guard !Task.isCancelled, let connection = operation.connection, connection.isClosed else { continue }
                let since = closedSince ?? .now
                closedSince = since
                if ContinuousClock.now - since >= .seconds(1) {
                    operation.finish(.failure(ConnectionLost()))
                    work.cancel()
                    return
                }
            }
        }
        defer { watchdog.cancel() }
        return try await withTaskCancellationHandler {
            try await operation.result()
        } onCancel: {
            work.cancel()
        }
    }

    /// Runs `attempt` until `isDone` accepts its result or `maxWaitTime` passes, sleeping between
    /// attempts until a commit announces `key` (or ``Configuration/pollInterval`` passes).
    private func waiting<T>(
        for key: @escaping () async throws -> String, maxWaitTime: Duration, until isDone: (T) -> Bool, _ attempt: () async throws -> T
    ) async throws -> T {
        try await self.waiters.poll(
            key: key, maxWaitTime: maxWaitTime, pollInterval: self.configuration.pollInterval, until: isDone, attempt
        )
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

/// One operation of ``PostgresBroker/withConnection(timeout:_:)``: whether it got a connection in
/// time, which, and its result, delivered once to the caller.
private final class PooledOperation<T: Sendable>: Sendable {
    private enum Acquisition { case waiting, acquired, timedOut }

    private struct State {
        var acquisition = Acquisition.waiting
        var connection: PostgresConnection?
        var result: Result<T, any Error>?
        var waiter: CheckedContinuation<T, any Error>?
    }

    private let state = Mutex(State())

    /// Takes the connection; `false` when the wait had timed out already.
    func acquire(_ connection: PostgresConnection) -> Bool {
        self.state.withLock { state in
            guard state.acquisition == .waiting else { return false }
            state.acquisition = .acquired
            state.connection = connection
            return true
        }
    }

    /// Gives up waiting for a connection; `false` when one was handed out first.
    func timeOut() -> Bool {
        self.state.withLock { state in
            guard state.acquisition == .waiting else { return false }
            state.acquisition = .timedOut
            return true
        }
    }

    var isAcquired: Bool { self.state.withLock { $0.acquisition == .acquired } }

    /// The connection the operation runs on, once it has one.
    var connection: PostgresConnection? { self.state.withLock { $0.connection } }

    /// Settles the operation; later calls change nothing.
    func finish(_ result: Result<T, any Error>) {
        let waiter = self.state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    /// Waits for the operation's result.
    func result() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = self.state.withLock { state -> Result<T, any Error>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
