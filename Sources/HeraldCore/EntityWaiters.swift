import Foundation
import Synchronization

/// Wakes receivers that wait for messages (long polling) when a commit makes messages visible.
/// Stores feed it: the SQLite store from its commits, the PostgreSQL store from its commits and
/// from LISTEN/NOTIFY.
///
/// A generation counter per entity closes the gap between an empty receive and the wait: a
/// receiver reads the generation before it looks, and does not sleep if it moved since.
package final class EntityWaiters: Sendable {
    private enum Waiter {
        case waiting(CheckedContinuation<Void, Never>)
        case done
    }

    private struct State {
        var generations: [String: UInt64] = [:]
        var waiters: [String: [UInt64: Waiter]] = [:]
        /// Numbers the waits: an id needs only be unique in this process, so it takes no randomness.
        var nextWaitId: UInt64 = 0
    }

    private let state = Mutex(State())

    /// No waiters yet.
    package init() {}

    /// The current generation of `key`.
    package func generation(of key: String) -> UInt64 {
        self.state.withLock { $0.generations[key, default: 0] }
    }

    /// The keys receivers wait on now.
    package func allKeys() -> Set<String> {
        self.state.withLock { Set($0.waiters.keys) }
    }

    /// Wakes every receiver waiting on one of `keys`.
    package func notify(_ keys: Set<String>) {
        var toResume: [CheckedContinuation<Void, Never>] = []
        self.state.withLock { state in
            for key in keys {
                state.generations[key, default: 0] &+= 1
                guard let waiters = state.waiters.removeValue(forKey: key) else { continue }
                for case .waiting(let continuation) in waiters.values { toResume.append(continuation) }
            }
        }
        for continuation in toResume { continuation.resume() }
    }

    /// Waits until `key` moves past `generation`, or `timeout` passes, or the task is cancelled.
    package func wait(for key: String, after generation: UInt64, timeout: Duration) async {
        let id = self.state.withLock { state in
            state.nextWaitId &+= 1
            return state.nextWaitId
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow: Bool = self.state.withLock { state in
                        if state.generations[key, default: 0] != generation { return true }
                        if case .done = state.waiters[key]?[id] {
                            state.waiters[key]?[id] = nil
                            return true
                        }
                        state.waiters[key, default: [:]][id] = .waiting(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            await group.next()
            group.cancelAll()
            self.cancel(key: key, id: id, generation: generation)
            await group.waitForAll()
        }
    }

    private func cancel(key: String, id: UInt64, generation: UInt64) {
        let continuation: CheckedContinuation<Void, Never>? = self.state.withLock { state in
            switch state.waiters[key]?[id] {
            case .waiting(let continuation):
                state.waiters[key]?[id] = nil
                if state.waiters[key]?.isEmpty == true { state.waiters[key] = nil }
                return continuation
            case .done:
                return nil
            case nil:
                // Woken by notify already, or not registered yet: in the second case (and only
                // then, since notify moves the generation) leave a tombstone for the registration.
                if state.generations[key, default: 0] == generation {
                    state.waiters[key, default: [:]][id] = .done
                }
                return nil
            }
        }
        continuation?.resume()
    }
}

extension EntityWaiters {
    /// Wakes every waiting receiver, whatever it waits for (after a reconnect of the listener,
    /// when notifications may have been missed).
    package func notifyAll() {
        self.notify(self.allKeys())
    }
}

extension EntityWaiters {
    /// The long-poll loop every store shares: runs `attempt` until `isDone` accepts its result or
    /// `maxWaitTime` passes, sleeping between attempts until a commit wakes the entity's key (or
    /// `pollInterval` passes, for changes no notification reports).
    ///
    /// `key` is asked for once, after the first answer that is not done: a store that must look
    /// the key up (the PostgreSQL store maps names to ids) pays for it only when it will wait. A
    /// wait cancelled (its client went away, the server shuts down) takes nothing more.
    package func poll<T>(
        key: () async throws -> String,
        maxWaitTime: Duration,
        pollInterval: Duration,
        until isDone: (T) -> Bool,
        _ attempt: () async throws -> T
    ) async throws -> T {
        try HeraldLimits.checkWaitTime(maxWaitTime)
        let deadline = ContinuousClock.now + maxWaitTime
        var waitKey: String?
        while true {
            let generation = waitKey.map { self.generation(of: $0) } ?? 0
            let result = try await attempt()
            let remaining = deadline - ContinuousClock.now
            if isDone(result) || remaining <= .zero || Task.isCancelled { return result }
            guard let key = waitKey else {
                // First answer that is not done: from now on wake-ups for the entity count.
                waitKey = try await key()
                continue
            }
            await self.wait(for: key, after: generation, timeout: min(remaining, pollInterval))
            if Task.isCancelled { return result }
        }
    }
}
