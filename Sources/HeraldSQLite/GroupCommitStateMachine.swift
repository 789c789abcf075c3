import HeraldCore

/// The scheduling of ``GroupCommitter``, with no I/O: which operations the writer runs next, when
/// it commits, who syncs a committed group, and which operations are acknowledged or fail.
///
/// An operation moves through four stages: *pending* (accepted, not yet run), *open* (run inside
/// the writer's open transaction), *committed* (waiting for an fsync) and *syncing* (covered by
/// the fsync under way). The writer and syncer threads report what they did through the mutating
/// methods, under the committer's lock, and carry out the action each returns; the machine never
/// touches the database, a thread or a continuation.
struct GroupCommitStateMachine<Operation> {
    /// Where the store is in its life.
    enum Phase: Equatable {
        /// The threads have not started: operations queue until they do.
        case idle
        case running
        /// Closing: accepted operations finish, new ones are refused.
        case draining
        /// The threads have stopped (or never started and never will).
        case stopped
    }

    /// An operation and what the scheduling needs to know of it.
    private struct Entry {
        let operation: Operation
        let isReadOnly: Bool
        /// Whether it already ran again after a full disk rolled its group back.
        var wasRetried = false
        /// A long poll's attempt: the entity key it parks on when it finds nothing, and its id.
        var parking: (key: String, id: UInt64)?
    }

    /// What to do with an operation that was just submitted.
    enum SubmitAction {
        /// Queued; the writer is busy or not started, it will get to it.
        case none
        /// Queued; the writer sleeps and must be woken.
        case wakeWriter
        /// Refused: fail the operation with this error.
        case fail(HeraldError)
    }

    /// What ``start()`` asks for.
    enum StartAction: Equatable {
        case startThreads
        /// ``close()`` came first: the store never runs.
        case closedBeforeStart
        case alreadyStarted
    }

    /// What ``close()`` asks for.
    enum CloseAction {
        /// The store never ran: fail these operations (which waited for it) and close the database.
        case closeNow(failing: [Operation], with: HeraldError)
        /// Wait until the threads stop, after waking the writer when asked.
        case waitForStop(wakeWriter: Bool)
        /// Stopped already.
        case none
    }

    /// The writer's next step.
    enum WriterAction {
        /// Run these operations in the open transaction (beginning one if needed).
        case execute([Operation])
        /// Commit the open transaction, then report ``writerCommitted()``.
        case commit
        /// The store failed while a transaction was open: roll it back and fail these operations.
        case rollBack([Operation], HeraldError)
        /// Sleep until woken.
        case wait
        /// Everything accepted is committed: report ``writerStopped()``, wait for the syncer,
        /// close the database.
        case stop
    }

    /// What becomes of the group the writer just committed.
    enum CommittedAction {
        /// Nothing else to do and a lone caller's group: the writer syncs it itself, then
        /// reports ``syncSucceeded()``.
        case syncHere([Operation])
        /// Handed to the syncer, which must be woken when asked.
        case handedToSyncer(wakeSyncer: Bool)
        /// The store failed meanwhile: fail the group, acknowledge none of it.
        case fail([Operation], HeraldError)
    }

    /// The syncer's next step.
    enum SyncerAction {
        /// fsync the WAL, then report ``syncSucceeded()`` or ``syncFailed(_:)``.
        case sync([Operation])
        /// The store failed: fail these committed operations, acknowledge none.
        case fail([Operation], HeraldError)
        case wait
        case stop
    }

    /// The most operations one transaction takes before it is committed regardless.
    let maxGroupSize: Int
    private(set) var phase = Phase.idle
    /// Set once, by the first storage error; the store stays stopped.
    private(set) var failure: HeraldError?
    private var pending: [Entry] = []
    /// Long polls' attempts that found nothing, parked by the writer until it touches their entity
    /// (by its key), by their ids: they run again in the transaction that touched it, or when their
    /// wait ends (see ``submit(_:isReadOnly:parkingOn:id:)``).
    private var parked: [String: [UInt64: Entry]] = [:]
    /// Attempts whose wait ended while they were pending or running: they do not park.
    private var released: Set<UInt64> = []
    private var open: [Entry] = []
    private var committed: [Entry] = []
    private var syncing: [Entry]?
    private var hasStarted = false
    private var writerIsWaiting = false
    private var syncerIsWaiting = false
    private var writerHasStopped = false

    init(maxGroupSize: Int) {
        precondition(maxGroupSize > 0)
        self.maxGroupSize = maxGroupSize
    }

    /// Whether no group is committed and waiting or being synced.
    private var syncerIsFree: Bool { self.syncing == nil && self.committed.isEmpty }

    // MARK: Callers

    /// A caller submits an operation.
    ///
    /// A long poll's attempt names the entity `key` it waits on and an `id`: when it finds nothing
    /// the writer parks it (``writerParked(_:)``) until a later operation touches the key, and
    /// runs it again in that operation's transaction, so one fsync covers the send and the
    /// receive; or until its wait ends (``release(id:key:)``).
    mutating func submit(_ operation: Operation, isReadOnly: Bool, parkingOn key: String? = nil, id: UInt64 = 0) -> SubmitAction {
        if let failure = self.failure { return .fail(failure) }
        guard self.phase == .idle || self.phase == .running else {
            return .fail(HeraldError(.storeClosed, "the broker is closed"))
        }
        self.pending.append(Entry(operation: operation, isReadOnly: isReadOnly, parking: key.map { ($0, id) }))
        return self.takeWriterWakeUp() ? .wakeWriter : .none
    }

    /// How many long polls are parked now.
    var parkedCount: Int {
        self.parked.values.reduce(0) { $0 + $1.count }
    }

    /// The wait of a long poll's attempt ended (its time passed, or its caller was cancelled): a
    /// parked attempt runs now; one pending or running will not park.
    mutating func release(id: UInt64, key: String) -> SubmitAction {
        guard let entry = self.parked[key]?.removeValue(forKey: id) else {
            if (self.pending + self.open).contains(where: { $0.parking?.id == id }) { self.released.insert(id) }
            return .none
        }
        if self.parked[key]?.isEmpty == true { self.parked[key] = nil }
        // It runs once more, and is acknowledged even if it finds nothing again.
        self.released.insert(id)
        self.pending.append(entry)
        return self.takeWriterWakeUp() ? .wakeWriter : .none
    }

    /// The broker's `run()` begins.
    mutating func start() -> StartAction {
        if self.hasStarted { return .alreadyStarted }
        self.hasStarted = true
        guard self.phase == .idle else { return .closedBeforeStart }
        self.phase = .running
        return .startThreads
    }

    /// The broker is closed (or shut down gracefully): accepted operations finish, new ones are refused.
    mutating func close() -> CloseAction {
        switch self.phase {
        case .idle:
            self.phase = .stopped
            let waiting = self.pending.map(\.operation)
            self.pending = []
            return .closeNow(failing: waiting, with: HeraldError(.storeClosed, "the broker was closed before it ran"))
        case .running:
            self.phase = .draining
            // Parked long polls end now, with one last attempt.
            self.pending += self.takeParked()
            return .waitForStop(wakeWriter: self.takeWriterWakeUp())
        case .draining:
            return .waitForStop(wakeWriter: false)
        case .stopped:
            return .none
        }
    }

    // MARK: The writer

    /// The writer asks what to do next.
    mutating func nextWriterAction() -> WriterAction {
        if let failure = self.failure, !(self.open.isEmpty && self.pending.isEmpty) {
            let failed = (self.open + self.pending).map(\.operation)
            self.open = []
            self.pending = []
            return .rollBack(failed, failure)
        }
        if !self.pending.isEmpty && self.open.count < self.maxGroupSize {
            let count = min(self.pending.count, self.maxGroupSize - self.open.count)
            let batch = self.pending.prefix(count)
            self.pending.removeFirst(count)
            self.open += batch
            return .execute(batch.map(\.operation))
        }
        let mustCommit = self.phase == .draining || self.open.count >= self.maxGroupSize
        if !self.open.isEmpty && (self.syncerIsFree || mustCommit) {
            return .commit
        }
        if self.open.isEmpty && self.phase == .draining { return .stop }
        self.writerIsWaiting = true
        return .wait
    }

    /// The caller of a long poll's attempt was cancelled: a parked attempt is returned, to be
    /// acknowledged now with what it found (nothing), without running again; one pending or
    /// running will not park.
    mutating func cancelWait(id: UInt64, key: String) -> Operation? {
        guard let entry = self.parked[key]?.removeValue(forKey: id) else {
            if (self.pending + self.open).contains(where: { $0.parking?.id == id }) { self.released.insert(id) }
            return nil
        }
        if self.parked[key]?.isEmpty == true { self.parked[key] = nil }
        return entry.operation
    }

    /// The long polls' attempts of the writer's last batch with these ids found nothing: they
    /// leave the open transaction (they are not acknowledged) and park, unless their wait ended.
    /// Returns those that parked, whose wait starts to be timed now.
    @discardableResult
    mutating func writerParked(_ ids: [UInt64]) -> [Operation] {
        var parked: [Operation] = []
        for id in ids {
            // A closing store parks nothing: every wait ends.
            if self.released.remove(id) != nil || self.phase != .running { continue }
            guard let index = self.open.lastIndex(where: { $0.parking?.id == id }), let key = self.open[index].parking?.key else { continue }
            let entry = self.open.remove(at: index)
            self.parked[key, default: [:]][id] = entry
            parked.append(entry.operation)
        }
        return parked
    }

    /// The writer's last batch touched `keys` (made messages visible in them): the attempts parked
    /// on them run next, in the same transaction.
    mutating func writerTouched(_ keys: Set<String>) {
        for key in keys {
            if let entries = self.parked.removeValue(forKey: key) {
                self.pending.insert(contentsOf: entries.sorted { $0.key < $1.key }.map(\.value), at: 0)
            }
        }
    }

    /// The largest group the writer syncs itself (see ``writerCommitted()``): a lone caller's
    /// operation, or a send with the long poll it serves.
    static var maxGroupSyncedByWriter: Int { 2 }

    /// The writer committed the open transaction. With nothing else to do and a group of a lone
    /// caller the writer syncs it itself and saves a thread handoff. Otherwise the syncer syncs
    /// while the writer runs what arrives meanwhile: a larger group means many callers, whose
    /// next operations come during the sync, and a writer blocked in the sync would leave them
    /// waiting.
    mutating func writerCommitted() -> CommittedAction {
        let group = self.open
        self.open = []
        if let failure = self.failure { return .fail(group.map(\.operation), failure) }
        if self.pending.isEmpty && self.syncerIsFree && self.phase == .running && group.count <= Self.maxGroupSyncedByWriter {
            self.syncing = group
            return .syncHere(group.map(\.operation))
        }
        self.committed += group
        return .handedToSyncer(wakeSyncer: self.takeSyncerWakeUp())
    }

    /// The writer rolled its open transaction back because the disk is full, and reloaded its
    /// state. Returns the operations to refuse: every one that writes, and a read-only one the
    /// second time; the others run again, first.
    mutating func rolledBackForFullDisk() -> [Operation] {
        var retried: [Entry] = []
        var refused: [Operation] = []
        for var entry in self.open {
            if entry.isReadOnly && !entry.wasRetried {
                entry.wasRetried = true
                retried.append(entry)
            } else {
                refused.append(entry.operation)
            }
        }
        self.open = []
        self.pending.insert(contentsOf: retried, at: 0)
        return refused
    }

    /// The writer hit a storage error and rolled its transaction back: the store stops for good.
    /// Returns the operations to fail (all but the group being synced, which its fsync decides)
    /// and the error to fail them with (the first failure, when there was one already).
    mutating func writerFailed(_ error: HeraldError) -> (operations: [Operation], failure: HeraldError) {
        let failed = (self.open + self.committed + self.pending + self.takeParked()).map(\.operation)
        self.open = []
        self.committed = []
        self.pending = []
        return (failed, self.fail(error))
    }

    /// The writer stopped; returns whether the syncer must be woken to stop too.
    mutating func writerStopped() -> Bool {
        self.writerHasStopped = true
        return self.takeSyncerWakeUp()
    }

    /// Both threads stopped and the database is closed.
    mutating func threadsStopped() {
        self.phase = .stopped
    }

    // MARK: The syncer

    /// The syncer asks what to do next.
    mutating func nextSyncerAction() -> SyncerAction {
        if !self.committed.isEmpty {
            let groups = self.committed.map(\.operation)
            if let failure = self.failure {
                self.committed = []
                return .fail(groups, failure)
            }
            self.syncing = self.committed
            self.committed = []
            return .sync(groups)
        }
        if self.writerHasStopped { return .stop }
        self.syncerIsWaiting = true
        return .wait
    }

    /// The fsync covering the group being synced succeeded: returns the operations to acknowledge,
    /// and whether the writer, which may be holding its transaction open until the syncer is free,
    /// must be woken.
    mutating func syncSucceeded() -> (acknowledged: [Operation], wakeWriter: Bool) {
        let synced = self.syncing?.map(\.operation) ?? []
        self.syncing = nil
        let wake = self.committed.isEmpty && self.takeWriterWakeUp()
        return (synced, wake)
    }

    /// The fsync failed: the store stops for good. Returns the operations to fail (the group being
    /// synced, the committed and the pending ones; the writer rolls back its open transaction at
    /// its next step) and the error to fail them with.
    mutating func syncFailed(_ error: HeraldError) -> (operations: [Operation], failure: HeraldError, wakeWriter: Bool) {
        let failed = ((self.syncing ?? []) + self.committed + self.pending + self.takeParked()).map(\.operation)
        self.syncing = nil
        self.committed = []
        self.pending = []
        let failure = self.fail(error)
        return (failed, failure, self.takeWriterWakeUp())
    }

    /// The store could not start its writer: it stops for good; returns the operations that
    /// waited for it.
    mutating func startFailed(_ error: HeraldError) -> (operations: [Operation], failure: HeraldError) {
        self.phase = .stopped
        self.writerHasStopped = true
        let waiting = self.pending.map(\.operation)
        self.pending = []
        return (waiting, self.fail(error))
    }

    // MARK: Helpers

    /// Every parked attempt, in the order they parked; none stays parked.
    private mutating func takeParked() -> [Entry] {
        defer { self.parked = [:] }
        return self.parked.values.flatMap { $0 }.sorted { $0.key < $1.key }.map(\.value)
    }

    private mutating func fail(_ error: HeraldError) -> HeraldError {
        if self.failure == nil { self.failure = error }
        return self.failure ?? error
    }

    /// Whether the writer sleeps; if so it counts as woken from now on.
    private mutating func takeWriterWakeUp() -> Bool {
        defer { self.writerIsWaiting = false }
        return self.writerIsWaiting
    }

    private mutating func takeSyncerWakeUp() -> Bool {
        defer { self.syncerIsWaiting = false }
        return self.syncerIsWaiting
    }
}
