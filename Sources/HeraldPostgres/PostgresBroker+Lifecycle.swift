public import HeraldCore
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The decisions of a broker's life: start, ready, closing, closed, and fail-stop; which
/// operations may run, wait or fail, and whom to wake. It does no I/O and reads no clock: the
/// broker holds it in a mutex, feeds it events and carries out the action each event returns.
///
/// `Waiter` is what a suspended caller is resumed through (a continuation in the broker).
struct LifecycleStateMachine<Waiter> {
    enum Phase: Equatable {
        /// ``PostgresBroker/run()`` has not been called.
        case created
        /// Applying the migrations; `failing` while the database could not be reached yet, so that
        /// operations fail at once rather than wait for the start.
        case starting(failing: Bool)
        case ready
        case closing
        case closed
    }

    private(set) var phase = Phase.created
    /// The error the broker stopped on (fail-stop, or a failed start); every later operation gets it.
    private(set) var failure: HeraldError?
    /// Operations running now; close waits until they are done.
    private(set) var inFlight = 0
    private var startWaiters: [Waiter] = []
    private var drainWaiters: [Waiter] = []

    // MARK: Start

    enum RunAction {
        /// Apply the migrations.
        case start
        /// ``PostgresBroker/run()`` was called before: a programming error.
        case alreadyRun
    }

    mutating func run() -> RunAction {
        guard self.phase == .created else { return .alreadyRun }
        self.phase = .starting(failing: false)
        return .start
    }

    enum MigratedAction {
        /// The broker is ready: resume the callers that waited for it.
        case ready(resume: [Waiter])
        /// The broker was closed while it started: ``PostgresBroker/run()`` returns.
        case closedMeanwhile
    }

    /// The migrations are applied.
    mutating func migrated() -> MigratedAction {
        guard case .starting = self.phase else { return .closedMeanwhile }
        self.phase = .ready
        return .ready(resume: self.takeStartWaiters())
    }

    enum StartAttemptFailedAction {
        /// The broker was closed while it started: ``PostgresBroker/run()`` returns.
        case closedMeanwhile
        /// Try again; the waiting callers are resumed to fail at once while the database is away.
        case retry(resume: [Waiter])
        /// The broker cannot start: ``PostgresBroker/run()`` throws `failure`, so does every operation.
        case fail(HeraldError, resume: [Waiter])
    }

    /// An attempt to apply the migrations failed; `giveUp` is the failure when it is not worth
    /// another attempt, `nil` to try again (the database could not be reached, and time remains).
    mutating func startAttemptFailed(giveUp: HeraldError?) -> StartAttemptFailedAction {
        guard case .starting = self.phase else { return .closedMeanwhile }
        guard let failure = giveUp else {
            self.phase = .starting(failing: true)
            return .retry(resume: self.takeStartWaiters())
        }
        self.phase = .closed
        self.failure = self.failure ?? failure
        return .fail(failure, resume: self.takeStartWaiters())
    }

    enum StartedAction {
        case ready
        case fail(HeraldError)
        /// Not started yet: suspend (``waitForStart(_:)``), then ask again.
        case wait
    }

    /// Whether the broker has started, for a caller that waits for it.
    func started() -> StartedAction {
        switch self.phase {
        case .ready: .ready
        case .closing, .closed: .fail(self.failure ?? HeraldError(.storeClosed, "the broker is closed"))
        case .created, .starting: .wait
        }
    }

    enum WaitAction {
        /// The waiter was queued: it is resumed by a later action.
        case suspended
        /// Things moved meanwhile: resume the waiter now (it asks again).
        case resume(Waiter)
    }

    /// Queues a caller of ``PostgresBroker/started()`` until the start succeeds, fails or makes progress.
    mutating func waitForStart(_ waiter: Waiter) -> WaitAction {
        switch self.phase {
        case .created, .starting:
            self.startWaiters.append(waiter)
            return .suspended
        case .ready, .closing, .closed:
            return .resume(waiter)
        }
    }

    // MARK: Operations

    enum EnterAction {
        /// Run the operation (it is counted until ``exit()``).
        case run
        case fail(HeraldError)
        /// Not started yet: suspend (``waitToEnter(_:)``), then ask again.
        case wait
    }

    /// An operation wants to run.
    mutating func enter() -> EnterAction {
        if let failure = self.failure { return .fail(failure) }
        switch self.phase {
        case .ready:
            self.inFlight += 1
            return .run
        case .closing, .closed:
            return .fail(HeraldError(.storeClosed, "the broker is closed"))
        case .starting(failing: true):
            return .fail(
                HeraldError(.storeUnavailable, "the broker cannot reach PostgreSQL yet (it is starting and trying again); nothing was applied")
            )
        case .created, .starting(failing: false):
            return .wait
        }
    }

    /// Queues an operation until the broker is ready (or cannot start).
    mutating func waitToEnter(_ waiter: Waiter) -> WaitAction {
        switch self.phase {
        case .created, .starting(failing: false):
            self.startWaiters.append(waiter)
            return .suspended
        case .starting(failing: true), .ready, .closing, .closed:
            return .resume(waiter)
        }
    }

    /// An operation is done; returns whom to resume (a close that waited for the last one).
    mutating func exit() -> [Waiter] {
        self.inFlight -= 1
        guard self.inFlight == 0 else { return [] }
        defer { self.drainWaiters = [] }
        return self.drainWaiters
    }

    enum FailStopAction {
        /// The first failure: log it, and report it.
        case logAndReport(HeraldError)
        /// The broker had stopped already: report the first failure.
        case report(HeraldError)
    }

    /// A storage error stops the broker for good.
    mutating func failStop(_ failure: HeraldError) -> FailStopAction {
        if let first = self.failure { return .report(first) }
        self.failure = failure
        return .logAndReport(failure)
    }

    // MARK: Close

    enum CloseAction {
        /// Closed or closing already.
        case none
        /// Wait until the running operations are done (``waitForDrain(_:)``), release the locks
        /// when `releaseLocks` (a broker that started and did not fail), then ``closed()``.
        case drain(releaseLocks: Bool)
    }

    mutating func close() -> CloseAction {
        switch self.phase {
        case .closing, .closed:
            return .none
        case .created, .starting, .ready:
            let releaseLocks = self.phase == .ready && self.failure == nil
            self.phase = .closing
            return .drain(releaseLocks: releaseLocks)
        }
    }

    /// Queues a close until the running operations are done.
    mutating func waitForDrain(_ waiter: Waiter) -> WaitAction {
        guard self.inFlight > 0 else { return .resume(waiter) }
        self.drainWaiters.append(waiter)
        return .suspended
    }

    /// The close is done; returns whom to resume (callers waiting for the start, to fail).
    mutating func closed() -> [Waiter] {
        self.phase = .closed
        return self.takeStartWaiters()
    }

    private mutating func takeStartWaiters() -> [Waiter] {
        defer { self.startWaiters = [] }
        return self.startWaiters
    }
}

extension PostgresBroker {
    /// Applies the schema's migrations, then serves until ``close()`` is called, the task is
    /// cancelled, or a graceful shutdown begins; on the way out it releases the locks it holds.
    ///
    /// While the database cannot be reached it tries again, for up to
    /// ``Configuration/startTimeout``; operations meanwhile throw
    /// ``/HeraldCore/HeraldError/Code/storeUnavailable``.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/storeFailed`` when the database cannot be reached
    ///   within the start timeout or the migrations cannot be applied; every operation throws it from then on.
    public func run() async throws {
        switch self.lifecycle.withLock({ $0.run() }) {
        case .start: break
        case .alreadyRun: preconditionFailure("PostgresBroker.run() is called once")
        }
        guard try await self.migrate() else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waker.run() }
            group.addTask { await self.statistics.run() }
            group.addTask { await self.runBulkJobs() }
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
                try await self.connections.withConnection(timeout: timeout) { connection in
                    try await Schema.migrate(connection, tables: self.tables, schema: self.configuration.schema, logger: self.configuration.logger)
                }
                switch self.lifecycle.withLock({ $0.migrated() }) {
                case .closedMeanwhile:
                    return false
                case .ready(let waiting):
                    for continuation in waiting { continuation.resume() }
                    if attempts > 1 { self.configuration.logger.notice("herald reached PostgreSQL and started") }
                    return true
                }
            } catch {
                let giveUp = self.startFailure(error, attempts: attempts, deadline: deadline)
                switch self.lifecycle.withLock({ $0.startAttemptFailed(giveUp: giveUp) }) {
                case .closedMeanwhile:
                    return false
                case .retry(let waiting):
                    for continuation in waiting { continuation.resume() }
                    self.configuration.logger.warning(
                        "herald cannot reach PostgreSQL yet; trying again",
                        metadata: ["attempt": "\(attempts)", "error": "\(Self.describe(error))"]
                    )
                    try? await Task.sleep(for: min(.seconds(1), deadline - ContinuousClock.now))
                case .fail(let failure, let waiting):
                    for continuation in waiting { continuation.resume() }
                    self.configuration.logger.critical(
                        "herald cannot start", metadata: ["error": "\(failure)", "error.detail": "\(String(reflecting: error))"]
                    )
                    throw failure
                }
            }
        }
    }

    /// The failure a start attempt that threw `error` gives up with, or `nil` to try again (the
    /// database could not be reached, and the start timeout has not passed).
    private func startFailure(_ error: any Error, attempts: Int, deadline: ContinuousClock.Instant) -> HeraldError? {
        if Task.isCancelled {
            return HeraldError(.storeClosed, "the broker was stopped before it could start")
        }
        if Self.isUnreachable(error) {
            if ContinuousClock.now < deadline { return nil }
            return HeraldError(
                .storeFailed,
                "cannot reach PostgreSQL to apply Herald's migrations to schema \(self.configuration.schema): "
                    + "gave up after \(attempts) attempts in \(self.configuration.startTimeout) (is the server running, and the URL right?); "
                    + "the last error: \(Self.describe(error))"
            )
        }
        return HeraldError(.storeFailed, "cannot apply Herald's migrations to schema \(self.configuration.schema): \(Self.summary(of: error))")
    }

    /// Returns once ``run()`` has applied the migrations; throws what stopped it if it could not.
    func started() async throws {
        while true {
            switch self.lifecycle.withLock({ $0.started() }) {
            case .ready: return
            case .fail(let error): throw error
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    if case .resume(let now) = self.lifecycle.withLock({ $0.waitForStart(continuation) }) { now.resume() }
                }
            }
        }
    }

    /// Lets running operations finish, releases the locks and sessions this broker holds (so other
    /// receivers get those messages at once rather than when the locks expire), and stops ``run()``.
    /// Later calls throw ``/HeraldCore/HeraldError/Code/storeClosed``. The caller stops the client.
    public func close() async {
        guard case .drain(let releaseLocks) = self.lifecycle.withLock({ $0.close() }) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if case .resume(let now) = self.lifecycle.withLock({ $0.waitForDrain(continuation) }) { now.resume() }
        }
        if releaseLocks { await self.releaseLocks() }
        for continuation in self.lifecycle.withLock({ $0.closed() }) { continuation.resume() }
        self.stopSignal.continuation.yield()
        self.waker.finish()
        self.statistics.finish()
    }

    /// The storage error the broker stopped on, if it did (fail-stop).
    public var failure: HeraldError? { self.lifecycle.withLock { $0.failure } }

    private func releaseLocks() async {
        let (groups, sessions) = self.locks.drain()
        if groups.isEmpty && sessions.isEmpty { return }
        let now = self.now()
        var keys: Set<String> = []
        do {
            keys = try await self.connections.withConnection { connection in
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
            self.configuration.logger.warning(
                "herald could not release its locks on close; they expire by time", metadata: ["error": "\(String(reflecting: error))"])
        }
        await self.waker.notifyNow(keys)
    }
}
