import Synchronization
import Testing

@testable import HeraldCQRS

/// The processor's workers share receives: those that come while one is under way are served by
/// the next, which asks for all of them at once.
@Suite struct ReceiveCoalescerTests {
    /// A source of numbered items whose receives wait until the test lets them go.
    private final class Source: Sendable {
        private struct State {
            var next = 0
            var available: Int
            var requests: [Int] = []
            var gates: [CheckedContinuation<Void, Never>] = []
            var failure: (any Error)?
        }
        private let state: Mutex<State>

        init(available: Int) { self.state = Mutex(State(available: available)) }

        var requests: [Int] { self.state.withLock { $0.requests } }
        var waitingReceives: Int { self.state.withLock { $0.gates.count } }

        func fail(with error: any Error) { self.state.withLock { $0.failure = error } }

        /// Lets the oldest waiting receive go.
        func release() {
            let gate = self.state.withLock { $0.gates.isEmpty ? nil : $0.gates.removeFirst() }
            gate?.resume()
        }

        func fetch(_ count: Int) async throws -> ([Int], String) {
            await withCheckedContinuation { continuation in
                self.state.withLock { state in
                    state.requests.append(count)
                    state.gates.append(continuation)
                }
            }
            return try self.state.withLock { state in
                if let failure = state.failure { throw failure }
                let taken = min(count, state.available)
                defer {
                    state.next += taken
                    state.available -= taken
                }
                return (Array(state.next..<state.next + taken), "receive \(state.requests.count)")
            }
        }
    }

    private struct Broken: Error {}

    /// Starts a worker asking for `count` and waits until it is queued (or receiving).
    private func worker(
        _ coalescer: ReceiveCoalescer<Int, String>, _ source: Source, count: Int, queued: Int
    ) async throws -> Task<([Int], String), any Error> {
        let task = Task { try await coalescer.receive(count: count) { try await source.fetch($0) } }
        try await waitUntil("worker queued") { coalescer.queuedCount == queued }
        return task
    }

    @Test func workersThatComeDuringAReceiveShareTheNextOneInOrder() async throws {
        let coalescer = ReceiveCoalescer<Int, String>(maxCount: 100)
        let source = Source(available: 10)
        let first = Task { try await coalescer.receive(count: 4) { try await source.fetch($0) } }
        try await waitUntil("the first receive is under way") { source.waitingReceives == 1 }
        let second = try await self.worker(coalescer, source, count: 4, queued: 1)
        let third = try await self.worker(coalescer, source, count: 4, queued: 2)
        let fourth = try await self.worker(coalescer, source, count: 4, queued: 3)
        source.release()
        #expect(try await first.value == ([0, 1, 2, 3], "receive 1"))
        // The second receives for itself, the third and the fourth: one request for 12.
        try await waitUntil("the second receive is under way") { source.waitingReceives == 1 }
        #expect(source.requests == [4, 12])
        source.release()
        #expect(try await second.value == ([4, 5, 6, 7], "receive 2"))
        #expect(try await third.value == ([8, 9], "receive 2"), "what is left")
        #expect(try await fourth.value == ([], "receive 2"), "nothing left")
    }

    @Test func oneReceiveAsksForNoMoreThanItsMaximum() async throws {
        let coalescer = ReceiveCoalescer<Int, String>(maxCount: 10)
        let source = Source(available: 100)
        let first = Task { try await coalescer.receive(count: 4) { try await source.fetch($0) } }
        try await waitUntil("the first receive is under way") { source.waitingReceives == 1 }
        let second = try await self.worker(coalescer, source, count: 4, queued: 1)
        let third = try await self.worker(coalescer, source, count: 4, queued: 2)
        let fourth = try await self.worker(coalescer, source, count: 4, queued: 3)
        source.release()
        _ = try await first.value
        // 4 + 4 fits in 10, a third batch does not: it waits for the receive after.
        try await waitUntil("the second receive is under way") { source.waitingReceives == 1 }
        source.release()
        #expect(try await second.value.0 == [4, 5, 6, 7])
        #expect(try await third.value.0 == [8, 9, 10, 11])
        try await waitUntil("the third receive is under way") { source.waitingReceives == 1 }
        source.release()
        #expect(try await fourth.value.0 == [12, 13, 14, 15])
        #expect(source.requests == [4, 8, 4])
    }

    @Test func aFailedReceiveFailsEveryWorkerItWasFor() async throws {
        let coalescer = ReceiveCoalescer<Int, String>(maxCount: 100)
        let source = Source(available: 10)
        let first = Task { try await coalescer.receive(count: 4) { try await source.fetch($0) } }
        try await waitUntil("the first receive is under way") { source.waitingReceives == 1 }
        let second = try await self.worker(coalescer, source, count: 4, queued: 1)
        let third = try await self.worker(coalescer, source, count: 4, queued: 2)
        source.release()
        _ = try await first.value
        try await waitUntil("the second receive is under way") { source.waitingReceives == 1 }
        source.fail(with: Broken())
        source.release()
        await #expect(throws: Broken.self) { try await second.value }
        await #expect(throws: Broken.self) { try await third.value }
        // The turn is free again: the next worker receives at once.
        let fourth = Task { try await coalescer.receive(count: 1) { _ in ([99], "alone") } }
        #expect(try await fourth.value == ([99], "alone"))
    }
}
