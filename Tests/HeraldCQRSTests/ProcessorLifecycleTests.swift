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
    /// Two workers, each in the middle of the first message of a batch of two, when shutdown
    /// begins: each finishes and completes its message, abandons the other it received, and
    /// stops; the fifth message was never received. Nothing is handled twice or lost.
    @Test func gracefulShutdownFinishesTheMessagesInHandAndAbandonsTheRest() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        let (started, starting) = AsyncStream.makeStream(of: Int.self)
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            starting.yield(command.step)
            // The message is in hand until graceful shutdown has begun (the processor knows by then).
            try await gracefulShutdown()
            try await log(context, "done-\(command.step)", command.step)
        }
        let bus = CommandBus(broker: broker)
        for step in 1...5 { try await bus.send(Step(commandId: "s\(step)", step: step), to: .queue("in")) }
        let processor = store.processor(.queue("in"), handlers) {
            $0.maxConcurrency = 2
            $0.receiveBatchSize = 2
        }
        let group = Self.serviceGroup(processor)

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

        // The messages in hand were handled once and completed.
        var handled: [Int] = []
        for step in 1...5 {
            guard let document = try await broker.document("done-\(step)", in: "logs") else { continue }
            #expect(try JSONDecoder().decode([Int].self, from: document.data) == [step], "handled once")
            handled.append(step)
        }
        #expect(handled.count == 2)
        #expect(processor.statistics.handled == 2)
        // The rest are available at once (the clock has not moved: no lock expired), none lost.
        let rest = try await broker.receive(from: .queue("in"), maxCount: 10, maxWaitTime: .zero)
        let restSteps = try rest.map { try MessageCoding.decode(Step.self, from: $0.message.body).step }
        #expect(Set(handled).union(restSteps) == Set(1...5) && Set(handled).isDisjoint(with: restSteps), "handled \(handled), in the queue \(restSteps)")
        #expect(rest.count == 3)
        // Two of them were received before shutdown (this is their second delivery) and given back.
        #expect(rest.filter { $0.deliveryCount == 2 }.count == 2, "abandoned, not left locked")
    }

    /// An idle processor, waiting on an empty queue, stops soon after graceful shutdown begins.
    @Test func anIdleProcessorStopsAtGracefulShutdown() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        try await store.broker.createQueue("in")
        let processor = store.processor(.queue("in"), MessageHandlers()) { $0.maxConcurrency = 3 }
        let group = Self.serviceGroup(processor)
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

    /// A group of `processor` alone, with no signal handlers; a processor that ignored graceful
    /// shutdown is cancelled after a while, so that a failing test ends.
    private static func serviceGroup(_ processor: MessageProcessor) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: processor)], logger: Logger(label: "herald.test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        configuration.maximumGracefulShutdownDuration = .seconds(20)
        return ServiceGroup(configuration: configuration)
    }
}
