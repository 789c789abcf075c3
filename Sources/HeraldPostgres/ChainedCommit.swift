import HeraldCore
import Logging
import PostgresNIO
import Synchronization

/// The commit of a transaction sent right after its last statement, from the connection's event
/// loop, when the statement's rows arrive: no trip through the cooperative thread pool between
/// them.
///
/// A send holds its target entity's row locked until the commit, and every other transaction
/// sending to that entity waits for it. Under load the task that ran the statement may wait for a
/// thread before it can send `COMMIT`, and the row stays locked all that time (in a benchmark of
/// 64 message handlers publishing to one topic, most of the time the row was held). Chained, the
/// commit goes out as soon as the statement is done.
final class ChainedCommit: Sendable {
    private let committed = Atomic<Bool>(false)

    /// Whether the transaction was committed by ``Store/rowsThenCommit(_:if:)``.
    var isCommitted: Bool { self.committed.load(ordering: .acquiring) }

    fileprivate func markCommitted() { self.committed.store(true, ordering: .releasing) }
}

/// The `COMMIT` chained to a statement failed: the transaction's outcome is unknown, as when a
/// `COMMIT` of its own fails.
struct ChainedCommitFailed: Error {
    let underlying: any Error
}

extension Store {
    /// Runs `query` as the last statement of the attempt's transaction and, when `shouldCommit`
    /// accepts its rows, commits the transaction at once on the connection's event loop;
    /// otherwise the transaction stays open for more statements. Outside a transaction it only
    /// runs the query.
    ///
    /// Throws ``ChainedCommitFailed`` when the commit failed.
    func rowsThenCommit(_ query: PostgresQuery, if shouldCommit: @escaping @Sendable ([PostgresRow]) -> Bool) async throws -> [PostgresRow] {
        guard let chained = self.chainedCommit else { return try await self.rows(query) }
        // What the broker checks before every commit (a fault a test injects) comes before the
        // statement, since nothing runs between it and the commit.
        try self.broker.beforeCommit()
        let connection = self.connection
        let logger = self.logger
        let result = connection.query(query, logger: logger).flatMap { result -> EventLoopFuture<([PostgresRow], Bool)> in
            let rows = Array(result.rows)
            guard shouldCommit(rows) else { return connection.eventLoop.makeSucceededFuture((rows, false)) }
            return connection.query("COMMIT", logger: logger).flatMapErrorThrowing { throw ChainedCommitFailed(underlying: $0) }.map { _ in (rows, true) }
        }
        let (rows, committed) = try await result.get()
        if committed { chained.markCommitted() }
        return rows
    }
}
