import Synchronization

/// Merges the receives of a processor's workers: while one receive is under way, the workers that
/// come for messages queue, and the next receive asks for all of them at once and shares out what
/// it brings, a batch to each in the order they came.
///
/// A store finds the messages a receive may take by walking past those that other consumers hold
/// locked: with 64 workers taking 4 each, 256 rows for every 4 messages. One receive for many
/// workers walks them once for all of them, and the inbox is read once for all of them too (see
/// ``MessageProcessor/readInbox(for:)``). A worker never gets more than its own batch, so no
/// message waits locked in a buffer for a worker to come.
///
/// `Item` is what is shared out (a received message), `Shared` what goes with all the items of one
/// receive (what was read of the inbox for them).
final class ReceiveCoalescer<Item: Sendable, Shared: Sendable>: Sendable {
    /// What a queued worker is told when its wait ends.
    private enum Turn: Sendable {
        /// Its share of a receive (maybe nothing: the receive brought too little).
        case share([Item], Shared)
        /// It receives next, for itself and those queued by then.
        case receive
        case failed(any Error)
    }

    private struct Waiter {
        let count: Int
        let continuation: CheckedContinuation<Turn, Never>
    }

    private struct State {
        /// A worker is receiving; those that come meanwhile queue.
        var isReceiving = false
        var waiters: [Waiter] = []
    }

    /// The most items one receive asks for.
    let maxCount: Int
    private let state = Mutex(State())

    init(maxCount: Int) {
        self.maxCount = maxCount
    }

    /// Workers queued now, waiting for a receive.
    var queuedCount: Int { self.state.withLock { $0.waiters.count } }

    /// Returns this worker's share of a receive, `count` items at most, and what goes with them.
    /// `fetch` receives up to the number of items it is given; it runs on the worker whose turn it
    /// is, for itself and the workers queued then.
    func receive(count: Int, fetch: (Int) async throws -> ([Item], Shared)) async throws -> ([Item], Shared) {
        let receivesNow = self.state.withLock { state -> Bool in
            guard !state.isReceiving else { return false }
            state.isReceiving = true
            return true
        }
        if !receivesNow {
            let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
                let queued = self.state.withLock { state -> Bool in
                    guard state.isReceiving else {
                        state.isReceiving = true
                        return false
                    }
                    state.waiters.append(Waiter(count: count, continuation: continuation))
                    return true
                }
                // The receive under way ended meanwhile: this worker receives.
                if !queued { continuation.resume(returning: .receive) }
            }
            switch turn {
            case .share(let items, let shared): return (items, shared)
            case .failed(let error): throw error
            case .receive: break
            }
        }
        return try await self.receiveForQueued(count: count, fetch: fetch)
    }

    /// Receives for this worker and those queued now (as many as fit in ``maxCount``), shares out
    /// what came, and passes the turn to the first worker queued since.
    private func receiveForQueued(count: Int, fetch: (Int) async throws -> ([Item], Shared)) async throws -> ([Item], Shared) {
        let served = self.state.withLock { state -> [Waiter] in
            var total = count
            var served: [Waiter] = []
            // Subtracted, not added: a batch size near `Int.max` must not overflow.
            while let next = state.waiters.first, next.count <= self.maxCount - total {
                total += next.count
                served.append(state.waiters.removeFirst())
            }
            return served
        }
        defer { self.passTheTurn() }
        let items: [Item]
        let shared: Shared
        do {
            (items, shared) = try await fetch(served.reduce(count) { $0 + $1.count })
        } catch {
            for waiter in served { waiter.continuation.resume(returning: .failed(error)) }
            throw error
        }
        var start = min(count, items.count)
        for waiter in served {
            let end = min(start + waiter.count, items.count)
            waiter.continuation.resume(returning: .share(Array(items[start..<end]), shared))
            start = end
        }
        return (Array(items.prefix(count)), shared)
    }

    /// The receive ended: the first worker queued since receives next, or no one receives.
    private func passTheTurn() {
        let next = self.state.withLock { state -> Waiter? in
            guard !state.waiters.isEmpty else {
                state.isReceiving = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.continuation.resume(returning: .receive)
    }
}
