import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Keeps the planner's statistics of the message table fresh after a burst of inserts, rather
/// than wait for autovacuum's next round.
///
/// Receive walks the `message_ready` index in sequence order. With statistics from when the table
/// was small (or empty), PostgreSQL estimates that few rows match and prefers a bitmap scan and a
/// sort of every row of the queue, which makes each receive cost as much as the queue is long. A
/// fresh queue filled and drained within autovacuum's naptime (a minute) would never get out of
/// that; so the first 5,000 inserts of a broker, and then 5,000 inserts at least a minute after
/// the last refresh, trigger an `ANALYZE` of the table. Its ``run()`` runs them, in the
/// background, until it is cancelled or ``finish()`` is called.
final class TableStatistics: Service {
    private let connections: PooledConnections
    private let table: String
    private let logger: Logger
    private let state = Mutex<(inserted: Int, last: ContinuousClock.Instant?)>((0, nil))
    private let wakeUps = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    /// Inserts that make a refresh due.
    static let burst = 5000
    /// The least time between two refreshes.
    static let interval = Duration.seconds(60)

    init(connections: PooledConnections, table: String, logger: Logger) {
        self.connections = connections
        self.table = table
        self.logger = logger
    }

    /// Counts messages this broker inserted; asks for a refresh when one is due.
    func inserted(_ count: Int) {
        let due = self.state.withLock { state -> Bool in
            state.inserted += count
            guard state.inserted >= Self.burst else { return false }
            if let last = state.last, ContinuousClock.now - last < Self.interval { return false }
            state.inserted = 0
            state.last = ContinuousClock.now
            return true
        }
        if due { self.wakeUps.continuation.yield() }
    }

    /// Stops refreshing for good.
    func finish() {
        self.wakeUps.continuation.finish()
    }

    /// Runs the refreshes asked for until cancelled or finished.
    func run() async {
        for await _ in self.wakeUps.stream {
            do {
                try await self.connections.withConnection { connection in
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "ANALYZE \(self.table)"), logger: self.logger).collect()
                }
            } catch {
                self.logger.debug("herald could not analyze the message table", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }
}
