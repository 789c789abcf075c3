import HeraldCore
import Logging
import PostgresNIO
import Synchronization

extension PostgresBroker {
    /// A deadlock or serialization failure: PostgreSQL rolled the attempt back, run it again.
    private struct Retry: Error {}

    /// What is known of an operation's effect when the connection to the database was lost.
    enum LostOutcome {
        /// Nothing was applied: the operation can be retried as a whole.
        case notApplied
        /// It may have been committed before the connection went away.
        case unknown
    }

    /// Runs `body` with a connection, in a transaction (`transaction`) or as autocommit statements,
    /// retrying it whole after a deadlock or serialization failure. A ``/HeraldCore/HeraldError``
    /// thrown by `body` rolls back its writes and is the operation's result; a database that cannot
    /// be reached is ``/HeraldCore/HeraldError/Code/storeUnavailable``; any other error stops the broker.
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
                let value = try await self.connections.withConnection { connection in
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

    /// Waits until the broker is ready, then counts the operation as running until ``exit()``.
    private func enter() async throws {
        while true {
            switch self.lifecycle.withLock({ $0.enter() }) {
            case .run: return
            case .fail(let error): throw error
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    if case .resume(let now) = self.lifecycle.withLock({ $0.waitToEnter(continuation) }) { now.resume() }
                }
            }
        }
    }

    private func exit() {
        for continuation in self.lifecycle.withLock({ $0.exit() }) { continuation.resume() }
    }

    private func attempt<T: Sendable>(
        _ what: String, connection: PostgresConnection, now: Now, write: Bool, transaction: Bool, _ body: @Sendable (Store) async throws -> T
    ) async throws -> T {
        let chainedCommit = transaction && write ? ChainedCommit() : nil
        let store = Store(connection: connection, broker: self, now: now, chainedCommit: chainedCommit)
        if transaction {
            do { try await store.execute("BEGIN") } catch { throw self.classify(error, during: what) }
        } else if write {
            try self.beforeCommit()
        }
        let value: T
        do {
            value = try await body(store)
            if chainedCommit?.isCommitted == true { return value }
            if transaction && write { try self.beforeCommit() }
        } catch let failure as ChainedCommitFailed {
            throw self.commitFailed(failure.underlying, during: what)
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
                throw self.commitFailed(error, during: what)
            }
        }
        return value
    }

    /// The error of a failed `COMMIT`: its outcome is unknown, so it is never retried and never
    /// acknowledged; unless the connection was lost, the broker stops.
    private func commitFailed(_ error: any Error, during what: String) -> HeraldError {
        if let error = error as? PSQLError, Self.isConnectionLoss(error) {
            return self.unavailable(error, during: "the commit of \(what)", outcome: .unknown)
        }
        return self.failStop(error, during: "the commit of \(what)")
    }

    /// Runs the check a test may inject before every commit; its failure stops the broker.
    func beforeCommit() throws {
        guard let hook = self.configuration._beforeCommit else { return }
        do {
            try hook()
        } catch {
            throw self.failStop(error, during: "commit")
        }
    }

    /// Stops the broker for good and returns the error every later call gets. The error's full
    /// account goes to the log only: the message says what failed and the SQLSTATE, nothing of
    /// the statement or its data.
    func failStop(_ error: any Error, during what: String) -> HeraldError {
        let failure = HeraldError(.storeFailed, "database error during \(what), the broker stopped accepting work: \(Self.summary(of: error))")
        switch self.lifecycle.withLock({ $0.failStop(failure) }) {
        case .logAndReport(let failure):
            self.configuration.logger.critical("herald store failed", metadata: ["error": "\(String(reflecting: error))"])
            return failure
        case .report(let first):
            return first
        }
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

    /// The ``/HeraldCore/HeraldError/Code/storeUnavailable`` error of `what`, which could not
    /// reach the database; notes the broker is cut off (once, in the log) and forgets what it
    /// cached, which may be stale once the database is back (restored, or changed meanwhile).
    func unavailable(_ error: any Error, during what: String, outcome: LostOutcome) -> HeraldError {
        self.cache.forgetAll()
        if self.connections.markUnreachable() {
            self.configuration.logger.warning(
                "herald cannot reach PostgreSQL; answering storeUnavailable until it is back",
                metadata: ["error": "\(Self.describe(error))"]
            )
        }
        switch outcome {
        case .notApplied:
            return HeraldError(
                .storeUnavailable, "PostgreSQL cannot be reached (during \(what)); nothing was applied, try again later: \(Self.describe(error))")
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
        guard self.connections.markReachable() else { return }
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

    /// What a client may be told of a database error: its SQLSTATE and the SQLSTATE's class, or
    /// the kind of error; never the statement, its parameters or the server's message, which may
    /// show data (they go to the log).
    static func summary(of error: any Error) -> String {
        switch error {
        case let error as PSQLError:
            guard let state = error.serverInfo?[.sqlState] else { return "\(error.code)" }
            guard let name = Self.sqlStateClasses[String(state.prefix(2))] else { return "SQLSTATE \(state)" }
            return "SQLSTATE \(state) (\(name))"
        case let error as Schema.MigrationError:
            return error.description
        case is Retry:
            return "deadlocks or serialization failures, again and again"
        default:
            return "\(type(of: error))"
        }
    }

    /// The names of SQLSTATE classes, by their first two characters.
    private static let sqlStateClasses: [String: String] = [
        "0A": "feature not supported", "08": "connection exception", "22": "data exception",
        "23": "integrity constraint violation", "25": "invalid transaction state", "28": "invalid authorization",
        "2B": "dependent privilege descriptors still exist", "3D": "invalid catalog name", "3F": "invalid schema name",
        "40": "transaction rollback", "42": "syntax error or access rule violation", "53": "insufficient resources",
        "54": "program limit exceeded", "55": "object not in prerequisite state", "57": "operator intervention",
        "58": "system error", "P0": "PL/pgSQL error", "XX": "internal error",
    ]
}
