import Foundation
import HeraldCore
import Synchronization

/// Renews the locks of the messages a processor's handlers are working on, from one loop for the
/// whole processor.
///
/// A handling registers its message's lock before its handler runs and removes it when the handler
/// returns, so a handling costs a dictionary entry, not a task and a timer of its own (a task group
/// per message cost about a quarter of the processor's throughput: the timer is set up by
/// Dispatch's manager thread, and the group waits for its cancelled child before the commit). The
/// loop sleeps until the earliest renewal due, on the processor's clock; each lock keeps the
/// ``RenewalSchedule`` that ``MessageProcessor/withLockRenewal(_:lockedUntil:renew:_:)`` follows for a
/// single lock.
final class LockRenewer: Sendable {
    /// Renews one lock; returns its new expiry.
    typealias Renew = @Sendable () async throws -> Date

    private struct Entry {
        var schedule: RenewalSchedule
        /// Taken by a loop that is renewing it now.
        var isRenewing = false
        let renew: Renew
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextId: UInt64 = 0
        /// Loops running now (``run()``); registration needs one.
        var loops = 0
        /// The loops' sleeps and when they end, by id; a registration due earlier cancels them.
        var sleeps: [UInt64: (task: Task<Void, any Error>, until: Duration)] = [:]
        var nextSleepId: UInt64 = 0
        /// A registration came while a loop was between sleeps: it looks again before sleeping.
        var lookAgain = false
    }

    /// How long a loop with nothing to renew sleeps before it looks again (a registration wakes it sooner).
    static let idleSleep = Duration.seconds(3600)

    private let clock: any BrokerClock
    private let state = Mutex(State())

    init(clock: any BrokerClock) {
        self.clock = clock
    }

    /// Registers a lock that expires at `lockedUntil`, renewed by `renew` until ``unregister(_:)``;
    /// `nil` when no loop runs, and the caller must renew the lock itself.
    func register(lockedUntil: Date, renew: @escaping Renew) -> UInt64? {
        let schedule = RenewalSchedule(lockedUntil: lockedUntil, clock: self.clock)
        let deadline = schedule.deadline
        let (id, wake) = self.state.withLock { state -> (UInt64?, [Task<Void, any Error>]) in
            guard state.loops > 0 else { return (nil, []) }
            state.nextId &+= 1
            state.entries[state.nextId] = Entry(schedule: schedule, renew: renew)
            // A loop between sleeps looks again; a sleeping one is woken when it sleeps too long.
            if state.sleeps.count < state.loops { state.lookAgain = true }
            var early: [Task<Void, any Error>] = []
            for (sleepId, sleep) in state.sleeps where sleep.until > deadline {
                early.append(sleep.task)
                state.sleeps[sleepId] = nil
            }
            return (state.nextId, early)
        }
        for task in wake { task.cancel() }
        return id
    }

    /// Stops renewing a registered lock.
    func unregister(_ id: UInt64) {
        _ = self.state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// Renews the registered locks as they fall due, until the task is cancelled.
    func run() async {
        self.state.withLock { $0.loops += 1 }
        defer {
            // Another loop may sleep past what this one would have renewed: it looks again.
            let others = self.state.withLock { state in
                state.loops -= 1
                defer { state.sleeps = [:] }
                return state.sleeps.values.map(\.task)
            }
            for task in others { task.cancel() }
        }
        while !Task.isCancelled {
            let now = self.clock.monotonicNow()
            let (due, next) = self.state.withLock { state -> ([(UInt64, Entry)], Duration?) in
                state.lookAgain = false
                var due: [(UInt64, Entry)] = []
                var next: Duration?
                for (id, entry) in state.entries where !entry.isRenewing {
                    let deadline = entry.schedule.deadline
                    if deadline <= now {
                        state.entries[id]?.isRenewing = true
                        due.append((id, entry))
                    } else {
                        next = min(next ?? deadline, deadline)
                    }
                }
                return (due, next)
            }
            if !due.isEmpty {
                for (id, entry) in due { await self.renew(id, entry) }
                continue
            }
            let until = next ?? now + Self.idleSleep
            let clock = self.clock
            let sleep = Task { try await clock.sleep(untilMonotonic: until) }
            let sleepId = self.state.withLock { state -> UInt64? in
                if state.lookAgain { return nil }
                state.nextSleepId &+= 1
                state.sleeps[state.nextSleepId] = (sleep, until)
                return state.nextSleepId
            }
            guard let sleepId else {
                sleep.cancel()
                continue
            }
            await withTaskCancellationHandler {
                _ = try? await sleep.value
            } onCancel: {
                sleep.cancel()
            }
            self.state.withLock { state in
                state.sleeps[sleepId] = nil
            }
        }
    }

    private func renew(_ id: UInt64, _ entry: Entry) async {
        var schedule = entry.schedule
        _ = await schedule.renew(clock: self.clock, lockedUntil: { $0 }, entry.renew)
        self.state.withLock { state in
            state.entries[id]?.schedule = schedule
            state.entries[id]?.isRenewing = false
        }
    }
}
