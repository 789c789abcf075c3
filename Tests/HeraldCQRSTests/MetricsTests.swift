import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import Logging
import MetricsTestKit
import Synchronization
import Testing

/// The counters, timers and gauges of the store and the processor, read from swift-metrics'
/// `TestMetrics`, given to each through its configuration (no global `MetricsSystem.bootstrap`,
/// so tests running at once keep their metrics apart).
@Suite struct MetricsTests {
    @Test func theStoreAndTheProcessorCountWhatTheyDo() async throws {
        let metrics = TestMetrics()
        let store = try Store { $0.metricsFactory = metrics }
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        try await broker.createTopic("events")
        try await broker.createSubscription("audit", topic: "events")
        var handlers = MessageHandlers()
        handlers.on(Increment.self) { command, context in
            try context.publish(Incremented(counter: command.counter, value: 1), to: .topic("events"))
        }
        handlers.on(Fail.self) { _, _ in throw Boom() }
        let commands = CommandBus(broker: broker)
        try await commands.send(Increment(commandId: "a", counter: "k"), to: .queue("in"))
        try await commands.send(Increment(commandId: "b", counter: "k"), to: .queue("in"))
        try await commands.send(Fail(commandId: "f"), to: .queue("in"))
        let processor = store.processor(.queue("in"), handlers) {
            $0.metricsFactory = metrics
            $0.retry = RetryPolicy(maxAttempts: 2, baseDelay: .seconds(1), maxDelay: .seconds(1))
        }
        for _ in 0..<2 {
            try await processor.processAvailable()
            store.clock.advance(by: .seconds(5))  // past the retry's delay
        }

        let queue = [("messaging.system", "herald"), ("messaging.destination.name", "in")]
        #expect(try metrics.expectCounter("messaging.client.sent.messages", queue + [("messaging.operation.name", "send")]).totalValue == 3)
        #expect(try metrics.expectCounter("messaging.client.consumed.messages", queue + [("messaging.operation.name", "receive")]).totalValue == 4)
        #expect(try metrics.expectCounter("messaging.herald.completed.messages", queue).totalValue == 2, "completed in the handlings' commits")
        #expect(try metrics.expectCounter("messaging.herald.abandoned.messages", queue).totalValue == 1, "the failure retried once")
        #expect(try metrics.expectCounter("messaging.herald.dead_lettered.messages", queue).totalValue == 1)
        let topic = [("messaging.system", "herald"), ("messaging.destination.name", "events"), ("messaging.operation.name", "commit")]
        #expect(try metrics.expectCounter("messaging.client.sent.messages", topic).totalValue == 2, "published with the handlings")

        let processorDimensions = queue + [("messaging.consumer.group.name", "test")]
        #expect(try metrics.expectCounter("messaging.herald.process.handled", processorDimensions).totalValue == 2)
        #expect(try metrics.expectCounter("messaging.herald.process.retries", processorDimensions).totalValue == 1)
        #expect(
            try metrics.expectCounter(
                "messaging.herald.process.dead_lettered", processorDimensions + [("messaging.herald.dead_letter.reason", "HandlerFailed")]
            ).totalValue == 1
        )
        let handled = try metrics.expectTimer("messaging.process.duration", processorDimensions + [("messaging.operation.name", "process")])
        #expect(handled.values.count == 2, "one duration per successful run of a handler")
        let failed = try metrics.expectTimer(
            "messaging.process.duration", processorDimensions + [("messaging.operation.name", "process"), ("error.type", "Boom")])
        #expect(failed.values.count == 2, "and per failed one, with its error's type")
    }

    @Test func theProcessorRecordsTheDepthOfItsSourceAndTheAgeOfItsOldestMessage() async throws {
        let metrics = TestMetrics()
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        try await broker.send(Message(text: "oldest"), to: .queue("in"))
        _ = try await broker.schedule(Message(text: "later"), at: store.clock.now().addingTimeInterval(3600), to: .queue("in"))
        store.clock.advance(by: .seconds(30))
        try await broker.send(Message(text: "newer"), to: .queue("in"))
        store.clock.advance(by: .seconds(12))
        let processor = store.processor(.queue("in"), MessageHandlers()) { $0.metricsFactory = metrics }
        try await processor.recordQueueMetrics()

        let dimensions = [("messaging.system", "herald"), ("messaging.destination.name", "in"), ("messaging.consumer.group.name", "test")]
        func depth(_ state: String) throws -> Double? {
            try metrics.expectGauge("messaging.herald.queue.depth", dimensions + [("messaging.herald.message.state", state)]).lastValue
        }
        #expect(try depth("active") == 2)
        #expect(try depth("scheduled") == 1)
        #expect(try depth("locked") == 0)
        #expect(try depth("dead_lettered") == 0)
        let age = try #require(try metrics.expectGauge("messaging.herald.queue.oldest_message.age", dimensions).lastValue)
        #expect(abs(age - 42) < 0.01, "the oldest message waits since 42 s, not the scheduled one: \(age)")
    }

    @Test(.timeLimit(.minutes(1))) func aRunningProcessorRecordsTheGaugesOnItsOwnAndStopsWithIt() async throws {
        let metrics = TestMetrics()
        let store = try Store()
        defer { Task { await store.close() } }
        try await store.broker.createQueue("in")
        try await store.broker.send(Message(text: "waiting"), to: .queue("in"))
        let processor = store.processor(.queue("in"), MessageHandlers()) {
            $0.metricsFactory = metrics
            $0.queueMetricsInterval = .milliseconds(10)
            $0.maxWaitTime = .milliseconds(10)
        }
        let dimensions = [("messaging.system", "herald"), ("messaging.destination.name", "in"), ("messaging.consumer.group.name", "test")]
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await processor.run() }
            try await waitUntil("the processor recorded the depth twice") {
                let active = try? metrics.expectGauge("messaging.herald.queue.depth", dimensions + [("messaging.herald.message.state", "active")])
                return (active?.values.count ?? 0) >= 2
            }
            processor.stop()
            try await group.waitForAll()
        }
    }

    @Test func deadLetteringIsLoggedAtWarningWithItsReason() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        try await broker.send(Message(messageId: "mystery", body: Data("{}".utf8), subject: "test.Unknown"), to: .queue("in"))
        let records = LogRecords()
        let logger = Logger(label: "test") { _ in RecordingLogHandler(records: records) }
        var handlers = MessageHandlers()
        handlers.on(Step.self) { _, context in context.logger.debug("handling") }
        let processor = MessageProcessor(
            broker: broker, source: .queue("in"), handlers: handlers, configuration: .init(name: "logged", maxConcurrency: 1), clock: store.clock,
            logger: logger
        )
        try await processor.processAvailable()
        try await CommandBus(broker: broker).send(Step(commandId: "s-1", step: 1), to: .queue("in"), correlationId: "workflow-3")
        try await processor.processAvailable()

        let logged = records.all
        let warning = try #require(logged.first { $0.level == .warning })
        #expect(warning.message.description.contains("UnknownMessageType"))
        #expect(warning.metadata["herald.dead_letter_reason"] == "UnknownMessageType")
        #expect(warning.metadata["herald.message_id"] == "mystery")
        let handling = try #require(logged.first { $0.message == "handling" })
        #expect(handling.level == .debug)
        #expect(handling.metadata["herald.message_id"] == "s-1")
        #expect(handling.metadata["herald.correlation_id"] == "workflow-3")
        #expect(handling.metadata["herald.processor"] == "logged")
        #expect(logged.allSatisfy { $0.level <= .debug || $0.level == .warning }, "the rest at debug or trace: \(logged)")
    }
}

/// What a ``RecordingLogHandler`` recorded.
final class LogRecords: Sendable {
    struct Record: Sendable, CustomStringConvertible {
        var level: Logger.Level
        var message: Logger.Message
        var metadata: Logger.Metadata
        var description: String { "\(self.level) \(self.message)" }
    }

    private let records = Mutex<[Record]>([])
    var all: [Record] { self.records.withLock { $0 } }
    func append(_ record: Record) { self.records.withLock { $0.append(record) } }
}

/// A log handler that keeps every record, at every level.
struct RecordingLogHandler: LogHandler {
    let records: LogRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.records.append(LogRecords.Record(level: event.level, message: event.message, metadata: self.metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}
