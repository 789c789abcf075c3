// The store-independent rules of bulk jobs on dead letters (GUARANTEES.md §6): what may start,
// how a selection is frozen, what a step does with each dead letter, and the loop that works
// through the running jobs. Each store keeps only its SQL.

package import Foundation
import Synchronization

extension DeadLetterAction {
    /// Checks a job's entity and action before anything is read: the entity is a queue or a
    /// subscription (not its dead-letter queue), and a move's target a queue or topic.
    ///
    /// - Throws: ``HeraldError/Code/invalidName`` or ``HeraldError/Code/invalidArgument``.
    package func checkJob(on entity: EntityPath) throws(HeraldError) {
        try entity.validate()
        if entity.kind == .topic || entity.isDeadLetter {
            throw HeraldError(
                .invalidArgument,
                "a bulk job acts on the dead letters of a queue or subscription: name it, not \(entity.isDeadLetter ? "its dead-letter queue" : "a topic")")
        }
        if let target = self.target { try target.checkSendTarget() }
    }
}

extension DeadLetterSelection {
    /// The sequence numbers the selection freezes: the ones named (each once, in order), or those
    /// of the dead letters in `deadLetterQueue` that match the filter now, read with `peek` page
    /// by page.
    package func sequenceNumbers(
        in deadLetterQueue: EntityPath, peek: (_ from: Int64, _ maxCount: Int) async throws -> [ReceivedMessage]
    ) async throws -> [Int64] {
        switch self {
        case .sequenceNumbers(let numbers):
            var seen: Set<Int64> = []
            return numbers.filter { seen.insert($0).inserted }
        case .matching(let filter):
            var selected: [Int64] = []
            var next: Int64 = 0
            while true {
                let page = try await peek(next, HeraldLimits.maxReceiveCount)
                selected += page.filter(filter.matches).map(\.sequenceNumber)
                guard page.count == HeraldLimits.maxReceiveCount, let last = page.last?.sequenceNumber, last < .max else { break }
                next = last + 1
            }
            return selected
        }
    }
}

extension BulkJob {
    /// How many dead letters one step of a job handles in one transaction, by default.
    package static let defaultStepSize = 100
    /// How long a finished job is kept.
    package static let retention: Duration = .seconds(7 * 24 * 3600)
    /// The most jobs ``ManageableBroker/bulkJobs()`` lists.
    package static let listLimit = 1000

    /// The ``HeraldError/Code/jobNotFound`` error of `id`.
    package static func notFound(_ id: String) -> HeraldError {
        HeraldError(.jobNotFound, "no bulk job '\(id.prefix(100))'")
    }

    /// The reason a job fails when its entity is gone.
    package static func entityGone(_ entity: EntityPath) -> String {
        "the \(entity.kind.rawValue) '\(entity)' was deleted"
    }

    /// The reason a job fails when a move's target is gone.
    package static func targetGone(_ target: EntityPath) -> String {
        "the move's target \(target.kind.rawValue) '\(target)' was deleted"
    }

    /// Counts one step: `applied` dead letters acted on, `notFound` gone, `failed` refused (the
    /// last with `failure`), at `now`; the job completes once every selected one was looked at.
    package mutating func record(applied: Int, notFound: Int, failed: Int, failure: String?, now: Date) {
        self.applied += applied
        self.notFound += notFound
        self.failed += failed
        self.processed += applied + notFound + failed
        if let failure { self.failure = failure }
        self.updatedAt = now
        if self.processed >= self.total { self.state = .completed }
    }
}

/// The state codes and action names the stores keep a job's record in.
extension BulkJob.State {
    /// The state named `name` as a store wrote it.
    package init(stored name: String) throws(HeraldError) {
        guard let state = BulkJob.State(rawValue: name) else {
            throw HeraldError(.storeFailed, "a bulk job has the unknown state '\(name)'")
        }
        self = state
    }
}

/// Works through the running bulk jobs of one broker, a step at a time: every job gets a step in
/// turn, so a long job does not hold back a short one. It starts with the jobs the broker found
/// running when it opened (resuming them after a crash) and takes each job the broker starts;
/// with `runningJobs`, it also looks every ``rescanInterval`` for jobs another process started
/// (PostgreSQL). Without jobs it touches no store.
package final class BulkJobRunner: Sendable {
    /// Runs one step of a job; returns whether the job is still running.
    package typealias Step = @Sendable (_ id: String) async throws -> Bool

    /// The jobs to work on, in the order they started.
    private let jobs: Mutex<[String]>
    private let rescanInterval: Duration
    /// The idle runner's wait, which ``add(_:)`` (or the end of the wait) resumes; `woken` when
    /// a job came while the runner was not waiting.
    private let idle = Mutex<(woken: Bool, waiting: CheckedContinuation<Void, Never>?)>((false, nil))

    /// Creates a runner of `jobs` (those found running), looking for others every `rescanInterval`
    /// when ``run(runningJobs:step:)`` is given a way to list them.
    package init(jobs: [String] = [], rescanInterval: Duration = .seconds(10)) {
        self.jobs = Mutex(jobs)
        self.rescanInterval = rescanInterval
    }

    /// Takes the job `id`, which just started, into the round.
    package func add(_ id: String) {
        self.jobs.withLock { if !$0.contains(id) { $0.append(id) } }
        self.wake()
    }

    /// Ends the idle wait, or makes the next one return at once.
    private func wake() {
        let waiting = self.idle.withLock { idle -> CheckedContinuation<Void, Never>? in
            guard let waiting = idle.waiting else {
                idle.woken = true
                return nil
            }
            idle.waiting = nil
            return waiting
        }
        waiting?.resume()
    }

    /// Waits, without polling, until a job is added, the task is cancelled, or `limit` passes.
    private func waitForWork(atMost limit: Duration?) async {
        let timer = limit.map { limit in
            Task {
                try await Task.sleep(for: limit)
                self.wake()
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.idle.withLock { idle -> Bool in
                    if idle.woken || Task.isCancelled {
                        idle.woken = false
                        return true
                    }
                    idle.waiting = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.wake()
        }
        timer?.cancel()
        self.idle.withLock { $0.woken = false }
    }

    /// Runs steps until cancelled, or until the store closes or fails.
    ///
    /// - Parameters:
    ///   - runningJobs: The ids of the jobs the store holds as running, when other processes may
    ///     start jobs too; `nil` when only this broker does.
    ///   - step: Runs one step of a job, in one transaction; returns whether the job still runs.
    package func run(runningJobs: (@Sendable () async throws -> [String])? = nil, step: Step) async {
        var nextScan = ContinuousClock.now
        while !Task.isCancelled {
            if let runningJobs, ContinuousClock.now >= nextScan {
                nextScan = ContinuousClock.now + self.rescanInterval
                do {
                    for id in try await runningJobs() { self.add(id) }
                } catch {
                    if Self.isFinal(error) { return }
                }
            }
            let round = self.jobs.withLock { $0 }
            if round.isEmpty {
                // Idle: a broker without jobs does nothing until one starts (or, when other
                // processes may start jobs, until it is time to look for theirs).
                await self.waitForWork(atMost: runningJobs == nil ? nil : max(nextScan - ContinuousClock.now, .milliseconds(1)))
                continue
            }
            for id in round {
                do {
                    if try await !step(id) { self.jobs.withLock { $0.removeAll { $0 == id } } }
                } catch {
                    if Self.isFinal(error) { return }
                    // A store that cannot serve right now (a database restart): try again later.
                    try? await Task.sleep(for: .milliseconds(500))
                }
                if Task.isCancelled { return }
            }
            await Task.yield()
        }
    }

    /// Whether `error` ends the runner: the store closed or stopped, or the task was cancelled.
    private static func isFinal(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        guard let error = error as? HeraldError else { return false }
        return error.code == .storeClosed || error.code == .storeFailed
    }
}
