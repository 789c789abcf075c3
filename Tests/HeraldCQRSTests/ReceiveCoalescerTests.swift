import Foundation
import HeraldCore
import HeraldSQLite
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

    private typealias Worker = Task<([Int], String), any Error>

    /// Starts a receive of 4 and waits until it is under way, then queues a worker for each of
    /// `queued`, one after the other; returns the first and the queued workers.
    private func receiving(_ coalescer: ReceiveCoalescer<Int, String>, _ source: Source, queued: [Int]) async throws -> (Worker, [Worker]) {
        let first = Task { try await coalescer.receive(count: 4) { try await source.fetch($0) } }
        try await waitUntil("the first receive is under way") { source.waitingReceives == 1 }
        var workers: [Worker] = []
        for count in queued {
            workers.append(Task { try await coalescer.receive(count: count) { try await source.fetch($0) } })
            try await waitUntil("worker queued") { coalescer.queuedCount == workers.count }
        }
        return (first, workers)
    }

    @Test func workersThatComeDuringAReceiveShareTheNextOneInOrder() async throws {
        let coalescer = ReceiveCoalescer<Int, String>(maxCount: 100)
        let source = Source(available: 10)
        let (first, queued) = try await self.receiving(coalescer, source, queued: [4, 4, 4])
        let (second, third, fourth) = (queued[0], queued[1], queued[2])
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
        let (first, queued) = try await self.receiving(coalescer, source, queued: [4, 4, 4])
        let (second, third, fourth) = (queued[0], queued[1], queued[2])
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

    /// Batch sizes near `Int.max` are not added up past the maximum (that overflowed and trapped).
    @Test func hugeBatchesAreServedOneReceiveEach() async throws {
        let coalescer = ReceiveCoalescer<Int, String>(maxCount: 100)
        let source = Source(available: 6)
        let (first, queued) = try await self.receiving(coalescer, source, queued: [.max, .max])
        source.release()
        _ = try await first.value
        try await waitUntil("the second receive is under way") { source.waitingReceives == 1 }
        source.release()
        #expect(try await queued[0].value.0 == [4, 5])
        try await waitUntil("the third receive is under way") { source.waitingReceives == 1 }
        source.release()
        #expect(try await queued[1].value.0 == [])
        #expect(source.requests == [4, .max, .max])
    }

    @Test func aFailedReceiveFailsEveryWorkerItWasFor() async throws {
        let coalescer = ReceiveCoalescer<Int, String>(maxCount: 100)
        let source = Source(available: 10)
        let (first, queued) = try await self.receiving(coalescer, source, queued: [4, 4])
        let (second, third) = (queued[0], queued[1])
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

/// A processor's workers share receives: while the first receive waits, the other workers queue in
/// the processor instead of each asking the store, and the next receive asks for all their batches.
@Suite struct SharedReceiveTests {
    /// Forwards to a store, and holds every receive until the test lets them go; records the
    /// `maxCount` of every receive.
    private final class HeldReceives: ForwardingBroker {
        private struct State {
            var maxCounts: [Int] = []
            var gates: [CheckedContinuation<Void, Never>] = []
            var isOpen = false
        }
        let base: any TransactionalBroker
        private let state = Mutex(State())

        init(_ base: any TransactionalBroker) { self.base = base }

        var maxCounts: [Int] { self.state.withLock { $0.maxCounts } }
        var isHolding: Bool { self.state.withLock { !$0.gates.isEmpty } }

        func open() {
            let gates = self.state.withLock { state in
                state.isOpen = true
                defer { state.gates = [] }
                return state.gates
            }
            for gate in gates { gate.resume() }
        }

        func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
            await withCheckedContinuation { continuation in
                let held = self.state.withLock { state -> Bool in
                    state.maxCounts.append(maxCount)
                    guard !state.isOpen else { return false }
                    state.gates.append(continuation)
                    return true
                }
                if !held { continuation.resume() }
            }
            return try await self.base.receive(from: entity, maxCount: maxCount, maxWaitTime: maxWaitTime, mode: mode)
        }
    }

    @Test func workersQueuedBehindAReceiveAreServedByOneReceive() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        try await store.broker.createQueue("in", options: EntityOptions())
        let bus = CommandBus(broker: store.broker)
        for index in 0..<100 { try await bus.send(Increment(commandId: "c\(index)", counter: "k\(index)"), to: .queue("in")) }
        let broker = HeldReceives(store.broker)
        var handlers = MessageHandlers()
        handlers.on(Increment.self) { command, context in _ = try await bump(context, command.counter) }
        let processor = MessageProcessor(
            broker: broker, source: .queue("in"), handlers: handlers,
            configuration: .init(name: "shared", maxConcurrency: 16, receiveBatchSize: 4, maxWaitTime: .milliseconds(50)), clock: store.clock)
        let running = Task { try await processor.run() }
        try await waitUntil("one receive is held and the 15 other workers queue behind it") {
            broker.isHolding && processor.receiveCoalescer.queuedCount == 15
        }
        #expect(broker.maxCounts == [4], "the queued workers did not ask the store")
        broker.open()
        try await waitUntil("all handled") { processor.statistics.handled == 100 }
        processor.stop()
        try await running.value
        #expect(Array(broker.maxCounts.prefix(2)) == [4, 60], "the next receive asked for the 15 queued batches at once")
        #expect(processor.statistics.retries == 0 && processor.statistics.duplicatesSuppressed == 0)
        #expect(try await store.broker.documents(in: "counters").count == 100, "each command handled once")
    }
}
