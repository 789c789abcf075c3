public import CoreMetrics
public import Foundation
import GRDB
public import HeraldCore
public import Logging
public import ServiceLifecycle
public import Tracing

/// The embedded broker: one SQLite file in WAL mode, every change fsynced before it is
/// acknowledged, concurrent changes sharing one transaction and one fsync (group commit). SQLite
/// itself does not sync at commit (`synchronous=OFF`): the broker `fdatasync`s the WAL after each
/// group's commit and acknowledges the group only then, which is as durable as `synchronous=FULL`.
///
/// The broker is a `Service`: ``init(path:configuration:)`` opens and checks the file, and
/// ``run()`` starts the threads that write and sync it and serves until a graceful shutdown (or
/// ``close()``, or cancellation). Operations called before ``run()`` wait until it starts.
///
/// ```swift
/// try await SQLiteBroker.withBroker(path: "herald.sqlite") { broker in
///     try await broker.createQueue("orders")
///     try await broker.send(Message(text: "hello"), to: .queue("orders"))
///     for message in try await broker.receive(from: .queue("orders"), maxCount: 10) {
///         try await broker.complete(message.lockToken!)
///     }
/// }
/// ```
/// In a server, add the broker to the `ServiceGroup` before the services that use it, so that a
/// graceful shutdown stops them first and the broker last.
///
/// The file is opened with an exclusive lock: one broker per file, in one process. Locks and
/// session locks live in memory; everything a crash must not lose is on disk.
///
/// For unit tests and previews, ``inMemory(configuration:)`` (or
/// ``withInMemoryBroker(configuration:_:)``) gives the same store on an in-memory database: no
/// file, no fsync, nothing kept after it closes.
public final class SQLiteBroker: MessageBroker, Service {
    /// How the broker is set up.
    public struct Configuration: Sendable {
        /// The source of time; tests pass a ``/HeraldCore/ManualBrokerClock``.
        public var clock: any BrokerClock
        /// Where the broker logs.
        public var logger: Logger
        /// The free space, in bytes, the disk holding the database must keep (its file system's free
        /// space plus the database's own free pages); 0 turns the check off. Below it, changes that
        /// grow the store are refused with ``/HeraldCore/HeraldError/Code/insufficientStorage``: sends
        /// (scheduled ones too), creating queues, topics and subscriptions, and transactions that
        /// send, append events or write documents. Receives, settlements and dead-letter purges still
        /// run, and sends resume by themselves once there is room again. The room is measured at most
        /// every 100 ms, not per message.
        ///
        /// The default, ``defaultMinimumFreeDiskBytes``, leaves room for what the store writes
        /// without being asked to grow: the WAL (a few MiB between checkpoints, up to 16 MiB after
        /// a burst) and the checkpoint that copies it into the database file.
        public var minimumFreeDiskBytes: Int64
        /// When set, replaces `statvfs` as the source of the file system's free bytes in the folder
        /// of the database (`nil`: unknown, nothing is refused). For tests.
        package var _fileSystemFreeSpace: (@Sendable (_ directory: String) -> Int64?)?
        /// Called before each fsync of the WAL; a thrown error is treated as a failed fsync (fault
        /// injection in tests).
        package var _beforeCommit: (@Sendable () throws -> Void)?
        /// The SQLite VFS to open the file through, by its registered name (`nil`: the default).
        /// For the simulator's storage fault layer.
        package var _vfsName: String?
        /// When set, replaces the broker's own `fdatasync` of the WAL, with the WAL's path: a
        /// fault-injecting VFS must see that sync to know what a crash keeps. A thrown error is a
        /// failed fsync. For the simulator.
        package var _syncWAL: (@Sendable (_ walPath: String) throws -> Void)?
        /// The lock-clock time (monotonic nanoseconds) that `complete` compares a lock's expiry
        /// with, given the current one; the current one itself. The simulator replaces it to inject
        /// a bug it must catch (accepting expired locks).
        package var _completionLockTime: @Sendable (_ monotonicNow: Int64) -> Int64
        /// How often a waiting receive looks again without a send to wake it (for expired locks
        /// and due schedules); tests that count transactions lengthen it.
        package var longPollInterval: Duration = .milliseconds(100)
        /// Where the broker's counters go (see the README's "Tracing, metrics and logs"); `nil`:
        /// the factory `MetricsSystem.bootstrap` installed when the broker is opened.
        public var metricsFactory: (any MetricsFactory)?
        /// Where the broker's spans go (see the README's "Tracing, metrics and logs"): by default the
        /// tracer in force when the configuration is made (bootstrapped, or bound with `withTracer`);
        /// `nil` for none. Without one, no span is made and nothing is added to messages.
        public var tracer: (any Tracer)?
        /// How many dead letters one step of a bulk job handles, in one transaction: a larger step
        /// finishes a job in fewer transactions, a smaller one holds the writer for less time.
        public var bulkJobStepSize: Int = 100

        /// Creates a configuration.
        public init(clock: any BrokerClock = SystemBrokerClock(), logger: Logger = Logger(label: "herald.sqlite")) {
            self.clock = clock
            self.logger = logger
            self.tracer = MessagingTracing.current
            self.minimumFreeDiskBytes = Self.defaultMinimumFreeDiskBytes
            self._fileSystemFreeSpace = nil
            self._beforeCommit = nil
            self._vfsName = nil
            self._syncWAL = nil
            self._completionLockTime = { $0 }
        }

        /// The default ``minimumFreeDiskBytes``: 64 MiB, four times the largest the WAL is kept at.
        public static let defaultMinimumFreeDiskBytes: Int64 = 64 << 20
    }

    let committer: GroupCommitter
    private let waiters = EntityWaiters()
    let configuration: Configuration
    /// Works through the bulk jobs on dead letters (see SQLiteBroker+Management.swift).
    let jobs: BulkJobRunner
    private let diskSpace: DiskSpaceGuard
    /// The database file; `nil` in memory.
    let path: String?
    private let metrics: BrokerMetrics
    private let tracer: (any Tracer)?

    /// How often a waiting receive looks again even without a wake-up (lock expiries and
    /// scheduled times make messages visible without a commit to announce them).
    private var pollInterval: Duration { self.configuration.longPollInterval }

    /// Opens (creating if needed) the broker stored at `path`. Messages that were locked when the
    /// file was last closed, or when its process crashed, become visible again. Nothing runs until
    /// ``run()``.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/storeFailed`` when the file cannot be opened, fails its
    ///   integrity check, or is open in another broker (see ``isFileInUse(_:)``).
    public convenience init(path: String, configuration: Configuration = Configuration()) throws {
        // Absolute from here on: the WAL and its directory are opened later, when the process's
        // current directory may have changed, and a bare file name has no directory part.
        try self.init(file: URL(fileURLWithPath: path).path, configuration: configuration)
    }

    /// Opens the broker on the file at `path` (absolute), or with `nil` on a new, empty in-memory
    /// database (see ``inMemory(configuration:)``).
    init(file path: String?, configuration: Configuration) throws {
        var configuration = configuration
        // Nothing is written to disk, so no disk can fill up.
        if path == nil { configuration.minimumFreeDiskBytes = 0 }
        let name = path.map { "the database at \($0)" } ?? "the in-memory database"
        self.configuration = configuration
        self.path = path
        self.metrics = BrokerMetrics(factory: configuration.metricsFactory)
        self.tracer = MessagingTracing.active(configuration.tracer)
        var grdb = GRDB.Configuration()
        grdb.label = "herald"
        // The writer keeps a transaction open across accesses while the syncer works.
        grdb.allowsUnsafeTransactions = true
        grdb.prepareDatabase { db in
            if path != nil {
                // One process owns the file: locks live in its memory.
                try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                // FULL while the file is opened and checked; the group committer then turns it OFF
                // and makes commits durable with its own fsync of the WAL.
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            // Sorts and temporary tables in memory: no query may need a new file descriptor.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        let database: DatabaseQueue
        let state: WriterState
        let runningJobs: [String]
        do {
            if let path {
                if configuration._vfsName == nil { try Self.createPrivately(path) }
                database = try DatabaseQueue(path: Self.openPath(path, vfs: configuration._vfsName), configuration: grdb)
                let check = try database.writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA quick_check") } ?? "no answer"
                guard check == "ok" else {
                    throw HeraldError(.storeFailed, "the database at \(path) is corrupt (\(check)); refusing to serve it")
                }
            } else {
                // A private database of this connection: no file, no name another connection could open.
                database = try DatabaseQueue(configuration: grdb)
            }
            try Schema.migrator.migrate(database)
            (state, runningJobs) = try database.writeWithoutTransaction { db in
                // Recovery: every lock died with the process that held it.
                try db.execute(sql: "UPDATE message SET lock_nonce = NULL, locked_until = NULL WHERE lock_nonce IS NOT NULL")
                // Bulk jobs resume where they stopped.
                let jobs = try String.fetchAll(db, sql: "SELECT id FROM bulk_job WHERE state = 'running' ORDER BY created_at, id")
                return (try WriterState(db: db, completionLockTime: configuration._completionLockTime), jobs)
            }
        } catch let error as HeraldError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            throw HeraldError(.storeFailed, "cannot open \(name): \(Self.fileInUseReason)")
        } catch {
            throw HeraldError(.storeFailed, "cannot open \(name): \(error)")
        }
        let committer: GroupCommitter
        do {
            committer = try GroupCommitter(database: database, path: path, state: state, waiters: self.waiters, configuration: configuration)
        } catch {
            try? database.close()
            throw HeraldError(.storeFailed, "cannot prepare the writer for \(name): \(error)")
        }
        self.committer = committer
        self.jobs = BulkJobRunner(jobs: runningJobs)
        self.diskSpace = DiskSpaceGuard(
            databasePath: path ?? "", minimum: configuration.minimumFreeDiskBytes,
            fileSystemFreeSpace: configuration._fileSystemFreeSpace, logger: configuration.logger,
            onChange: { isRefusing in committer.setLowOnSpace(isRefusing) }
        )
    }

    /// Creates an empty database file at `path` readable by its owner only (0600), unless one
    /// exists; SQLite gives its write-ahead log the database file's permissions.
    private static func createPrivately(_ path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            closeDescriptor(descriptor)
        } else if errno != EEXIST {
            throw HeraldError(.storeFailed, "cannot create the database at \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Why an open fails when another broker holds the file.
    private static let fileInUseReason = "another broker has it open (one broker per file, in one process)"

    /// Whether `error`, thrown by ``init(path:configuration:)``, means that another broker (in
    /// this process or another, such as a running `herald serve`) has the file open.
    public static func isFileInUse(_ error: any Error) -> Bool {
        guard let error = error as? HeraldError, error.code == .storeFailed else { return false }
        return error.message.hasSuffix(Self.fileInUseReason)
    }

    /// `path`, or with a VFS a URI filename that names it (SQLite built with URI support).
    private static func openPath(_ path: String, vfs: String?) -> String {
        guard let vfs else { return path }
        var escaped = ""
        for character in path.unicodeScalars {
            switch character {
            case "%", "?", "#": escaped += String(format: "%%%02X", character.value)
            default: escaped.unicodeScalars.append(character)
            }
        }
        return "file:\(escaped)?vfs=\(vfs)"
    }

    // MARK: Lifecycle

    /// Starts the threads that write and sync the file, then serves until a graceful shutdown
    /// begins, the task is cancelled, or ``close()`` is called. Then it drains: operations already
    /// accepted finish and are fsynced, later ones throw ``/HeraldCore/HeraldError/Code/storeClosed``;
    /// it returns once the threads have stopped and the file is closed. Called once; after
    /// ``close()`` it returns at once.
    public func run() async throws {
        guard self.committer.start() else { return }
        await withTaskGroup(of: Void.self) { group in
            // Bulk jobs resume where they stopped, and stop between two steps.
            group.addTask { await self.runBulkJobs() }
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    await self.committer.waitUntilStopped()
                } onGracefulShutdown: {
                    self.committer.beginClosing()
                }
            } onCancel: {
                self.committer.beginClosing()
            }
            group.cancelAll()
        }
    }

    /// Finishes the accepted work and closes the file, and makes ``run()`` return. Later calls
    /// throw ``/HeraldCore/HeraldError/Code/storeClosed``; so do the operations still waiting for a
    /// ``run()`` that never came.
    public func close() async {
        await self.committer.close()
    }

    /// Runs a broker on the file at `path` for the duration of `body`, then closes it gracefully:
    /// the operations `body` started finish and are fsynced first.
    ///
    /// - Parameters:
    ///   - path: The database file, created if needed.
    ///   - configuration: The clock, logger and disk-space watermark.
    ///   - body: What to do with the broker.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws, or what ``init(path:configuration:)`` throws.
    public static func withBroker<T>(
        path: String, configuration: Configuration = Configuration(), _ body: (SQLiteBroker) async throws -> T
    ) async throws -> T {
        try await Self.withRunning(try SQLiteBroker(path: path, configuration: configuration), body)
    }

    /// Runs `broker` for the duration of `body`, then closes it gracefully.
    static func withRunning<T>(_ broker: SQLiteBroker, _ body: (SQLiteBroker) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            do {
                let result = try await body(broker)
                await broker.close()
                return result
            } catch {
                await broker.close()
                throw error
            }
        }
    }

    /// The storage error the broker stopped on, if it did (fail-stop).
    public var failure: HeraldError? { self.committer.failure }

    // MARK: Entities

    public func createQueue(_ name: String, options: EntityOptions) async throws {
        try await self.admitGrowth(by: 0)
        try await self.committer.perform { try $0.createEntity(.queue(name), options: options, filter: nil) }
    }

    public func deleteQueue(_ name: String) async throws {
        try await self.committer.perform { try $0.deleteEntity(.queue(name)) }
    }

    public func listQueues() async throws -> [EntityDescription] {
        try await self.committer.perform(readOnly: true) {
            try $0.listEntities(kind: .queue, topic: nil).map { EntityDescription(path: $0.path, options: $0.options) }
        }
    }

    public func createTopic(_ name: String, options: EntityOptions) async throws {
        try await self.admitGrowth(by: 0)
        try await self.committer.perform { try $0.createEntity(.topic(name), options: options, filter: nil) }
    }

    public func deleteTopic(_ name: String) async throws {
        try await self.committer.perform { try $0.deleteEntity(.topic(name)) }
    }

    public func listTopics() async throws -> [EntityDescription] {
        try await self.committer.perform(readOnly: true) {
            try $0.listEntities(kind: .topic, topic: nil).map { EntityDescription(path: $0.path, options: $0.options) }
        }
    }

    public func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws {
        try await self.admitGrowth(by: 0)
        try await self.committer.perform { try $0.createEntity(.subscription(name, of: topic), options: options, filter: filter) }
    }

    public func deleteSubscription(_ name: String, topic: String) async throws {
        try await self.committer.perform { try $0.deleteEntity(.subscription(name, of: topic)) }
    }

    public func listSubscriptions(topic: String) async throws -> [SubscriptionDescription] {
        try await self.committer.perform(readOnly: true) { try $0.listEntities(kind: .subscription, topic: topic) }
    }

    // MARK: Sending

    public func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] {
        if messages.isEmpty { return [] }
        let receipts = try await MessagingTracing.send(messages, to: entity, tracer: self.tracer) { messages in
            try await self.admitGrowth(by: messages.reduce(0) { $0 + $1.body.count })
            return try await self.committer.perform { try $0.send(messages, to: entity) }
        }
        self.metrics.sent(receipts, to: entity)
        return receipts
    }

    public func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws {
        try HeraldLimits.checkCancelCount(sequenceNumbers)
        try await self.committer.perform { try $0.cancelScheduled(sequenceNumbers, in: entity) }
    }

    // MARK: Receiving

    public func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxBytes: .max, maxWaitTime: maxWaitTime, mode: mode)
    }

    public func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: entity, tracer: self.tracer) {
            try await self.receiveUntraced(from: entity, maxCount: maxCount, maxBytes: maxBytes, maxWaitTime: maxWaitTime, mode: mode)
        }
        self.metrics.consumed(messages, from: entity)
        return messages
    }

    private func receiveUntraced(
        from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode
    ) async throws -> [ReceivedMessage] {
        try HeraldLimits.checkWaitTime(maxWaitTime)
        let deadline = ContinuousClock.now + maxWaitTime
        let attempt: @Sendable (StoreTransaction) throws -> [ReceivedMessage] = {
            try $0.receive(from: entity, maxCount: maxCount, maxBytes: maxBytes, mode: mode)
        }
        guard maxWaitTime > .zero else { return try await self.committer.perform(attempt) }
        var messages: [ReceivedMessage] = []
        repeat {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { break }
            // Finding nothing, the attempt waits in the writer and runs again in the transaction of
            // the next send to the entity (one fsync for both); after the poll interval it looks
            // again, for what no send reports (expired locks, due schedules).
            messages = try await self.committer.perform(
                parkingOn: entity.entityKey, atMost: min(remaining, self.pollInterval), isEmpty: { $0.isEmpty }, attempt)
        } while messages.isEmpty && !Task.isCancelled
        return messages
    }

    public func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: entity, tracer: self.tracer) {
            try await self.committer.perform { try $0.receiveDeferred(from: entity, sequenceNumbers: sequenceNumbers) }
        }
        self.metrics.consumed(messages, from: entity)
        return messages
    }

    public func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try await self.committer.perform(readOnly: true) { try $0.peek(entity, from: fromSequenceNumber, maxCount: maxCount) }
    }

    // MARK: Settlement

    @discardableResult
    public func complete(_ token: LockToken) async throws -> SettlementOutcome {
        let outcome = try await MessagingTracing.settle("complete", token, tracer: self.tracer) {
            try await self.committer.perform { try $0.complete([token]) }
        }
        self.metrics.settled(outcome, .completed, token.entity)
        return outcome
    }

    @discardableResult
    public func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome {
        if tokens.isEmpty { return .settled }
        let outcome = try await self.committer.perform { try $0.complete(tokens) }
        for token in tokens { self.metrics.settled(outcome, .completed, token.entity) }
        return outcome
    }

    @discardableResult
    public func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome {
        let outcome = try await MessagingTracing.settle("abandon", token, tracer: self.tracer) {
            try await self.committer.perform { try $0.abandon(token, delay: delay) }
        }
        self.metrics.settled(outcome, .abandoned, token.entity)
        return outcome
    }

    @discardableResult
    public func release(_ token: LockToken) async throws -> SettlementOutcome {
        let outcome = try await MessagingTracing.settle("release", token, tracer: self.tracer) { try await self.committer.perform { try $0.release(token) } }
        self.metrics.settled(outcome, .abandoned, token.entity)
        return outcome
    }

    @discardableResult
    public func `defer`(_ token: LockToken) async throws -> SettlementOutcome {
        let outcome = try await MessagingTracing.settle("defer", token, tracer: self.tracer) { try await self.committer.perform { try $0.deferMessage(token) } }
        self.metrics.settled(outcome, .deferred, token.entity)
        return outcome
    }

    @discardableResult
    public func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome {
        let outcome = try await MessagingTracing.settle("dead_letter", token, tracer: self.tracer) {
            try await self.committer.perform { try $0.deadLetter(token, reason: reason, description: description) }
        }
        self.metrics.settled(outcome, .deadLettered, token.entity)
        return outcome
    }

    public func renewLock(_ token: LockToken) async throws -> Date {
        try await self.committer.perform { try $0.renewLock(token) }
    }

    // MARK: Sessions

    public func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock {
        let session = try await self.waiting(for: entity, maxWaitTime: maxWaitTime, until: { $0 != nil }) {
            try await self.committer.perform { try $0.acceptSession(on: entity, sessionId: sessionId) }
        }
        guard let session else {
            throw HeraldError(.noSessionAvailable, "no session of '\(entity)' has messages and no holder")
        }
        return session
    }

    public func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: session.entity, tracer: self.tracer) {
            try await self.waiting(for: session.entity, maxWaitTime: maxWaitTime, until: { !$0.isEmpty }) {
                try await self.committer.perform { try $0.receive(from: session, maxCount: maxCount) }
            }
        }
        self.metrics.consumed(messages, from: session.entity)
        return messages
    }

    public func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        let messages = try await MessagingTracing.receive(from: session.entity, tracer: self.tracer) {
            try await self.committer.perform { try $0.receiveDeferred(from: session, sequenceNumbers: sequenceNumbers) }
        }
        self.metrics.consumed(messages, from: session.entity)
        return messages
    }

    public func sessionState(_ session: SessionLock) async throws -> Data? {
        try await self.committer.perform { try $0.sessionState(session) }
    }

    public func setSessionState(_ state: Data?, for session: SessionLock) async throws {
        try await self.committer.perform { try $0.setSessionState(state, for: session) }
    }

    public func renewSessionLock(_ session: SessionLock) async throws -> SessionLock {
        try await self.committer.perform { try $0.renewSessionLock(session) }
    }

    public func releaseSession(_ session: SessionLock) async throws {
        try await self.committer.perform { try $0.releaseSession(session) }
    }

    // MARK: Dead letters and counts

    @discardableResult
    public func resubmit(_ token: LockToken) async throws -> SettlementOutcome {
        let outcome = try await MessagingTracing.settle("resubmit", token, tracer: self.tracer) { try await self.committer.perform { try $0.resubmit(token) } }
        self.metrics.settled(outcome, .resubmitted, token.entity.origin)
        return outcome
    }

    public func counts(of entity: EntityPath) async throws -> EntityCounts {
        try await self.committer.perform { try $0.counts(entity) }
    }

    // MARK: Disk space

    /// Throws ``/HeraldCore/HeraldError/Code/insufficientStorage`` while the disk is below
    /// ``Configuration/minimumFreeDiskBytes``; `bytes` is roughly what the change adds.
    private func admitGrowth(by bytes: Int) async throws {
        guard let path = self.path else { return }
        try await self.diskSpace.admit(bytes) {
            try await self.committer.perform(readOnly: true) { try $0.spareBytes(databasePath: path) }
        }
    }

    // MARK: Long polling

    /// How many receives wait now for a send to their entity, to be served in its transaction.
    package var parkedReceiveCount: Int { self.committer.parkedCount }

    /// Runs `attempt` until `isDone` accepts its result or `maxWaitTime` passes, sleeping between
    /// attempts until a commit touches the entity (or ``pollInterval`` passes).
    private func waiting<T>(
        for entity: EntityPath, maxWaitTime: Duration, until isDone: (T) -> Bool, _ attempt: () async throws -> T
    ) async throws -> T {
        try await self.waiters.poll(
            key: { entity.entityKey }, maxWaitTime: maxWaitTime, pollInterval: self.pollInterval, until: isDone, attempt
        )
    }
}

extension SQLiteBroker: TransactionalBroker {
    public func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt {
        if transaction.isEmpty { return TransactionReceipt(sends: [], streamVersions: [:]) }
        let receipt = try await MessagingTracing.commit(transaction, tracer: self.tracer) { try await self.commitUntraced($0) }
        self.metrics.committed(transaction, receipt)
        return receipt
    }

    private func commitUntraced(_ transaction: BrokerTransaction) async throws -> TransactionReceipt {
        // Settlements, cancellations, inbox records and document deletions do not grow the store.
        let growth =
            transaction.sends.reduce(0) { $0 + $1.message.body.count }
            + transaction.appends.reduce(0) { $0 + $1.events.reduce(0) { $0 + $1.data.count } }
            + transaction.documentWrites.reduce(0) { $0 + ($1.data?.count ?? 0) }
        if !transaction.sends.isEmpty || !transaction.appends.isEmpty || transaction.documentWrites.contains(where: { $0.data != nil }) {
            try await self.admitGrowth(by: growth)
        }
        return try await self.committer.perform { try $0.commit(transaction) }
    }

    public func document(_ key: String, in collection: String) async throws -> VersionedDocument? {
        try BrokerTransaction.checkKey(collection, "collection")
        try BrokerTransaction.checkKey(key, "document key")
        return try await self.committer.perform(readOnly: true) { try $0.document(key, in: collection) }
    }

    public func documents(in collection: String) async throws -> [String: VersionedDocument] {
        try BrokerTransaction.checkKey(collection, "collection")
        return try await self.committer.perform(readOnly: true) { try $0.documents(in: collection) }
    }

    public func inboxContains(_ entry: InboxEntry) async throws -> Bool {
        try entry.check()
        return try await self.committer.perform(readOnly: true) { try $0.inboxContains(entry) }
    }

    public func inboxEntries(among entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        if entries.isEmpty { return [] }
        for entry in entries { try entry.check() }
        return try await self.committer.perform(readOnly: true) { transaction in Set(try entries.filter { try transaction.inboxContains($0) }) }
    }

    public func readStream(_ stream: String, from version: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try BrokerTransaction.checkKey(stream, "stream name")
        return try await self.committer.perform(readOnly: true) { try $0.readEvents(stream: stream, from: version, maxCount: maxCount) }
    }

    public func readAll(from position: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try await self.committer.perform(readOnly: true) { try $0.readEvents(stream: nil, from: position, maxCount: maxCount) }
    }
}

extension SQLiteBroker {
    /// Opens a broker and runs it in a task of its own until ``close()``, for code that keeps a
    /// broker beyond one scope (the simulator's restarts, test fixtures). Everything else runs the
    /// broker with ``withBroker(path:configuration:_:)`` or in a `ServiceGroup`.
    package static func running(path: String, configuration: Configuration = Configuration()) throws -> SQLiteBroker {
        let broker = try SQLiteBroker(path: path, configuration: configuration)
        Task { try await broker.run() }
        return broker
    }
}
