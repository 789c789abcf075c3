import Foundation
import HeraldCore
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Wakes receivers that wait for messages: this process's at once, other processes' through
/// PostgreSQL's `LISTEN`/`NOTIFY` on one channel per schema.
///
/// A notification is a hint, never the delivery path: it is sent after the commit, outside the
/// sending transaction and with asynchronous commit, coalescing what accumulated meanwhile, so
/// sends never wait on PostgreSQL's notify lock. Its ``run()`` listens for other processes'
/// notifications and sends this process's until it is cancelled.
final class PostgresWaker: Service {
    private let connections: PooledConnections
    private let waiters: EntityWaiters
    private let channel: String
    private let logger: Logger
    /// Tags this process's notifications, so its own listener ignores them (it woke its receivers already).
    private let instance = UUID().uuidString.prefix(8).lowercased()
    private let pending = Mutex<Set<String>>([])
    private let wakeUps = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    /// A PostgreSQL payload stays well under the server's 8,000-byte limit.
    static let maxPayload = 6900

    init(connections: PooledConnections, waiters: EntityWaiters, schema: String, logger: Logger) {
        self.connections = connections
        self.waiters = waiters
        self.channel = "herald_\(schema)"
        self.logger = logger
    }

    /// Wakes this process's receivers waiting on `keys` now, and other processes' soon.
    func announce(_ keys: Set<String>) {
        guard !keys.isEmpty else { return }
        self.waiters.notify(keys)
        self.pending.withLock { $0.formUnion(keys) }
        self.wakeUps.continuation.yield()
    }

    /// Tells other processes of `keys` at once (on close, when ``run()`` no longer sends); errors are ignored.
    func notifyNow(_ keys: Set<String>) async {
        guard !keys.isEmpty else { return }
        try? await self.notify(keys.sorted())
    }

    /// Stops sending notifications for good.
    func finish() {
        self.wakeUps.continuation.finish()
    }

    /// Listens and sends notifications until cancelled.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.sendNotifications() }
        }
    }

    private func notify(_ keys: [String]) async throws {
        // Its own transaction with asynchronous commit: it writes nothing worth an fsync, and
        // holds PostgreSQL's notify lock only for an instant.
        let payload = self.instance + "|" + keys.joined(separator: ",")
        try await self.connections.withConnection { connection in
            _ = try await connection.query(
                "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(self.channel), \(payload))", logger: self.logger
            ).collect()
        }
    }

    private func sendNotifications() async {
        for await _ in self.wakeUps.stream {
            // Coalesce: what arrives within a few milliseconds goes out as one notification (other
            // processes' receivers wake a little later; this process's were woken at once).
            try? await Task.sleep(for: .milliseconds(2))
            let keys = self.pending.withLock { pending -> [String] in
                defer { pending.removeAll() }
                return pending.sorted()
            }
            for chunk in Self.chunks(keys) {
                do {
                    try await self.notify(chunk)
                } catch {
                    self.logger.debug("herald could not notify other processes", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
        }
    }

    /// `keys` in groups whose payload fits a notification.
    static func chunks(_ keys: [String]) -> [[String]] {
        var chunks: [[String]] = [[]]
        var size = 0
        for key in keys {
            if size + key.utf8.count + 1 > Self.maxPayload {
                chunks.append([])
                size = 0
            }
            chunks[chunks.count - 1].append(key)
            size += key.utf8.count + 1
        }
        return chunks.filter { !$0.isEmpty }
    }

    /// Listens for other processes' wake-ups; a lost connection (the database restarted) is
    /// replaced as soon as the database is back, and receivers poll meanwhile.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await self.connections.withConnection { connection in
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
                self.logger.log(
                    level: level, "herald lost its LISTEN connection; polling until it is back", metadata: ["error": "\(PostgresBroker.describe(error))"]
                )
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
