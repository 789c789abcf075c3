import Foundation
import HeraldCore
import Synchronization

/// The workloads of `herald bench`.
enum BenchScenario: String, CaseIterable, Sendable {
    case sendSequential = "send-sequential"
    case sendConcurrent = "send-concurrent"
    case receiveComplete = "receive-complete"
    case endToEnd = "end-to-end"
    case latency
    case handlers
    case all

    /// The scenarios `all` runs, in order.
    static let measured: [BenchScenario] = [.sendSequential, .sendConcurrent, .receiveComplete, .endToEnd, .latency, .handlers]

    /// Concurrent senders (or drainers) when `--concurrency` is not given.
    var defaultConcurrency: Int {
        switch self {
        case .sendSequential: 1
        case .sendConcurrent: 64
        case .receiveComplete: 4
        case .endToEnd, .all: 64
        case .latency: 1
        case .handlers: HandlersBench.defaultConcurrency
        }
    }
}

/// The knobs of one run.
struct BenchSettings: Sendable {
    /// Messages sent (and, where the scenario receives, received).
    var messages: Int
    /// Body size in bytes.
    var size: Int
    /// Senders, drainers for receive-complete, or processor workers for handlers.
    var concurrency: Int
    /// Receivers for end-to-end.
    var receivers: Int
    /// Messages per send call in send-concurrent and end-to-end.
    var batch: Int = 1
}

/// A bench run failed its own check (a message lost or received twice).
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
}

/// What one run measured.
struct BenchResult: Sendable {
    var scenario: String
    var messages: Int
    var messageSize: Int
    var seconds: Double
    var messagesPerSecond: Double
    var p50Ms: Double
    var p99Ms: Double
    var store = "sqlite"
    var runs: Int?

    /// Builds a result from a run's duration and latencies (in milliseconds, one per message or operation).
    init(scenario: BenchScenario, settings: BenchSettings, elapsed: Duration, latenciesMs: [Double]) {
        self.scenario = scenario.rawValue
        self.messages = settings.messages
        self.messageSize = settings.size
        self.seconds = elapsed.timeInterval
        self.messagesPerSecond = self.seconds > 0 ? Double(settings.messages) / self.seconds : 0
        let sorted = latenciesMs.sorted()
        self.p50Ms = Self.percentile(sorted, 0.50)
        self.p99Ms = Self.percentile(sorted, 0.99)
    }

    /// The nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// The median of each figure over several runs of one scenario.
    static func median(of results: [BenchResult]) -> BenchResult {
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            let middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
        var result = results[0]
        result.seconds = median(results.map(\.seconds))
        result.messagesPerSecond = median(results.map(\.messagesPerSecond))
        result.p50Ms = median(results.map(\.p50Ms))
        result.p99Ms = median(results.map(\.p99Ms))
        result.runs = results.count
        return result
    }

    /// One JSON object on one line, keys in a fixed order.
    func jsonLine(median: Bool = false) -> String {
        func number(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
        var fields = [
            "\"scenario\":\"\(self.scenario)\""
        ]
        if median {
            fields.append("\"median\":true")
            if let runs { fields.append("\"runs\":\(runs)") }
        }
        fields += [
            "\"messages\":\(self.messages)",
            "\"messageSize\":\(self.messageSize)",
            "\"seconds\":\(number(self.seconds, 3))",
            "\"messagesPerSecond\":\(number(self.messagesPerSecond, 0))",
            "\"p50Ms\":\(number(self.p50Ms, 3))",
            "\"p99Ms\":\(number(self.p99Ms, 3))",
            "\"store\":\"\(self.store)\"",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }
}

/// Runs one scenario against a broker, on a queue of its own.
struct Bench: Sendable {
    let broker: any MessageBroker
    let settings: BenchSettings

    /// The application property end-to-end stamps each message with: nanoseconds since the run's origin.
    static let sentAtProperty = "benchSentAtNanos"

    func run(_ scenario: BenchScenario) async throws -> BenchResult {
        let queue = "bench-\(scenario.rawValue)-\(Self.runId())"
        try await self.broker.createQueue(queue, options: EntityOptions(maxMessageSize: max(self.settings.size, EntityOptions.defaultMaxMessageSize)))
        let result: BenchResult
        do {
            switch scenario {
            case .sendSequential: result = try await self.sendSequential(.queue(queue))
            case .sendConcurrent: result = try await self.sendConcurrent(.queue(queue))
            case .receiveComplete: result = try await self.receiveComplete(.queue(queue))
            case .endToEnd: result = try await self.endToEnd(.queue(queue))
            case .latency: result = try await self.latency(.queue(queue))
            case .handlers: result = try await self.handlers(.queue(queue))
            case .all: preconditionFailure("'all' is expanded by the command")
            }
        } catch {
            // A failed run leaves no queue behind on a store that outlives it (a server's, --data).
            try? await self.broker.deleteQueue(queue)
            throw error
        }
        try await self.broker.deleteQueue(queue)
        return result
    }

    /// A short random name part that keeps one run's entities, documents and inbox apart from another's.
    static func runId() -> String {
        String(UUID().uuidString.prefix(8).lowercased())
    }

    // MARK: Scenarios

    private func sendSequential(_ queue: EntityPath) async throws -> BenchResult {
        let body = self.body()
        var latencies: [Double] = []
        latencies.reserveCapacity(self.settings.messages)
        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<self.settings.messages {
            let sent = clock.now
            try await self.broker.send(Message(messageId: "m\(index)", body: body), to: queue)
            latencies.append(Self.milliseconds(clock.now - sent))
        }
        return BenchResult(scenario: .sendSequential, settings: self.settings, elapsed: clock.now - start, latenciesMs: latencies)
    }

    private func sendConcurrent(_ queue: EntityPath) async throws -> BenchResult {
        let body = self.body()
        let broker = self.broker
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for range in self.shares(of: self.settings.messages, among: self.settings.concurrency) {
                group.addTask {
                    var latencies: [Double] = []
                    latencies.reserveCapacity(range.count)
                    for batch in Self.batches(of: range, size: self.settings.batch) {
                        let sent = clock.now
                        _ = try await broker.send(batch.map { Message(messageId: "m\($0)", body: body) }, to: queue)
                        latencies.append(Self.milliseconds(clock.now - sent))
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        return BenchResult(scenario: .sendConcurrent, settings: self.settings, elapsed: clock.now - start, latenciesMs: latencies)
    }

    private func receiveComplete(_ queue: EntityPath) async throws -> BenchResult {
        let body = self.body()
        let broker = self.broker
        // Pre-fill, not timed.
        for batchStart in stride(from: 0, to: self.settings.messages, by: HeraldLimits.maxBatchCount) {
            let batchEnd = min(batchStart + HeraldLimits.maxBatchCount, self.settings.messages)
            _ = try await broker.send((batchStart..<batchEnd).map { Message(messageId: "m\($0)", body: body) }, to: queue)
        }
        let clock = ContinuousClock()
        let start = clock.now
        // Each drainer stops at its first empty receive: the queue is full before the drain starts,
        // so an empty receive means every message is received (or locked by another drainer).
        let drained = try await withThrowingTaskGroup(of: Received.self) { group in
            for _ in 0..<self.settings.concurrency {
                group.addTask {
                    var drained = Received()
                    while true {
                        let began = clock.now
                        let batch = try await broker.receive(from: queue, maxCount: HeraldLimits.maxBatchCount, maxWaitTime: .zero, mode: .peekLock)
                        if batch.isEmpty { break }
                        try await broker.complete(batch.compactMap(\.lockToken))
                        let latency = Self.milliseconds(clock.now - began)
                        for received in batch {
                            drained.ids.append(received.message.messageId)
                            drained.latencies.append(latency)
                        }
                    }
                    return drained
                }
            }
            return try await Received.merged(&group)
        }
        let elapsed = clock.now - start
        try self.verifyExactlyOnce(received: drained.ids)
        let counts = try await broker.counts(of: queue)
        guard counts.active == 0, counts.locked == 0 else {
            throw BenchFailure(
                description: "receive-complete: the queue still holds \(counts.active) active and \(counts.locked) locked messages after the drain")
        }
        return BenchResult(scenario: .receiveComplete, settings: self.settings, elapsed: elapsed, latenciesMs: drained.latencies)
    }

    private func endToEnd(_ queue: EntityPath) async throws -> BenchResult {
        let body = self.body()
        let broker = self.broker
        let total = self.settings.messages
        let progress = EndToEndProgress()
        let clock = ContinuousClock()
        let start = clock.now
        let received = try await withThrowingTaskGroup(of: Received.self) { group in
            for _ in 0..<self.settings.receivers {
                group.addTask {
                    var received = Received()
                    while progress.received.load(ordering: .relaxed) < total {
                        let sendersWereDone = progress.sendersDone.load(ordering: .acquiring)
                        let batch = try await broker.receive(from: queue, maxCount: HeraldLimits.maxBatchCount, maxWaitTime: .seconds(1), mode: .peekLock)
                        let now = (clock.now - start).nanoseconds
                        if batch.isEmpty {
                            // Nothing arrived for a second although every send had returned: whatever is
                            // missing is not coming (the check below reports it).
                            if sendersWereDone { break }
                            continue
                        }
                        received.record(batch, receivedAt: now)
                        try await broker.complete(batch.compactMap(\.lockToken))
                        received.finishedAt = max(received.finishedAt, clock.now - start)
                        progress.received.add(batch.count, ordering: .relaxed)
                    }
                    return received
                }
            }
            let senders = self.shares(of: total, among: self.settings.concurrency)
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { senderGroup in
                    for range in senders {
                        senderGroup.addTask {
                            for batch in Self.batches(of: range, size: self.settings.batch) {
                                let sentAt = (clock.now - start).nanoseconds
                                let messages = batch.map {
                                    Message(messageId: "m\($0)", body: body, applicationProperties: [Self.sentAtProperty: .int(sentAt)])
                                }
                                _ = try await broker.send(messages, to: queue)
                            }
                        }
                    }
                    try await senderGroup.waitForAll()
                }
                progress.sendersDone.store(true, ordering: .releasing)
                return Received()
            }
            return try await Received.merged(&group)
        }
        try self.verifyExactlyOnce(received: received.ids)
        // The time of the last completion, not of the group's end: an idle receiver may still be
        // waiting out its 1 s receive after the last message was completed by another one.
        return BenchResult(scenario: .endToEnd, settings: self.settings, elapsed: received.finishedAt, latenciesMs: received.latencies)
    }

    /// What the receivers of a scenario got.
    struct Received: Sendable {
        var ids: [String] = []
        var latencies: [Double] = []
        var finishedAt: Duration = .zero

        /// Notes the messages of `batch`, received `now` nanoseconds after the run's origin, and how
        /// long each took since its send (``Bench/sentAtProperty``).
        mutating func record(_ batch: [ReceivedMessage], receivedAt now: Int64) {
            for message in batch {
                self.ids.append(message.message.messageId)
                if case .int(let sentAt)? = message.message.applicationProperties[Bench.sentAtProperty] {
                    self.latencies.append(Double(now - sentAt) / 1e6)
                }
            }
        }

        /// What every task of `group` received, together.
        static func merged(_ group: inout ThrowingTaskGroup<Received, any Error>) async throws -> Received {
            try await group.reduce(into: Received()) {
                $0.ids += $1.ids
                $0.latencies += $1.latencies
                $0.finishedAt = max($0.finishedAt, $1.finishedAt)
            }
        }
    }

    // MARK: Helpers

    /// Checks that the messages `m0`…`m(N-1)` were each received exactly once (with `what`, that
    /// each left exactly one `what`, named by its message id).
    func verifyExactlyOnce(received: [String], what: String? = nil) throws {
        var seen = Set<String>()
        var duplicates = 0
        for id in received where !seen.insert(id).inserted {
            duplicates += 1
        }
        let expected = Set((0..<self.settings.messages).map { "m\($0)" })
        let missing = expected.subtracting(seen).count
        let unexpected = seen.subtracting(expected).count
        guard duplicates == 0, missing == 0, unexpected == 0 else {
            let counts = "\(missing) missing, \(duplicates) more than once, \(unexpected) unknown (of \(self.settings.messages))"
            throw BenchFailure(
                description: what.map { "not every command left exactly one \($0): \(counts)" } ?? "not every message was received exactly once: \(counts)"
            )
        }
    }

    /// Splits `0..<count` into `parts` contiguous ranges whose sizes differ by at most one.
    private func shares(of count: Int, among parts: Int) -> [Range<Int>] {
        let parts = max(1, min(parts, count))
        return (0..<parts).map { part in
            (count * part / parts)..<(count * (part + 1) / parts)
        }
    }

    /// `range` in consecutive parts of `size` (the last may be shorter).
    static func batches(of range: Range<Int>, size: Int) -> [Range<Int>] {
        stride(from: range.lowerBound, to: range.upperBound, by: size).map { $0..<min($0 + size, range.upperBound) }
    }

    func body() -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<self.settings.size).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    static func milliseconds(_ duration: Duration) -> Double {
        duration.timeInterval * 1000
    }
}

/// Shared counters of the end-to-end scenario.
private final class EndToEndProgress: Sendable {
    let received = Atomic<Int>(0)
    let sendersDone = Atomic<Bool>(false)
}
