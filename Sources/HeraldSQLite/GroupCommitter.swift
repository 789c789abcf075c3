import Foundation
import GRDB
import HeraldCore
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs every operation of the broker on one writer thread, many operations to a transaction,
/// and acknowledges them only once an fsync of the WAL has covered their commit.
///
/// Two threads form a pipeline. The writer executes operations as they arrive inside one open
/// `BEGIN IMMEDIATE` transaction (each in a savepoint of its own, so a rejected operation leaves
/// no trace) and commits it as soon as the syncer is free. SQLite does not sync at commit
/// (`synchronous=OFF`): the syncer `fdatasync`s the WAL and only then resumes the callers. While
/// the disk syncs one group the writer fills the next, so groups grow with the load and one fsync
/// covers them all. For commits this is as durable as `synchronous=FULL`: nothing is acknowledged
/// before the fsync that covers it. Checkpoints, the only other writes, run with
/// `synchronous=FULL` (see ``checkpoint(_:)``), so SQLite syncs the database file before it
/// resets the WAL.
///
/// A storage error stops the store for good (fail-stop, GUARANTEES.md §4.10): after a failed fsync
/// the kernel may have dropped the dirty pages, so nothing is retried and nothing later is
/// acknowledged. A full disk is the exception (`SQLITE_FULL`, from a `write` that found no room,
/// before any fsync): the open transaction is rolled back, its operations fail with
/// ``HeraldCore/HeraldError/Code/insufficientStorage`` (none was acknowledged, none is stored) and
/// the store goes on; a checkpoint that finds the disk full leaves the WAL as it is and is retried
/// later.
final class GroupCommitter: Sendable {
    /// One caller's operation and the way to hand it its result.
    final class Operation: @unchecked Sendable {
        // `execute` runs on the writer thread; `finish` runs once, after the fsync or a failure.
        let execute: (StoreTransaction) throws -> Void
        let finish: (HeraldError?) -> Void
        let isReadOnly: Bool
        /// Whether the writer already ran it again after a full disk rolled its group back.
        var wasRetried = false

        init(isReadOnly: Bool, execute: @escaping (StoreTransaction) throws -> Void, finish: @escaping (HeraldError?) -> Void) {
            self.isReadOnly = isReadOnly
            self.execute = execute
            self.finish = finish
        }
    }

    /// What the caller, writer and syncer threads share.
    private struct Shared {
        /// Set once, by the first storage error; the store stays stopped.
        var failure: HeraldError?
        var isClosing = false
        /// Enqueued, not yet executed.
        var pending: [Operation] = []
        /// Committed, waiting for the syncer's fsync.
        var committed: [[Operation]] = []
        var isSyncing = false
        var writerIsWaiting = false
        var syncerIsWaiting = false
        var writerHasStopped = false

        var syncerIsFree: Bool { !self.isSyncing && self.committed.isEmpty }
    }

    /// The most operations one transaction takes before it is committed regardless.
    static let maxGroupSize = 1024
    /// The WAL size past which the writer checkpoints it into the database file, as SQLite's
    /// own auto-checkpoint does at 1,000 pages. After a complete checkpoint SQLite writes the WAL
    /// from its start again, over blocks the file already has: an `fdatasync` then flushes data
    /// only, while appending to a growing file also commits a metadata journal entry (about
    /// twice the cost on ext4).
    private static let checkpointWALSize: Int64 = 4 << 20

    private let shared = Mutex(Shared())
    private let lowOnSpace = Atomic<Bool>(false)
    private let writerWakeUp = DispatchSemaphore(value: 0)
    private let syncerWakeUp = DispatchSemaphore(value: 0)
    private let syncerStopped = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let database: DatabaseQueue
    private let walPath: String
    private let wal: WALFile
    private let state: WriterStateBox
    private let waiters: EntityWaiters
    private let configuration: SQLiteBroker.Configuration

    init(database: DatabaseQueue, path: String, state: WriterState, waiters: EntityWaiters, configuration: SQLiteBroker.Configuration) {
        self.database = database
        self.walPath = path + "-wal"
        self.wal = WALFile(path: path + "-wal")
        self.state = WriterStateBox(state)
        self.waiters = waiters
        self.configuration = configuration
    }

    /// Starts the writer and syncer threads. Called once, right after `init`.
    func start() throws {
        try self.database.writeWithoutTransaction { db in
            // From here on the syncer makes commits durable, and ``checkpoint(_:)`` runs checkpoints.
            try db.execute(sql: "PRAGMA synchronous = OFF")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            // After a burst, a checkpoint truncates the WAL back to this size.
            try db.execute(sql: "PRAGMA journal_size_limit = \(Self.checkpointWALSize * 4)")
        }
        // Open the WAL now, not at the first commit: a commit must never need a new descriptor,
        // since a busy server may have none left by then.
        if self.configuration._syncWAL == nil { try self.wal.sync() }
        let writer = Thread { [self] in self.runWriter() }
        writer.name = "herald.sqlite.writer"
        writer.stackSize = 4 << 20
        writer.start()
        let syncer = Thread { [self] in self.runSyncer() }
        syncer.name = "herald.sqlite.syncer"
        syncer.start()
    }

    /// Runs `body` on the writer inside the current transaction and returns its result once that
    /// transaction is durable. A ``HeraldError`` thrown by `body` undoes its writes.
    func perform<T: Sendable>(readOnly: Bool = false, _ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let result = ResultBox<T>()
            let operation = Operation(
                isReadOnly: readOnly,
                execute: { transaction in
                    do {
                        result.value = .success(try body(transaction))
                    } catch let error as HeraldError {
                        result.value = .failure(error)
                        throw OperationRejected()
                    }
                },
                finish: { failure in
                    if let failure {
                        continuation.resume(throwing: failure)
                    } else {
                        continuation.resume(with: result.value ?? .failure(HeraldError(.storeFailed, "the operation did not run")))
                    }
                }
            )
            self.enqueue(operation)
        }
    }

    private func enqueue(_ operation: Operation) {
        let (rejection, wake): (HeraldError?, Bool) = self.shared.withLock { shared in
            if let failure = shared.failure { return (failure, false) }
            if shared.isClosing { return (HeraldError(.storeClosed, "the broker is closed"), false) }
            shared.pending.append(operation)
            defer { shared.writerIsWaiting = false }
            return (nil, shared.writerIsWaiting)
        }
        if let rejection {
            operation.finish(rejection)
        } else if wake {
            self.writerWakeUp.signal()
        }
    }

    /// Lets accepted operations finish, stops both threads and closes the database.
    func close() async {
        let wake: Bool = self.shared.withLock { shared in
            if shared.isClosing { return false }
            shared.isClosing = true
            defer { shared.writerIsWaiting = false }
            return shared.writerIsWaiting
        }
        if wake { self.writerWakeUp.signal() }
        let stopped = self.stopped
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                stopped.wait()
                stopped.signal()
                continuation.resume()
            }
        }
    }

    /// Whether the disk is low on free space (see ``DiskSpaceGuard``): the writer then checkpoints
    /// at every commit.
    func setLowOnSpace(_ isLow: Bool) {
        self.lowOnSpace.store(isLow, ordering: .relaxed)
    }

    /// The error the store stopped with, if it did.
    var failure: HeraldError? {
        self.shared.withLock { $0.failure }
    }

    // MARK: The writer thread

    private enum WriterStep {
        case execute([Operation])
        case commit
        case wait
        case stop
    }

    private func runWriter() {
        let db = WriterConnection(self.database)
        var open: [Operation] = []  // executed inside the open transaction
        var commitsSinceCheckpointCheck = 0
        // The in-memory session locks when the open transaction began, for a rollback to restore.
        var sessionLocksAtBegin = self.state.state.sessionLocks
        while true {
            let step: WriterStep = self.shared.withLock { shared in
                if !shared.pending.isEmpty && open.count < Self.maxGroupSize {
                    let count = min(shared.pending.count, Self.maxGroupSize - open.count)
                    defer { shared.pending.removeFirst(count) }
                    return .execute(Array(shared.pending.prefix(count)))
                }
                let mustCommit = shared.isClosing || shared.failure != nil || open.count >= Self.maxGroupSize
                if !open.isEmpty && (shared.syncerIsFree || mustCommit) {
                    return .commit
                }
                if open.isEmpty && shared.isClosing { return .stop }
                shared.writerIsWaiting = true
                return .wait
            }
            switch step {
            case .wait:
                self.writerWakeUp.wait()
            case .stop:
                self.stopWriter(db)
                return
            case .execute(let operations):
                if let failure = self.failure {
                    for operation in operations { operation.finish(failure) }
                    continue
                }
                do {
                    try db.run { db in
                        if !db.isInsideTransaction {
                            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
                            sessionLocksAtBegin = self.state.state.sessionLocks
                        }
                        let state = self.state.state
                        let clock = self.configuration.clock
                        for operation in operations {
                            let transaction = StoreTransaction(db: db, state: state, now: clock.now(), monotonic: clock.monotonicNow())
                            try Self.run(operation, in: transaction)
                        }
                    }
                    open += operations
                } catch where Self.isDiskFull(error) {
                    self.rollBackForFullDisk(error, failing: open + operations, sessionLocks: sessionLocksAtBegin, db: db)
                    open = []
                } catch {
                    self.failStop(error, failing: open + operations, db: db)
                    open = []
                }
            case .commit:
                if self.failure != nil {
                    // The syncer failed while this transaction was open: undo it, acknowledge nothing.
                    self.failStop(HeraldError(.storeFailed, "an earlier fsync failed"), failing: open, db: db)
                    open = []
                    continue
                }
                do {
                    try db.run { db in
                        try self.state.state.flushSequences(db)
                        try db.cachedStatement(sql: "COMMIT").execute()
                    }
                } catch where Self.isDiskFull(error) {
                    self.rollBackForFullDisk(error, failing: open, sessionLocks: sessionLocksAtBegin, db: db)
                    open = []
                    continue
                } catch {
                    self.failStop(error, failing: open, db: db)
                    open = []
                    continue
                }
                commitsSinceCheckpointCheck += 1
                // Low on disk space, the WAL is checkpointed at every commit, so that it is written
                // again from its start rather than grown, and what receivers free is reusable.
                let isLowOnSpace = self.lowOnSpace.load(ordering: .relaxed)
                if commitsSinceCheckpointCheck >= 32 || (isLowOnSpace && commitsSinceCheckpointCheck > 0) {
                    commitsSinceCheckpointCheck = 0
                    if Self.fileSize(self.walPath) > (isLowOnSpace ? 0 : Self.checkpointWALSize) {
                        do {
                            try db.run { db in try Self.checkpoint(db) }
                        } catch where Self.isDiskFull(error) {
                            // The database file could not grow to take the WAL's pages. The WAL
                            // still holds every commit; try again 32 commits later.
                            commitsSinceCheckpointCheck = -32
                            self.configuration.logger.warning("herald checkpoint postponed: the disk is full", metadata: ["error": "\(error)"])
                        } catch {
                            self.failStop(error, failing: open, db: db)
                            open = []
                            continue
                        }
                    }
                }
                // Receivers may look at once: whatever they get is acknowledged only after an
                // fsync that also covers this group.
                let touched = self.state.state.takeTouchedEntities()
                if !touched.isEmpty { self.waiters.notify(touched) }
                let group = open
                open = []
                // With nothing else to do (a lone caller), the writer syncs itself and saves a
                // thread handoff; under load the syncer syncs while the writer fills the next group.
                let (syncHere, wake): (Bool, Bool) = self.shared.withLock { shared in
                    if shared.pending.isEmpty && shared.syncerIsFree && !shared.isClosing { return (true, false) }
                    shared.committed.append(group)
                    defer { shared.syncerIsWaiting = false }
                    return (false, shared.syncerIsWaiting)
                }
                if syncHere {
                    self.sync(group, db: db)
                } else if wake {
                    self.syncerWakeUp.signal()
                }
            }
        }
    }

    /// Makes `operations` durable with one `fdatasync` of the WAL, then acknowledges them; or,
    /// when the store failed or the sync fails, fails them (fail-stop).
    private func sync(_ operations: [Operation], db: WriterConnection?) {
        // Never acknowledge after a failure, even what an earlier fsync may have covered.
        if let failure = self.failure {
            for operation in operations { operation.finish(failure) }
            return
        }
        do {
            try self.configuration._beforeCommit?()
            if let syncWAL = self.configuration._syncWAL {
                try syncWAL(self.walPath)
            } else {
                try self.wal.sync()
            }
        } catch {
            self.failStop(error, failing: operations, db: db)
            return
        }
        for operation in operations { operation.finish(nil) }
    }

    private func stopWriter(_ db: WriterConnection) {
        let wake: Bool = self.shared.withLock { shared in
            shared.writerHasStopped = true
            defer { shared.syncerIsWaiting = false }
            return shared.syncerIsWaiting
        }
        if wake { self.syncerWakeUp.signal() }
        self.syncerStopped.wait()
        if self.failure == nil {
            try? db.run { db in try Self.checkpoint(db) }
        }
        try? self.database.close()
        self.wal.close()
        self.stopped.signal()
    }

    /// Runs one operation inside a savepoint. A ``HeraldError`` is the operation's own result and
    /// undoes its writes; any other error is a storage failure and propagates.
    private static func run(_ operation: Operation, in transaction: StoreTransaction) throws {
        if operation.isReadOnly {
            do { try operation.execute(transaction) } catch is OperationRejected {}
            return
        }
        let db = transaction.db
        try db.cachedStatement(sql: "SAVEPOINT op").execute()
        do {
            try operation.execute(transaction)
        } catch is OperationRejected {
            try db.cachedStatement(sql: "ROLLBACK TO op").execute()
        }
        try db.cachedStatement(sql: "RELEASE op").execute()
    }

    /// Copies the WAL into the database file and empties it, with `synchronous=FULL` so SQLite
    /// syncs the WAL before copying and the database file before resetting the WAL.
    private static func checkpoint(_ db: Database) throws {
        try db.execute(sql: "PRAGMA synchronous = FULL")
        // Commits go back to relying on the syncer even when the checkpoint fails.
        defer { try? db.execute(sql: "PRAGMA synchronous = OFF") }
        try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)")
    }

    /// Whether `error` is SQLite finding the disk full (`SQLITE_FULL`: a write failed with ENOSPC).
    private static func isDiskFull(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    /// Undoes the open transaction after a write found the disk full, without stopping the store:
    /// rolls it back, reloads the writer's state from what is committed (restoring the session
    /// locks held when the transaction began), fails the operations that wrote with
    /// ``HeraldCore/HeraldError/Code/insufficientStorage`` and runs the read-only ones again once.
    /// Nothing of the transaction was acknowledged: the syncer acknowledges only committed groups.
    private func rollBackForFullDisk(_ error: any Error, failing operations: [Operation], sessionLocks: [Int64: [String: SessionHold]], db: WriterConnection) {
        do {
            try db.run { db in
                if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") }
                let state = try WriterState(db: db, completesExpiredLocks: self.state.state.completesExpiredLocks)
                state.sessionLocks = sessionLocks
                state.lastDuplicatePrune = self.state.state.lastDuplicatePrune
                self.state.state = state
            }
        } catch {
            self.failStop(error, failing: operations, db: db)
            return
        }
        self.configuration.logger.warning("herald rolled back a transaction: the disk is full", metadata: ["error": "\(error)"])
        let refusal = HeraldError(.insufficientStorage, "the disk is full: the change was rolled back, nothing of it is stored (\(error))")
        var retried: [Operation] = []
        for operation in operations {
            if operation.isReadOnly && !operation.wasRetried {
                operation.wasRetried = true
                retried.append(operation)
            } else {
                operation.finish(refusal)
            }
        }
        guard !retried.isEmpty else { return }
        self.shared.withLock { shared in shared.pending.insert(contentsOf: retried, at: 0) }
    }

    private static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// Stops the store for good: rolls back the open transaction (when called from the writer)
    /// and fails `operations` and everything still pending.
    private func failStop(_ error: any Error, failing operations: [Operation], db: WriterConnection?) {
        if let db { try? db.run { db in if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") } } }
        let failure = HeraldError(.storeFailed, "storage error, the store stopped accepting work: \(error)")
        self.configuration.logger.critical("herald store failed", metadata: ["error": "\(error)"])
        let pending: [Operation] = self.shared.withLock { shared in
            if shared.failure == nil { shared.failure = failure }
            defer { shared.pending.removeAll() }
            return shared.pending
        }
        let reported = self.failure ?? failure
        for operation in operations + pending { operation.finish(reported) }
    }

    // MARK: The syncer thread

    private func runSyncer() {
        while true {
            let next: [[Operation]]? = self.shared.withLock { shared in
                shared.isSyncing = false
                if !shared.committed.isEmpty {
                    shared.isSyncing = true
                    defer { shared.committed.removeAll(keepingCapacity: true) }
                    return shared.committed
                }
                if shared.writerHasStopped { return [] }
                shared.syncerIsWaiting = true
                return nil
            }
            guard let groups = next else {
                self.syncerWakeUp.wait()
                continue
            }
            if groups.isEmpty { break }
            self.sync(groups.flatMap { $0 }, db: nil)
            // The writer may be holding a transaction open until the syncer is free.
            let wake: Bool = self.shared.withLock { shared in
                shared.isSyncing = false
                defer { shared.writerIsWaiting = false }
                return shared.writerIsWaiting && shared.committed.isEmpty
            }
            if wake { self.writerWakeUp.signal() }
        }
        self.syncerStopped.signal()
    }

}

/// The writer's access to its connection; the transaction stays open across calls.
struct WriterConnection {
    let queue: DatabaseQueue

    init(_ queue: DatabaseQueue) { self.queue = queue }

    func run(_ body: (Database) throws -> Void) throws {
        try self.queue.writeWithoutTransaction { db in try body(db) }
    }
}

/// Thrown by an operation that failed with a ``HeraldError``, so the writer undoes its writes.
struct OperationRejected: Error {}

/// Holds a result written on the writer thread and read after the commit.
final class ResultBox<T>: @unchecked Sendable {
    var value: Result<T, any Error>?
}

/// Gives the writer thread its state; nothing else touches it.
final class WriterStateBox: @unchecked Sendable {
    /// Replaced only by the writer, when a rollback makes it reload the state from the database.
    var state: WriterState
    init(_ state: WriterState) { self.state = state }
}

/// The WAL file, opened on first use, for the `fdatasync` that makes commits durable.
final class WALFile: Sendable {
    struct SyncFailed: Error, CustomStringConvertible {
        let call: String
        let code: Int32
        var description: String { "\(self.call) failed: \(String(cString: strerror(self.code)))" }
    }

    private let path: String
    private let descriptor = Mutex<Int32>(-1)

    init(path: String) { self.path = path }

    /// `fdatasync`s the WAL. The first time, also syncs its directory, since SQLite (at
    /// `synchronous=OFF`) never syncs it for the WAL file it created.
    func sync() throws {
        let descriptor = try self.descriptor.withLock { descriptor -> Int32 in
            if descriptor < 0 {
                let opened = open(self.path, O_RDONLY | O_CLOEXEC)
                if opened < 0 {
                    if errno == ENOENT { return -1 }  // no WAL yet: nothing was ever committed to one
                    throw SyncFailed(call: "open(\(self.path))", code: errno)
                }
                let parent = (self.path as NSString).deletingLastPathComponent
                let directoryPath = parent.isEmpty ? "." : parent
                let directory = open(directoryPath, O_RDONLY | O_CLOEXEC)
                guard directory >= 0 else { throw SyncFailed(call: "open(\(directoryPath))", code: errno) }
                defer { Glibc.close(directory) }
                guard fsync(directory) == 0 else { throw SyncFailed(call: "fsync(\(directoryPath))", code: errno) }
                descriptor = opened
            }
            return descriptor
        }
        guard descriptor >= 0 else { return }
        guard fdatasync(descriptor) == 0 else { throw SyncFailed(call: "fdatasync(wal)", code: errno) }
    }

    func close() {
        self.descriptor.withLock { descriptor in
            if descriptor >= 0 { Glibc.close(descriptor) }
            descriptor = -1
        }
    }
}
