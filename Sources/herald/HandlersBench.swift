import Foundation
import HeraldCQRS
import HeraldCore
import Logging
import Synchronization

/// The command the handlers scenario fills its queue with.
struct BenchJob: Command {
    static let typeName = "bench.Job"
    var commandId: String
    var index: Int
    /// Pads the body to `--size` bytes.
    var payload: String
}

/// The event a handled ``BenchJob`` publishes.
struct BenchJobDone: Event {
    static let typeName = "bench.JobDone"
    var index: Int
}

/// The state document a handled ``BenchJob`` writes.
struct BenchJobState: Codable, Sendable {
    var index: Int
    var done: Bool
}

/// The handlers scenario: the CQRS path of `MessageProcessor`.
enum HandlersBench {
    /// Processor workers when `--concurrency` is not given.
    static let defaultConcurrency = 64
    /// How long the run may go without a message handled before it is given up.
    static let stallTimeout = Duration.seconds(30)
}

extension Bench {
    /// Pre-fills the queue with commands (not timed), then times a `MessageProcessor` of
    /// `--concurrency` workers handling them all. Each handling writes a state document and
    /// publishes an event, committed with the inbox record and the completion in one transaction.
    /// Checks afterwards that every command left exactly one document and one event.
    func handlers(_ queue: EntityPath) async throws -> BenchResult {
        guard let store = self.broker as? any TransactionalBroker else {
            throw BenchFailure(description: "handlers: this store cannot commit transactions, which the message processor needs")
        }
        let id = Self.runId()
        // Names of their own per run: the inbox and documents outlive the run on a store that is kept.
        let names = HandlersRunNames(topic: "bench-handlers-\(id)-events", collection: "bench-handlers-\(id)", handler: "bench-handlers-\(id)")
        try await store.createTopic(names.topic, options: EntityOptions())
        do {
            try await store.createSubscription(names.subscription, topic: names.topic, options: EntityOptions(), filter: SubscriptionFilter())
            let result = try await self.handlers(queue, store: store, names: names)
            try await store.deleteTopic(names.topic)
            return result
        } catch {
            try? await store.deleteTopic(names.topic)
            throw error
        }
    }

    private func handlers(_ queue: EntityPath, store: any TransactionalBroker, names: HandlersRunNames) async throws -> BenchResult {
        let total = self.settings.messages
        try await self.fillWithJobs(queue, store: store)

        var handlers = MessageHandlers()
        handlers.on(BenchJob.self, name: names.handler) { job, context in
            try context.save(BenchJobState(index: job.index, done: true), collection: names.collection, key: job.commandId, expectedVersion: 0)
            try context.publish(BenchJobDone(index: job.index), to: .topic(names.topic))
        }
        let recorder = HandlingRecorder(base: store, source: queue, expected: total)
        var logger = Logger(label: "herald.bench.processor")
        logger.logLevel = .warning
        let processor = MessageProcessor(
            broker: recorder, source: queue, handlers: handlers,
            configuration: .init(name: "bench", maxConcurrency: self.settings.concurrency, maxWaitTime: .milliseconds(100)), logger: logger
        )
        let clock = ContinuousClock()
        let start = clock.now
        recorder.start(at: start)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await processor.run() }
            group.addTask {
                defer { processor.stop() }
                var lastCount = 0
                var lastProgress = clock.now
                while recorder.handledCount < total {
                    try await Task.sleep(for: .milliseconds(20))
                    let statistics = processor.statistics
                    if !statistics.deadLettered.isEmpty {
                        throw BenchFailure(description: "handlers: the processor dead-lettered commands: \(statistics.deadLettered)")
                    }
                    let count = recorder.handledCount
                    if count != lastCount {
                        lastCount = count
                        lastProgress = clock.now
                    } else if clock.now - lastProgress > HandlersBench.stallTimeout {
                        throw BenchFailure(description: "handlers: \(count) of \(total) handled, then none for \(HandlersBench.stallTimeout)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let (elapsed, latencies) = recorder.results()
        try await self.verifyHandling(queue, store: store, names: names)
        try await self.deleteDocuments(store: store, collection: names.collection)
        return BenchResult(scenario: .handlers, settings: self.settings, elapsed: elapsed, latenciesMs: latencies)
    }

    /// Sends `--messages` jobs of `--size` bytes in batches; not timed.
    private func fillWithJobs(_ queue: EntityPath, store: any TransactionalBroker) async throws {
        let total = self.settings.messages
        let overhead = try MessageCoding.encode(BenchJob(commandId: "m\(total - 1)", index: total - 1, payload: "")).count
        let payload = String(repeating: "x", count: max(0, self.settings.size - overhead))
        for batchStart in stride(from: 0, to: total, by: HeraldLimits.maxBatchCount) {
            let batch = try (batchStart..<min(batchStart + HeraldLimits.maxBatchCount, total)).map { index in
                try MessageCoding.message(for: BenchJob(commandId: "m\(index)", index: index, payload: payload), correlationId: nil, causationId: nil)
            }
            _ = try await store.send(batch, to: queue)
        }
    }

    /// Checks the effects: one state document per job, one event per job, nothing left in the queue.
    private func verifyHandling(_ queue: EntityPath, store: any TransactionalBroker, names: HandlersRunNames) async throws {
        let documents = try await store.documents(in: names.collection)
        try self.verifyExactlyOnce(received: Array(documents.keys), what: "state document")
        var events: [String] = []
        let subscription = EntityPath.subscription(names.subscription, of: names.topic)
        while true {
            let batch = try await store.receive(from: subscription, maxCount: HeraldLimits.maxReceiveCount, maxWaitTime: .zero, mode: .receiveAndDelete)
            if batch.isEmpty { break }
            events += batch.map(\.message.messageId)
        }
        // Each event's id is derived from its command's (HandlerContext.publish).
        let suffix = "/\(BenchJobDone.typeName)/0"
        try self.verifyExactlyOnce(received: events.map { $0.hasSuffix(suffix) ? String($0.dropLast(suffix.count)) : $0 }, what: "event")
        let counts = try await store.counts(of: queue)
        guard counts.active == 0, counts.locked == 0, counts.deadLettered == 0 else {
            throw BenchFailure(
                description:
                    "handlers: the queue still holds \(counts.active) active, \(counts.locked) locked and \(counts.deadLettered) dead-lettered commands"
            )
        }
    }

    /// Deletes the run's state documents (on a store that is kept, they would pile up); not timed.
    private func deleteDocuments(store: any TransactionalBroker, collection: String) async throws {
        let keys = try await store.documents(in: collection).map { ($0.key, $0.value.version) }
        for batchStart in stride(from: 0, to: keys.count, by: HeraldLimits.maxBatchCount) {
            var transaction = BrokerTransaction()
            for (key, version) in keys[batchStart..<min(batchStart + HeraldLimits.maxBatchCount, keys.count)] {
                transaction.delete(collection: collection, key: key, expectedVersion: version)
            }
            _ = try await store.commit(transaction)
        }
    }
}

/// The names one handlers run uses.
private struct HandlersRunNames: Sendable {
    var topic: String
    var subscription = "all"
    var collection: String
    var handler: String

    init(topic: String, collection: String, handler: String) {
        self.topic = topic
        self.collection = collection
        self.handler = handler
    }
}

/// A store that forwards everything to another and times each command of the run, from the
/// receive that returned it to the commit of its handling (the commit that records it in the
/// inbox), and notes when the last one committed.
private final class HandlingRecorder: ForwardingBroker {
    private struct State {
        var start: ContinuousClock.Instant?
        var receivedAt: [String: ContinuousClock.Instant] = [:]
        var latenciesMs: [Double] = []
        var lastCommit: ContinuousClock.Instant?
    }

    let base: any TransactionalBroker
    private let source: EntityPath
    private let clock = ContinuousClock()
    private let state: Mutex<State>
    private let handled = Atomic<Int>(0)

    init(base: any TransactionalBroker, source: EntityPath, expected: Int) {
        self.base = base
        self.source = source
        var state = State()
        state.receivedAt.reserveCapacity(expected)
        state.latenciesMs.reserveCapacity(expected)
        self.state = Mutex(state)
    }

    /// Marks the start of the timed part.
    func start(at instant: ContinuousClock.Instant) {
        self.state.withLock { $0.start = instant }
    }

    /// Commands whose handling committed.
    var handledCount: Int { self.handled.load(ordering: .acquiring) }

    /// The time from the start to the last commit, and each command's latency in milliseconds.
    func results() -> (elapsed: Duration, latenciesMs: [Double]) {
        self.state.withLock { state in
            guard let start = state.start, let last = state.lastCommit else { return (.zero, state.latenciesMs) }
            return (last - start, state.latenciesMs)
        }
    }

    func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        self.noteReceived(try await self.base.receive(from: entity, maxCount: maxCount, maxWaitTime: maxWaitTime, mode: mode), from: entity)
    }

    func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        self.noteReceived(
            try await self.base.receive(from: entity, maxCount: maxCount, maxBytes: maxBytes, maxWaitTime: maxWaitTime, mode: mode), from: entity)
    }

    func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt {
        let receipt = try await self.base.commit(transaction)
        guard !transaction.inboxEntries.isEmpty else { return receipt }
        let now = self.clock.now
        self.state.withLock { state in
            for entry in transaction.inboxEntries {
                if let receivedAt = state.receivedAt.removeValue(forKey: entry.messageId) {
                    state.latenciesMs.append(Bench.milliseconds(now - receivedAt))
                }
            }
            state.lastCommit = now
        }
        self.handled.add(transaction.inboxEntries.count, ordering: .releasing)
        return receipt
    }

    private func noteReceived(_ messages: [ReceivedMessage], from entity: EntityPath) -> [ReceivedMessage] {
        guard entity == self.source, !messages.isEmpty else { return messages }
        let now = self.clock.now
        self.state.withLock { state in
            for message in messages { state.receivedAt[message.message.messageId] = now }
        }
        return messages
    }
}
