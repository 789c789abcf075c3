import PostgresNIO
import Synchronization

/// The broker's way to the connection pool: a bounded wait for a connection, a statement given up
/// when its connection died under it, and whether the database is known to be unreachable.
final class PooledConnections: Sendable {
    let client: PostgresClient
    private let connectionTimeout: Duration
    /// Whether the last contact with the database found it unreachable (for logging the transitions).
    private let unreachable = Atomic<Bool>(false)

    init(client: PostgresClient, connectionTimeout: Duration) {
        self.client = client
        self.connectionTimeout = connectionTimeout
    }

    /// Notes that the database could not be reached; `true` when it was reachable until now.
    func markUnreachable() -> Bool {
        !self.unreachable.exchange(true, ordering: .relaxed)
    }

    /// Notes that the database answered; `true` when it was unreachable until now.
    func markReachable() -> Bool {
        self.unreachable.load(ordering: .relaxed) && self.unreachable.exchange(false, ordering: .relaxed)
    }

    /// Runs `body` on a connection of the pool, waiting for one at most `timeout` (by default the
    /// connection timeout, or a second while the database is known to be unreachable); the body
    /// itself is not timed, but it is given up (``ConnectionLost``) when its connection has been
    /// closed for a second and it still runs.
    ///
    /// postgres-nio's pool queues a request while it cannot connect and fails it only after a
    /// minute, and has no setting for that; and a statement written to a connection that is
    /// closing can wait forever. So the work runs in a task of its own (started at once, on the
    /// caller's thread), which can be withdrawn (cancelled) when no connection came in time and
    /// abandoned when its connection died. One watcher task checks every operation under way a
    /// few times a second, instead of a timer per operation.
    func withConnection<T: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let timeout = timeout ?? (self.unreachable.load(ordering: .relaxed) ? min(self.connectionTimeout, .seconds(1)) : self.connectionTimeout)
        let operation = PooledOperation<T>(timeout: timeout)
        let work = Task.immediate {
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
        operation.started(work)
        let id = self.watch(operation)
        defer { self.watched.withLock { _ = $0.operations.removeValue(forKey: id) } }
        return try await withTaskCancellationHandler {
            try await operation.result()
        } onCancel: {
            work.cancel()
        }
    }

    /// How often the watcher looks at the operations under way.
    static let watchInterval = Duration.milliseconds(100)

    /// The operations under way, by id, and whether the watcher runs.
    private struct Watched {
        var operations: [Int: any WatchedOperation] = [:]
        var nextId = 0
        var watching = false
    }

    private let watched = Mutex(Watched())

    /// Adds `operation` to those the watcher checks (starting the watcher if it stopped); returns its id.
    private func watch(_ operation: any WatchedOperation) -> Int {
        let (id, start) = self.watched.withLock { watched in
            let id = watched.nextId
            watched.nextId += 1
            watched.operations[id] = operation
            defer { watched.watching = true }
            return (id, !watched.watching)
        }
        if start {
            Task { await self.runWatcher() }
        }
        return id
    }

    /// Checks the operations under way until there are none.
    private func runWatcher() async {
        while true {
            try? await Task.sleep(for: Self.watchInterval)
            let operations = self.watched.withLock { watched -> [any WatchedOperation] in
                if watched.operations.isEmpty { watched.watching = false }
                return Array(watched.operations.values)
            }
            if operations.isEmpty { return }
            let now = ContinuousClock.now
            for operation in operations { operation.check(now: now) }
        }
    }
}

/// No connection of the pool could be had within the connection timeout.
struct NoConnection: Error {
    let timeout: Duration
}

/// The connection closed under a statement that did not end with it (postgres-nio can lose a
/// statement written to a connection that is closing); the operation was given up.
struct ConnectionLost: Error {}

/// An operation ``PooledConnections`` watches.
private protocol WatchedOperation: Sendable {
    /// Gives the operation up if it waited for a connection past its timeout, or if its
    /// connection has been closed for a second.
    func check(now: ContinuousClock.Instant)
}

/// One operation of ``PooledConnections/withConnection(timeout:_:)``: whether it got a connection
/// in time, which, and its result, delivered once to the caller.
private final class PooledOperation<T: Sendable>: WatchedOperation {
    private enum Acquisition { case waiting, acquired, timedOut }

    private struct State {
        var acquisition = Acquisition.waiting
        var connection: PostgresConnection?
        /// When the watcher first found the connection closed.
        var closedSince: ContinuousClock.Instant?
        var work: Task<Void, Never>?
        var result: Result<T, any Error>?
        var waiter: CheckedContinuation<T, any Error>?
    }

    private let state = Mutex(State())
    private let timeout: Duration
    private let deadline: ContinuousClock.Instant

    init(timeout: Duration) {
        self.timeout = timeout
        self.deadline = .now + timeout
    }

    /// Notes the task that runs the operation, to cancel it when the operation is given up.
    func started(_ work: Task<Void, Never>) {
        self.state.withLock { $0.work = work }
    }

    /// Takes the connection; `false` when the wait had timed out already.
    func acquire(_ connection: PostgresConnection) -> Bool {
        self.state.withLock { state in
            guard state.acquisition == .waiting else { return false }
            state.acquisition = .acquired
            state.connection = connection
            return true
        }
    }

    var isAcquired: Bool { self.state.withLock { $0.acquisition == .acquired } }

    func check(now: ContinuousClock.Instant) {
        let failure = self.state.withLock { state -> (any Error)? in
            guard state.result == nil else { return nil }
            switch state.acquisition {
            case .waiting where now >= self.deadline:
                state.acquisition = .timedOut
                return NoConnection(timeout: self.timeout)
            case .acquired:
                guard let connection = state.connection, connection.isClosed else { return nil }
                let since = state.closedSince ?? now
                state.closedSince = since
                return now - since >= .seconds(1) ? ConnectionLost() : nil
            default:
                return nil
            }
        }
        guard let failure else { return }
        self.finish(.failure(failure))
        self.state.withLock { $0.work }?.cancel()
    }

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
