import Foundation
import GRDB
import HeraldCore
import Logging
import Synchronization

/// Runs every operation of the broker on one writer thread, many operations to a transaction.
///
/// Callers enqueue operations; the writer takes everything pending, runs it inside one
/// `BEGIN IMMEDIATE … COMMIT` (each operation in a savepoint of its own, so a rejected operation
/// leaves no trace), and only after the commit, one fsync for the whole group, resumes the callers.
/// A storage error fails the whole group and stops the store for good (fail-stop, DESIGN.md §4.10):
/// after a failed fsync the kernel may have dropped the dirty pages, so nothing is retried.
final class GroupCommitter: Sendable {
    /// One caller's operation and the way to hand it its result.
    final class Operation: @unchecked Sendable {
        // Touched only on the writer thread, then read after the commit by `finish`.
        let execute: (StoreTransaction) throws -> Void
        let finish: (HeraldError?) -> Void
        let isReadOnly: Bool

        init(isReadOnly: Bool, execute: @escaping (StoreTransaction) throws -> Void, finish: @escaping (HeraldError?) -> Void) {
            self.isReadOnly = isReadOnly
            self.execute = execute
            self.finish = finish
        }
    }

    private enum Status {
        case open
        case failed(HeraldError)
        case closing
        case closed
    }

    private struct Queue {
        var status: Status = .open
        var pending: [Operation] = []
        var writerIsWaiting = false
    }

    /// The most operations one transaction takes; more wait for the next group.
    static let maxGroupSize = 512

    private let queue = Mutex(Queue())
    /// The size of the last group; only the writer thread reads and writes it.
    private nonisolated(unsafe) var lastGroupSize = 0
    private let wakeUp = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let database: DatabaseQueue
    private let state: WriterStateBox
    private let waiters: EntityWaiters
    private let configuration: SQLiteBroker.Configuration

    init(database: DatabaseQueue, state: WriterState, waiters: EntityWaiters, configuration: SQLiteBroker.Configuration) {
        self.database = database
        self.state = WriterStateBox(state)
        self.waiters = waiters
        self.configuration = configuration
    }

    /// Starts the writer thread. Called once, right after `init`.
    func start() {
        let thread = Thread { [self] in self.runWriter() }
        thread.name = "herald.sqlite.writer"
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// Runs `body` on the writer inside the next group's transaction and returns its result once
    /// that transaction is durable.
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
                finish: { groupError in
                    if let groupError {
                        continuation.resume(throwing: groupError)
                    } else {
                        continuation.resume(with: result.value ?? .failure(HeraldError(.storeFailed, "operation did not run")))
                    }
                }
            )
            self.enqueue(operation)
        }
    }

    private func enqueue(_ operation: Operation) {
        let (rejection, wake): (HeraldError?, Bool) = self.queue.withLock { queue in
            switch queue.status {
            case .open:
                queue.pending.append(operation)
                let wake = queue.writerIsWaiting
                queue.writerIsWaiting = false
                return (nil, wake)
            case .failed(let error):
                return (error, false)
            case .closing, .closed:
                return (HeraldError(.storeClosed, "the broker is closed"), false)
            }
        }
        if let rejection {
            operation.finish(rejection)
        } else if wake {
            self.wakeUp.signal()
        }
    }

    /// Lets pending operations finish, stops the writer and closes the database.
    func close() async {
        let wake: Bool = self.queue.withLock { queue in
            guard case .open = queue.status else {
                if case .failed = queue.status {
                    queue.status = .closing
                    let wake = queue.writerIsWaiting
                    queue.writerIsWaiting = false
                    return wake
                }
                return false
            }
            queue.status = .closing
            let wake = queue.writerIsWaiting
            queue.writerIsWaiting = false
            return wake
        }
        if wake { self.wakeUp.signal() }
        let stopped = self.stopped
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                stopped.wait()
                stopped.signal()
                continuation.resume()
            }
        }
    }

    /// The error the store stopped with, if it did.
    var failure: HeraldError? {
        self.queue.withLock { queue in
            if case .failed(let error) = queue.status { return error }
            return nil
        }
    }

    // MARK: The writer thread

    private func runWriter() {
        while let group = self.nextGroup() {
            self.commit(group)
        }
        try? self.database.close()
        self.stopped.signal()
    }

    /// Waits for work; returns `nil` once closing and drained.
    ///
    /// Right after a commit the callers it released are still preparing their next operations,
    /// so a group taken at once would be small and the next one large. When fewer than half as
    /// many operations as last time are pending, the writer lingers a few microseconds for the
    /// rest; a lone sequential caller (last group of one) never waits.
    private func nextGroup() -> [Operation]? {
        var lingered = 0
        while true {
            let next: [Operation]?? = self.queue.withLock { queue in
                if !queue.pending.isEmpty {
                    if queue.pending.count * 2 < self.lastGroupSize && lingered < Self.maxLingerRounds {
                        return nil
                    }
                    let count = min(queue.pending.count, Self.maxGroupSize)
                    let group = Array(queue.pending.prefix(count))
                    queue.pending.removeFirst(count)
                    return .some(group)
                }
                switch queue.status {
                case .closing, .closed:
                    queue.status = .closed
                    return .some(nil)
                case .open, .failed:
                    queue.writerIsWaiting = true
                    return nil
                }
            }
            if let next {
                self.lastGroupSize = next?.count ?? 0
                return next
            }
            if lingered < Self.maxLingerRounds && self.queue.withLock({ !$0.pending.isEmpty }) {
                lingered += 1
                usleep(Self.lingerMicroseconds)
                continue
            }
            lingered = Self.maxLingerRounds
            self.wakeUp.wait()
        }
    }

    /// How long, at most, the writer lingers for a fuller group: rounds × microseconds.
    private static let maxLingerRounds = 4
    private static let lingerMicroseconds: UInt32 = 25

    private func commit(_ group: [Operation]) {
        if let failure = self.failure {
            for operation in group { operation.finish(failure) }
            return
        }
        let state = self.state.state
        let clock = self.configuration.clock
        do {
            let needsTransaction = group.contains { !$0.isReadOnly }
            try self.database.writeWithoutTransaction { db in
                if needsTransaction { try db.execute(sql: "BEGIN IMMEDIATE") }
                do {
                    // A lone operation needs no savepoint: when rejected, the whole transaction rolls back.
                    let useSavepoints = needsTransaction && group.count > 1
                    var rejectedAlone = false
                    for operation in group {
                        let transaction = StoreTransaction(db: db, state: state, now: clock.now(), monotonic: clock.monotonicNow())
                        let rejected = try Self.run(operation, in: transaction, savepoint: useSavepoints && !operation.isReadOnly)
                        if rejected && !useSavepoints { rejectedAlone = true }
                    }
                    if needsTransaction {
                        if rejectedAlone {
                            try db.execute(sql: "ROLLBACK")
                        } else {
                            try state.flushSequences(db)
                            try self.configuration._beforeCommit?()
                            try db.execute(sql: "COMMIT")
                        }
                    }
                } catch {
                    if needsTransaction && db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
                    throw error
                }
            }
        } catch {
            let failure = HeraldError(.storeFailed, "storage error, the store stopped accepting work: \(error)")
            self.configuration.logger.critical("herald store failed", metadata: ["error": "\(error)"])
            let pending: [Operation] = self.queue.withLock { queue in
                if case .open = queue.status { queue.status = .failed(failure) }
                defer { queue.pending.removeAll() }
                return queue.pending
            }
            for operation in group + pending { operation.finish(failure) }
            return
        }
        let touched = state.takeTouchedEntities()
        for operation in group { operation.finish(nil) }
        if !touched.isEmpty { self.waiters.notify(touched) }
    }

    /// Runs one operation and tells whether it was rejected. A ``HeraldError`` is the operation's
    /// own result and undoes its writes; any other error is a storage failure and aborts the group.
    private static func run(_ operation: Operation, in transaction: StoreTransaction, savepoint: Bool) throws -> Bool {
        if savepoint { try transaction.db.cachedStatement(sql: "SAVEPOINT op").execute() }
        do {
            try operation.execute(transaction)
        } catch is OperationRejected {
            if savepoint {
                try transaction.db.cachedStatement(sql: "ROLLBACK TO op").execute()
                try transaction.db.cachedStatement(sql: "RELEASE op").execute()
            }
            return true
        }
        if savepoint { try transaction.db.cachedStatement(sql: "RELEASE op").execute() }
        return false
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
    let state: WriterState
    init(_ state: WriterState) { self.state = state }
}
