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
///
/// Notifications are sent only while another broker of the schema listens: each listening
/// connection holds a shared advisory lock (``listenerLock``), which the waker counts every few
/// seconds, and a broker that starts listening says so at once with a notification of no keys.
/// A lone broker (one `herald serve`) thus sends none; each costs a transaction on the server.
final class PostgresWaker: Service {
    private let connections: PooledConnections
    private let waiters: EntityWaiters
    /// The entities this broker has resolved: a change another process announces makes it forget one.
    private let cache: EntityCache
    private let channel: String
    private let logger: Logger
    /// Tags this process's notifications, so its own listener ignores them (it woke its receivers already).
    private let instance = UUID().uuidString.prefix(8).lowercased()
    private let pending = Mutex<Set<String>>([])
    private let wakeUps = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    /// Whether another broker may listen (`true` until the first count says otherwise), and how
    /// many announcements of arrivals were received (a count that started before one is stale).
    private let listeners = Mutex((othersMayListen: true, arrivals: 0))
    /// Whether this broker's listening connection holds the listener lock now.
    private let holdsListenerLock = Atomic<Bool>(false)
    private let listenerKey: Int64

    /// A PostgreSQL payload stays well under the server's 8,000-byte limit.
    static let maxPayload = 6900

    init(connections: PooledConnections, waiters: EntityWaiters, cache: EntityCache, schema: String, logger: Logger) {
        self.connections = connections
        self.waiters = waiters
        self.cache = cache
        self.channel = "herald_\(schema)"
        self.logger = logger
        self.listenerKey = Self.listenerKey(schema: schema)
    }

    /// How often the waker counts the brokers that listen.
    static let listenerCountInterval = Duration.seconds(2)

    /// The first key of the shared advisory lock a listening connection holds ("HRLD").
    static let listenerLockClass: Int64 = 0x4852_4C44

    /// The second key: the schema's, hashed (FNV-1a) into 31 bits. Two schemas that share it only
    /// make each other's brokers notify.
    static func listenerKey(schema: String) -> Int64 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in schema.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return Int64(hash & 0x7FFF_FFFF)
    }

    /// Wakes this process's receivers waiting on `keys` now, and other processes' soon.
    func announce(_ keys: Set<String>) {
        guard !keys.isEmpty else { return }
        self.waiters.notify(keys)
        guard self.listeners.withLock({ $0.othersMayListen }) else { return }
        self.pending.withLock { $0.formUnion(keys) }
        self.wakeUps.continuation.yield()
    }

    /// Tells other processes of `keys` at once (on close, when ``run()`` no longer sends); errors are ignored.
    func notifyNow(_ keys: Set<String>) async {
        guard !keys.isEmpty else { return }
        try? await self.notify(keys.sorted())
    }

    /// The prefix of a notification's key that names an entity whose options changed, rather than
    /// a wait key (which is a number): other brokers forget the entity and read it again.
    static let changedEntityPrefix = "~"

    /// Tells other processes that the entity with `key` changed (its options), so they read it again.
    func announceChange(ofEntity key: String) {
        self.announce([Self.changedEntityPrefix + key])
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
            group.addTask { await self.recountListeners() }
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

    private func releaseListenerLock(_ connection: PostgresConnection) async {
        self.holdsListenerLock.store(false, ordering: .relaxed)
        // A lock left on a pooled connection only makes brokers notify for nothing.
        _ = try? await connection.query(
            "SELECT pg_advisory_unlock_shared(\(Int32(Self.listenerLockClass)), \(Int32(self.listenerKey)))", logger: self.logger
        ).collect()
    }

    /// Counts the listening connections of the schema's brokers every few seconds, so that
    /// notifications stop once no other broker listens.
    private func recountListeners() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.listenerCountInterval)
            await self.countListeners()
        }
    }

    /// Whether another broker listens, as the listener locks tell; when the count fails,
    /// notifications go on.
    private func countListeners() async {
        let arrivals = self.listeners.withLock { $0.arrivals }
        let heldBefore = self.holdsListenerLock.load(ordering: .relaxed)
        var others = true
        do {
            let count = try await self.connections.withConnection { connection in
                try await connection.query(
                    """
                    SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND classid::int8 = \(Self.listenerLockClass) AND objid::int8 = \(self.listenerKey)
                    """, logger: self.logger
                ).collect().first?.decode(Int64.self) ?? 0
            }
            // This broker's own lock counts only if it was held throughout.
            let own = heldBefore && self.holdsListenerLock.load(ordering: .relaxed) ? 1 : 0
            others = count > own
        } catch {
            self.logger.debug("herald could not count the brokers that listen", metadata: ["error": "\(PostgresBroker.describe(error))"])
        }
        self.listeners.withLock { listeners in
            // A broker that arrived while counting may not have been counted.
            if listeners.arrivals == arrivals { listeners.othersMayListen = others }
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
                    _ = try await connection.query(
                        "SELECT pg_advisory_lock_shared(\(Int32(Self.listenerLockClass)), \(Int32(self.listenerKey)))", logger: self.logger
                    ).collect()
                    self.holdsListenerLock.store(true, ordering: .relaxed)
                    do {
                        try await connection.listen(on: self.channel) { notifications in
                            // Anything announced while not listening was missed: everyone looks again,
                            // and entities are read again (another process may have changed one).
                            self.waiters.notifyAll()
                            self.cache.forgetAll()
                            // Other brokers notify from now on (an announcement of no keys); those
                            // that listened before are counted.
                            try? await self.notify([])
                            await self.countListeners()
                            for try await notification in notifications {
                                let parts = notification.payload.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
                                if parts.count == 2 && parts[0] == self.instance { continue }
                                self.listeners.withLock {
                                    $0.othersMayListen = true
                                    $0.arrivals += 1
                                }
                                var keys = Set((parts.last ?? "").split(separator: ",").map(String.init))
                                for key in keys where key.hasPrefix(Self.changedEntityPrefix) {
                                    self.cache.forget(String(key.dropFirst(Self.changedEntityPrefix.count)))
                                    keys.remove(key)
                                }
                                self.waiters.notify(keys)
                            }
                        }
                    } catch {
                        await self.releaseListenerLock(connection)
                        throw error
                    }
                    await self.releaseListenerLock(connection)
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
