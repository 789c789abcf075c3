import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import Logging
import ServiceLifecycle
import Testing

/// A ``MessageProcessor`` is a `Service`: graceful shutdown of its `ServiceGroup` (what SIGTERM
/// triggers) drains it instead of cutting it off.
@Suite struct ProcessorLifecycleTests {
    /// The broker and the processor run in one `ServiceGroup`, as in an application; two workers
    /// are each in the middle of the first message of a batch of two when shutdown begins. The
    /// group stops the processor first (services stop in reverse order): each worker finishes and
    /// completes its message and abandons the other it received; the fifth message was never
    /// received. Then the broker drains and stops. Reopened, the store shows nothing handled twice
    /// and nothing lost.
    @Test func gracefulShutdownFinishesTheMessagesInHandAndAbandonsTheRest() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-lifecycle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let clock = ManualBrokerClock()
        let configuration = SQLiteBroker.Configuration(clock: clock)
        try await SQLiteBroker.withBroker(path: path, configuration: configuration) { broker in
            try await broker.createQueue("in")
            let bus = CommandBus(broker: broker)
            for step in 1...5 { try await bus.send(Step(commandId: "s\(step)", step: step), to: .queue("in")) }
        }

        let (started, starting) = AsyncStream.makeStream(of: Int.self)
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            starting.yield(command.step)
            // The message is in hand until graceful shutdown has begun (the processor knows by then).
            try await gracefulShutdown()
            try await log(context, "done-\(command.step)", command.step)
        }
        let broker = try SQLiteBroker(path: path, configuration: configuration)
        let processor = MessageProcessor(
            broker: broker, source: .queue("in"), handlers: handlers,
            configuration: MessageProcessor.Configuration(name: "test", maxConcurrency: 2, receiveBatchSize: 2), clock: clock
        )
        let group = Self.serviceGroup([broker, processor])

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var inHand: [Int] = []
            for await step in started {
                inHand.append(step)
                if inHand.count == 2 { break }
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(processor.statistics.handled == 2)
        await #expect(throws: HeraldError.self, "the broker stopped with its group") {
            _ = try await broker.counts(of: .queue("in"))
        }

        try await SQLiteBroker.withBroker(path: path, configuration: configuration) { broker in
            // The messages in hand were handled once and completed.
            var handled: [Int] = []
            for step in 1...5 {
                guard let document = try await broker.document("done-\(step)", in: "logs") else { continue }
                #expect(try JSONDecoder().decode([Int].self, from: document.data) == [step], "handled once")
                handled.append(step)
            }
            #expect(handled.count == 2)
            // The rest are available at once (the clock has not moved: no lock expired), none lost.
            let rest = try await broker.receive(from: .queue("in"), maxCount: 10, maxWaitTime: .zero)
            let restSteps = try rest.map { try MessageCoding.decode(Step.self, from: $0.message.body).step }
            #expect(
                Set(handled).union(restSteps) == Set(1...5) && Set(handled).isDisjoint(with: restSteps),
                "handled \(handled), in the queue \(restSteps)"
            )
            #expect(rest.count == 3)
            // Two of them were received before shutdown (this is their second delivery) and given back.
            #expect(rest.filter { $0.deliveryCount == 2 }.count == 2, "abandoned, not left locked")
        }
    }

    /// An idle processor, waiting on an empty queue, stops soon after graceful shutdown begins.
    @Test func anIdleProcessorStopsAtGracefulShutdown() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        try await store.broker.createQueue("in")
        let processor = store.processor(.queue("in"), MessageHandlers()) { $0.maxConcurrency = 3 }
        let group = Self.serviceGroup([processor])
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            let triggered = ContinuousClock.now
            try await tasks.waitForAll()
            // Within a receive's wait (half a second), not when the group gives up and cancels it.
            #expect(ContinuousClock.now - triggered < .seconds(10))
        }
        #expect(processor.statistics.handled == 0)
    }

    /// A `ProjectionRunner` is a `Service` too: in a group it keeps the projection caught up as
    /// events are appended, and stops at graceful shutdown with every applied batch committed with
    /// its checkpoint, so that a runner started later applies the rest, nothing twice.
    @Test func aProjectionRunnerKeepsUpUntilGracefulShutdown() async throws {
        struct Recording: Projection {
            let name = "recording"
            func apply(_ event: RecordedEvent, to transaction: inout BrokerTransaction) async throws {
                // The inbox rejects a second application of the same position (a conflict).
                transaction.recordInbox(handler: "recording", messageId: "\(event.position)")
                transaction.write(Data(), collection: "applied", key: "\(event.position)", expectedVersion: 0)
            }
        }
        try await SQLiteBroker.withInMemoryBroker { broker in
            let events = EventStore(broker: broker, publishTo: nil)
            let runner = ProjectionRunner(broker: broker, projection: Recording(), pollInterval: .milliseconds(20))
            let group = Self.serviceGroup([runner])
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for index in 1...30 {
                    try await events.append([OrderPlaced(orderId: "\(index)")], to: "order-\(index)", expectedVersion: .noStream)
                }
                let deadline = ContinuousClock.now + .seconds(20)
                while try await runner.checkpoint() < 30 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(try await runner.checkpoint() == 30, "caught up while running")
                await group.triggerGracefulShutdown()
                let triggered = ContinuousClock.now
                try await tasks.waitForAll()
                #expect(ContinuousClock.now - triggered < .seconds(5), "a waiting runner stops at once")
            }
            // Appended after the stop: a later catch-up applies exactly these.
            for index in 31...35 {
                try await events.append([OrderPlaced(orderId: "\(index)")], to: "order-\(index)", expectedVersion: .noStream)
            }
            #expect(try await runner.catchUp() == 5)
            #expect(try await broker.documents(in: "applied").count == 35)
        }
    }

    /// A group of `services`, with no signal handlers; a service that ignored graceful shutdown is
    /// cancelled after a while, so that a failing test ends.
    private static func serviceGroup(_ services: [any Service]) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, logger: Logger(label: "herald.test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        configuration.maximumGracefulShutdownDuration = .seconds(20)
        return ServiceGroup(configuration: configuration)
    }
}
