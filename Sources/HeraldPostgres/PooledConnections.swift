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
    /// closing can wait forever. So the work runs in a task of its own, watched by another: it is
    /// withdrawn (cancelled) when no connection came in time, and abandoned when its connection died.
    func withConnection<T: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let timeout = timeout ?? (self.unreachable.load(ordering: .relaxed) ? min(self.connectionTimeout, .seconds(1)) : self.connectionTimeout)
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
}

/// No connection of the pool could be had within the connection timeout.
struct NoConnection: Error {
    let timeout: Duration
}

/// The connection closed under a statement that did not end with it (postgres-nio can lose a
/// statement written to a connection that is closing); the operation was given up.
struct ConnectionLost: Error {}

/// One operation of ``PooledConnections/withConnection(timeout:_:)``: whether it got a connection
/// in time, which, and its result, delivered once to the caller.
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
