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
///
/// Every decision of who does what next is ``GroupCommitStateMachine``'s; the threads ask it under
/// one lock and carry out its answer. The threads start in ``start()`` (the broker's `run()`);
/// operations submitted before wait for it. Closing drains: accepted operations are committed and
/// synced, later ones fail with ``HeraldCore/HeraldError/Code/storeClosed``.
final class GroupCommitter: Sendable {
    /// What the caller, writer and syncer threads share.
    private struct Shared {
        var machine = GroupCommitStateMachine<any CommitOperation>(maxGroupSize: GroupCommitter.maxGroupSize)
        /// Callers of ``waitUntilStopped()``, resumed once both threads have stopped.
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        /// Numbers the parked attempts of long polls.
        var nextParkId: UInt64 = 0
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
    private let database: DatabaseQueue
    /// The WAL the syncer makes durable; `nil` for an in-memory database, which has none: its
    /// commits are acknowledged without a sync, and it is never checkpointed.
    private let walPath: String?
    private let wal: WALFile?
    private let state: WriterStateBox
    private let waiters: EntityWaiters
    private let configuration: SQLiteBroker.Configuration

    /// Takes over the database from here on: commits stop syncing (the syncer makes them
    /// durable) and automatic checkpoints stop (the writer runs them, see ``checkpoint(_:)``).
    /// Operations queue until ``start()``. `path` is the database file; `nil` for an in-memory
    /// database.
    init(database: DatabaseQueue, path: String?, state: WriterState, waiters: EntityWaiters, configuration: SQLiteBroker.Configuration) throws {
        self.database = database
        self.walPath = path.map { $0 + "-wal" }
        self.wal = path.map { WALFile(path: $0 + "-wal") }
        self.state = WriterStateBox(state)
        self.waiters = waiters
        self.configuration = configuration
        guard let wal = self.wal else { return }
        try self.database.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = OFF")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            // After a burst, a checkpoint truncates the WAL back to this size.
            try db.execute(sql: "PRAGMA journal_size_limit = \(Self.checkpointWALSize * 4)")
        }
        // Open the WAL now, not at the first commit: a commit must never need a new descriptor,
        // since a busy server may have none left by then.
        if self.configuration._syncWAL == nil { try wal.sync() }
    }

    /// Starts the writer and syncer threads; `false` when ``close()`` came first (the store
    /// never runs). Called once.
    func start() -> Bool {
        switch self.shared.withLock({ $0.machine.start() }) {
        case .alreadyStarted: preconditionFailure("SQLiteBroker.run() is called once")
        case .closedBeforeStart: return false
        case .startThreads: break
        }
        let writer = Thread { [self] in self.runWriter() }
        writer.name = "herald.sqlite.writer"
        writer.stackSize = 4 << 20
        writer.start()
        let syncer = Thread { [self] in self.runSyncer() }
        syncer.name = "herald.sqlite.syncer"
        syncer.start()
        return true
    }

    /// Runs `body` on the writer inside the current transaction and returns its result once that
    /// transaction is durable. A ``HeraldError`` thrown by `body` undoes its writes. Before
    /// ``start()`` the operation waits for it.
    func perform<T: Sendable>(readOnly: Bool = false, _ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            self.submit(PendingOperation.resuming(continuation, isReadOnly: readOnly, body: body), isReadOnly: readOnly)
        }
    }

    /// Runs `body` like ``perform(readOnly:_:)``, for a long poll: when its result `isEmpty`, the
    /// writer parks it instead of acknowledging it, and runs it again in the transaction of the
    /// next operation that touches `key` (makes messages visible in it), so that one fsync covers
    /// both. After `delay` it runs once more and its result, empty or not, is acknowledged; once
    /// the task is cancelled, a parked attempt returns what it found, nothing, at once.
    func perform<T: Sendable>(
        parkingOn key: String, atMost delay: Duration, isEmpty: @escaping @Sendable (T) -> Bool,
        _ body: @escaping @Sendable (StoreTransaction) throws -> T
    ) async throws -> T {
        let id = self.shared.withLock { shared in
            shared.nextParkId &+= 1
            return shared.nextParkId
        }
        // The wait is timed from when the attempt parks: an attempt that finds messages at once
        // (most of them, under load) costs no task and no timer.
        let deadline = ContinuousClock.now + delay
        let timer = Mutex(ParkTimer.notStarted)
        defer {
            timer.withLock { timer in
                if case .started(let task) = timer { task.cancel() }
                timer = .ended
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let operation = PendingOperation.resuming(continuation, isReadOnly: false, parkingId: id, isEmpty: isEmpty, body: body) { [self] in
                    timer.withLock { timer in
                        guard case .notStarted = timer else { return }
                        timer = .started(
                            Task { [self] in
                                try? await Task.sleep(until: deadline, clock: .continuous)
                                if !Task.isCancelled { self.release(id: id, key: key) }
                            })
                    }
                }
                self.submit(operation, isReadOnly: false, parkingOn: key, id: id)
            }
        } onCancel: {
            // A cancelled wait takes nothing more: a parked attempt ends with the nothing it found.
            self.shared.withLock { $0.machine.cancelWait(id: id, key: key) }?.finish(nil)
        }
    }

    /// Hands `operation` to the writer (waking it if it sleeps), or fails it when the store refuses it.
    private func submit(_ operation: PendingOperation, isReadOnly: Bool, parkingOn key: String? = nil, id: UInt64 = 0) {
        switch self.shared.withLock({ $0.machine.submit(operation, isReadOnly: isReadOnly, parkingOn: key, id: id) }) {
        case .none: break
        case .wakeWriter: self.writerWakeUp.signal()
        case .fail(let error): operation.finish(error)
        }
    }

    /// How many long polls wait parked for a send now.
    var parkedCount: Int {
        self.shared.withLock { $0.machine.parkedCount }
    }

    private func release(id: UInt64, key: String) {
        if case .wakeWriter = self.shared.withLock({ $0.machine.release(id: id, key: key) }) { self.writerWakeUp.signal() }
    }

    /// Refuses new operations from now on and lets the accepted ones finish; the threads stop
    /// once they have. Before ``start()``, the waiting operations fail and the database closes.
    func beginClosing() {
        switch self.shared.withLock({ $0.machine.close() }) {
        case .none, .waitForStop(wakeWriter: false): break
        case .waitForStop(wakeWriter: true): self.writerWakeUp.signal()
        case .closeNow(let waiting, let error):
            for operation in waiting { operation.finish(error) }
            self.closeDatabase()
        }
    }

    /// Returns once both threads have stopped, or at once when the store is stopped already.
    func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isStopped = self.shared.withLock { shared -> Bool in
                if shared.machine.phase == .stopped { return true }
                shared.stopWaiters.append(continuation)
                return false
            }
            if isStopped { continuation.resume() }
        }
    }

    /// Lets accepted operations finish, stops both threads and closes the database.
    func close() async {
        self.beginClosing()
        await self.waitUntilStopped()
    }

    /// Whether the disk is low on free space (see ``DiskSpaceGuard``): the writer then checkpoints
    /// at every commit.
    func setLowOnSpace(_ isLow: Bool) {
        self.lowOnSpace.store(isLow, ordering: .relaxed)
    }

    /// The error the store stopped with, if it did.
    var failure: HeraldError? {
        self.shared.withLock { $0.machine.failure }
    }

    // MARK: The writer thread

    private func runWriter() {
        let db = WriterConnection(self.database)
        var commitsSinceCheckpointCheck = 0
        // The in-memory session locks when the open transaction began, for a rollback to restore.
        var sessionLocksAtBegin = self.state.state.sessionLocks
        // SQLite's count of changed rows when the open transaction began: a transaction that
        // changed none wrote nothing to the WAL.
        var changesAtBegin = 0
        while true {
            switch self.shared.withLock({ $0.machine.nextWriterAction() }) {
            case .wait:
                self.writerWakeUp.wait()
            case .stop:
                self.stopWriter(db)
                return
            case .rollBack(let operations, let failure):
                // The syncer failed while this transaction was open: undo it, acknowledge nothing.
                try? db.run { db in if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") } }
                for operation in operations { operation.finish(failure) }
            case .execute(let operations):
                do {
                    try db.run { db in
                        if !db.isInsideTransaction {
                            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
                            sessionLocksAtBegin = self.state.state.sessionLocks
                            changesAtBegin = db.totalChangesCount
                        }
                        let state = self.state.state
                        let clock = self.configuration.clock
                        for operation in operations {
                            let transaction = StoreTransaction(db: db, state: state, now: clock.now(), monotonic: clock.monotonicNow())
                            try Self.run(operation, in: transaction)
                        }
                    }
                    // Long polls that found nothing park; then those parked on what this batch
                    // touched, maybe just now, run again in this transaction.
                    let parking = operations.compactMap(\.parkingIdIfEmpty)
                    let touched = self.state.state.takeTouchedInBatch()
                    if !parking.isEmpty || !touched.isEmpty {
                        let parked = self.shared.withLock { shared in
                            defer { shared.machine.writerTouched(touched) }
                            return shared.machine.writerParked(parking)
                        }
                        for operation in parked { operation.parked() }
                    }
                } catch  where Self.isDiskFull(error) {
                    self.rollBackForFullDisk(error, sessionLocks: sessionLocksAtBegin, db: db)
                } catch {
                    self.writerFailed(error, db: db)
                }
            case .commit:
                var wroteRows = true
                do {
                    try db.run { db in
                        try self.state.state.flushSequences(db)
                        wroteRows = db.totalChangesCount != changesAtBegin
                        try db.cachedStatement(sql: "COMMIT").execute()
                    }
                } catch  where Self.isDiskFull(error) {
                    self.rollBackForFullDisk(error, sessionLocks: sessionLocksAtBegin, db: db)
                    continue
                } catch {
                    self.writerFailed(error, db: db)
                    continue
                }
                commitsSinceCheckpointCheck += 1
                // Low on disk space, the WAL is checkpointed at every commit, so that it is written
                // again from its start rather than grown, and what receivers free is reusable.
                let isLowOnSpace = self.lowOnSpace.load(ordering: .relaxed)
                if let walPath = self.walPath, commitsSinceCheckpointCheck >= 32 || (isLowOnSpace && commitsSinceCheckpointCheck > 0) {
                    commitsSinceCheckpointCheck = 0
                    if Self.fileSize(walPath) > (isLowOnSpace ? 0 : Self.checkpointWALSize) {
                        do {
                            try db.run { db in try Self.checkpoint(db, truncatingWAL: isLowOnSpace) }
                        } catch  where Self.isDiskFull(error) {
                            // The database file could not grow to take the WAL's pages. The WAL
                            // still holds every commit; try again 32 commits later.
                            commitsSinceCheckpointCheck = -32
                            self.configuration.logger.warning("herald checkpoint postponed: the disk is full", metadata: ["error": "\(error)"])
                        } catch {
                            self.writerFailed(error, db: db)
                            continue
                        }
                    }
                }
                // Receivers may look at once: whatever they get is acknowledged only after an
                // fsync that also covers this group.
                let touched = self.state.state.takeTouchedEntities()
                if !touched.isEmpty { self.waiters.notify(touched) }
                switch self.shared.withLock({ $0.machine.writerCommitted() }) {
                case .syncHere(let group): self.sync(group, db: db, wroteRows: wroteRows)
                case .handedToSyncer(let wake): if wake { self.syncerWakeUp.signal() }
                case .fail(let group, let failure): for operation in group { operation.finish(failure) }
                }
            }
        }
    }

    /// Makes the group being synced durable with one `fdatasync` of the WAL, then acknowledges
    /// it; or, when the sync fails, fails it (fail-stop). In memory there is nothing to sync; a
    /// failure injected by `_beforeCommit` still fails the group.
    ///
    /// A group the writer syncs itself whose transaction changed no row (`wroteRows` false:
    /// health checks, counts, peeks, receives that found nothing) is acknowledged without a
    /// sync: the writer syncs only when every earlier commit is durable already, so such a group
    /// read nothing that is not, and wrote nothing to make durable. Each sync costs the disk a
    /// cache flush, about 0.1 ms here, and such groups are most of an idle server's work.
    private func sync(_ operations: [any CommitOperation], db: WriterConnection?, wroteRows: Bool = true) {
        do {
            try self.configuration._beforeCommit?()
            if wroteRows {
                if let walPath = self.walPath, let syncWAL = self.configuration._syncWAL {
                    try syncWAL(walPath)
                } else {
                    try self.wal?.sync()
                }
            }
        } catch {
            let failure = self.storageFailure(error)
            let (failed, reported, wake) = self.shared.withLock { $0.machine.syncFailed(failure) }
            if let db { try? db.run { db in if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") } } }
            for operation in failed { operation.finish(reported) }
            if wake { self.writerWakeUp.signal() }
            return
        }
        let (acknowledged, wake) = self.shared.withLock { $0.machine.syncSucceeded() }
        for operation in acknowledged { operation.finish(nil) }
        if wake { self.writerWakeUp.signal() }
    }

    private func stopWriter(_ db: WriterConnection) {
        if self.shared.withLock({ $0.machine.writerStopped() }) { self.syncerWakeUp.signal() }
        self.syncerStopped.wait()
        if self.failure == nil && self.wal != nil {
            try? db.run { db in try Self.checkpoint(db) }
        }
        self.closeDatabase()
        let waiting = self.shared.withLock { shared in
            shared.machine.threadsStopped()
            defer { shared.stopWaiters = [] }
            return shared.stopWaiters
        }
        for continuation in waiting { continuation.resume() }
    }

    private func closeDatabase() {
        try? self.database.close()
        self.wal?.close()
    }

    /// Runs one operation inside a savepoint. A ``HeraldError`` is the operation's own result and
    /// undoes its writes; any other error is a storage failure and propagates.
    private static func run(_ operation: any CommitOperation, in transaction: StoreTransaction) throws {
        if operation.isReadOnly {
            do { try operation.execute(transaction) } catch is OperationRejected {}
            return
        }
        // Straight to SQLite, not through GRDB's statement observation: two or three statements
        // per operation, inside the open transaction, which they never end.
        let db = transaction.db
        try BoundStatement(db, sql: "SAVEPOINT op").execute()
        var rolledBack = false
        do {
            try operation.execute(transaction)
        } catch is OperationRejected {
            try BoundStatement(db, sql: "ROLLBACK TO op").execute()
            rolledBack = true
        }
        transaction.state.operationEnded(rolledBack: rolledBack)
        try BoundStatement(db, sql: "RELEASE op").execute()
    }

    /// Copies the WAL into the database file and empties it, with `synchronous=FULL` so SQLite
    /// syncs the WAL before copying and the database file before resetting the WAL. Low on disk
    /// space, the WAL file is also truncated, giving its blocks back to the file system: left at
    /// its largest size, a WAL grown by a burst would keep the store below its watermark.
    private static func checkpoint(_ db: Database, truncatingWAL: Bool = false) throws {
        try db.execute(sql: "PRAGMA synchronous = FULL")
        // Commits go back to relying on the syncer even when the checkpoint fails.
        defer { try? db.execute(sql: "PRAGMA synchronous = OFF") }
        try db.execute(sql: truncatingWAL ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint(PASSIVE)")
    }

    /// Whether `error` is SQLite finding the disk full (`SQLITE_FULL`: a write failed with ENOSPC).
    private static func isDiskFull(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    /// Undoes the open transaction after a write found the disk full, without stopping the store:
    /// rolls it back, reloads the writer's state from what is committed (restoring the session
    /// locks held when the transaction began), fails the operations that wrote with
    /// ``HeraldCore/HeraldError/Code/insufficientStorage`` and runs the read-only ones again once.
    /// Nothing of the transaction was acknowledged: only synced groups are.
    private func rollBackForFullDisk(_ error: any Error, sessionLocks: [Int64: [String: SessionHold]], db: WriterConnection) {
        do {
            try db.run { db in
                if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") }
                let state = try WriterState(db: db, completionLockTime: self.state.state.completionLockTime)
                state.sessionLocks = sessionLocks
                state.duplicatePrune = self.state.state.duplicatePrune
                state.settlementPrune = self.state.state.settlementPrune
                self.state.state = state
            }
        } catch {
            self.writerFailed(error, db: db)
            return
        }
        self.configuration.logger.warning("herald rolled back a transaction: the disk is full", metadata: ["error": "\(error)"])
        let refusal = HeraldError(.insufficientStorage, "the disk is full: the change was rolled back, nothing of it is stored (\(error))")
        let refused = self.shared.withLock { $0.machine.rolledBackForFullDisk() }
        for operation in refused { operation.finish(refusal) }
    }

    private static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// Stops the store for good after a storage error on the writer: rolls back the open
    /// transaction and fails every operation not being synced.
    private func writerFailed(_ error: any Error, db: WriterConnection) {
        try? db.run { db in if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") } }
        let failure = self.storageFailure(error)
        let (failed, reported) = self.shared.withLock { $0.machine.writerFailed(failure) }
        for operation in failed { operation.finish(reported) }
    }

    /// The error a storage failure stops the store with; logs it.
    private func storageFailure(_ error: any Error) -> HeraldError {
        self.configuration.logger.critical("herald store failed", metadata: ["error": "\(error)"])
        return HeraldError(.storeFailed, "storage error, the store stopped accepting work: \(error)")
    }

    // MARK: The syncer thread

    private func runSyncer() {
        while true {
            switch self.shared.withLock({ $0.machine.nextSyncerAction() }) {
            case .wait:
                self.syncerWakeUp.wait()
            case .stop:
                self.syncerStopped.signal()
                return
            case .fail(let operations, let failure):
                // Never acknowledge after a failure, even what an earlier fsync may have covered.
                for operation in operations { operation.finish(failure) }
            case .sync(let operations):
                self.sync(operations, db: nil)
            }
        }
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

/// One caller's operation, as the writer runs it and the committer finishes it.
protocol CommitOperation: AnyObject, Sendable {
    /// Whether it only reads: it then runs without a savepoint, and again once after a full disk.
    var isReadOnly: Bool { get }
    /// Runs on the writer thread; throws ``OperationRejected`` when the operation failed with its
    /// own ``HeraldCore/HeraldError`` (its writes must be undone), or a storage error.
    func execute(_ transaction: StoreTransaction) throws
    /// Hands the caller its result: after the fsync that covers it (`nil`), or a failure. Once.
    func finish(_ failure: HeraldError?)
    /// For a long poll's attempt that just ran and found nothing: its id, to park it.
    var parkingIdIfEmpty: UInt64? { get }
    /// A long poll's attempt was parked: its wait is timed from now.
    func parked()
}

/// The timer that ends a long poll's wait, started when its attempt first parks.
enum ParkTimer {
    case notStarted
    case started(Task<Void, Never>)
    /// The long poll returned: no timer starts any more.
    case ended
}

/// A caller's operation: what the writer runs and how the caller gets its result after the fsync.
///
/// Not generic on purpose: the writer and syncer call it through ``CommitOperation``, where a
/// generic class's methods would look up its type metadata at run time on every call. The two
/// closures are built where the result type is known (``GroupCommitter/perform(readOnly:_:)``).
final class PendingOperation: CommitOperation {
    let isReadOnly: Bool
    private let run: @Sendable (StoreTransaction) throws -> Void
    private let deliver: @Sendable (HeraldError?) -> Void
    private let parkingId: UInt64?
    private let foundNothing: @Sendable () -> Bool
    private let onParked: (@Sendable () -> Void)?

    init(
        isReadOnly: Bool, parkingId: UInt64? = nil, foundNothing: @escaping @Sendable () -> Bool = { false },
        onParked: (@Sendable () -> Void)? = nil,
        run: @escaping @Sendable (StoreTransaction) throws -> Void, deliver: @escaping @Sendable (HeraldError?) -> Void
    ) {
        self.isReadOnly = isReadOnly
        self.parkingId = parkingId
        self.foundNothing = foundNothing
        self.onParked = onParked
        self.run = run
        self.deliver = deliver
    }

    var parkingIdIfEmpty: UInt64? {
        guard let id = self.parkingId, self.foundNothing() else { return nil }
        return id
    }

    /// An operation whose `body` result goes to `continuation`.
    /// A long poll's attempt passes its `parkingId`, what an empty result is, and what to do when it parks.
    static func resuming<T: Sendable>(
        _ continuation: CheckedContinuation<T, any Error>, isReadOnly: Bool, parkingId: UInt64? = nil, isEmpty: (@Sendable (T) -> Bool)? = nil,
        body: @escaping @Sendable (StoreTransaction) throws -> T, onParked: (@Sendable () -> Void)? = nil
    ) -> PendingOperation {
        let result = ResultBox<T>()
        return PendingOperation(
            isReadOnly: isReadOnly,
            parkingId: parkingId,
            foundNothing: {
                guard let isEmpty, case .success(let value)? = result.value else { return false }
                return isEmpty(value)
            },
            onParked: onParked,
            run: { transaction in
                do {
                    result.value = .success(try body(transaction))
                } catch let error as HeraldError {
                    result.value = .failure(error)
                    throw OperationRejected()
                }
            },
            deliver: { failure in
                if let failure {
                    continuation.resume(throwing: failure)
                } else {
                    let outcome = result.value ?? .failure(HeraldError(.storeFailed, "the operation did not run"))
                    continuation.resume(with: outcome.mapError { $0 as any Error })
                }
            }
        )
    }

    func execute(_ transaction: StoreTransaction) throws { try self.run(transaction) }

    func finish(_ failure: HeraldError?) { self.deliver(failure) }

    func parked() { self.onParked?() }
}

/// The result an operation's body produced, written on the writer thread and read when the
/// operation finishes: the committer's lock, taken by the writer after the write and by the
/// finishing thread before the read, orders the two.
final class ResultBox<T>: @unchecked Sendable {
    var value: Result<T, HeraldError>?
}

/// Gives the writer thread its state; nothing else touches it.
final class WriterStateBox: @unchecked Sendable {
    /// Replaced only by the writer, when a rollback makes it reload the state from the database.
    var state: WriterState
    init(_ state: WriterState) { self.state = state }
}
