import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import HeraldTesting
import Synchronization
import Testing

struct PlaceOrder: Command {
    static let typeName = "harness.PlaceOrder"
    var commandId: String
    var orderId: String
}

struct RemindCustomer: Command {
    static let typeName = "harness.RemindCustomer"
    var commandId: String
    var orderId: String
}

struct OrderAccepted: Event {
    static let typeName = "harness.OrderAccepted"
    var orderId: String
}

struct Flaky: Command {
    static let typeName = "harness.Flaky"
    var commandId: String
}

struct Boom: Error {}

struct Step: Command {
    static let typeName = "harness.Step"
    var commandId: String
    var step: Int
}

/// The harness on a toy workflow: what was sent, published and dead-lettered, and time that moves only when told.
@Suite struct HarnessTests {
    @Test func sendsRunsAndInspects() async throws {
        try await HeraldTestHarness.run { harness in
            let orders = try await harness.createQueue("orders", options: EntityOptions(duplicateDetectionWindow: .seconds(60)))
            let reminders = try await harness.createQueue("reminders")
            let events = try await harness.createTopic("events")
            let audit = try await harness.createSubscription("audit", topic: "events")
            var handlers = MessageHandlers()
            handlers.on(PlaceOrder.self) { command, context in
                try context.publish(OrderAccepted(orderId: command.orderId), to: events)
                try context.send(
                    RemindCustomer(commandId: "remind-\(command.orderId)", orderId: command.orderId), to: reminders,
                    at: context.clock.now().addingTimeInterval(3600)
                )
            }
            let processor = harness.processor(for: orders, handlers: handlers)

            try await harness.send(PlaceOrder(commandId: "c-1", orderId: "o-1"), to: orders)
            let again = try await harness.send(PlaceOrder(commandId: "c-1", orderId: "o-1"), to: orders)
            #expect(again.isDuplicate, "within the window the broker absorbs the re-send")
            try await harness.expectCommands(PlaceOrder.self, in: orders, count: 1)

            #expect(try await harness.runUntilIdle() == 1)
            #expect(processor.statistics.handled == 1)
            let accepted = try await harness.expectEvents(OrderAccepted.self, in: audit, count: 1)
            #expect(accepted.map(\.orderId) == ["o-1"])
            #expect(try await harness.counts(of: reminders).scheduled == 1, "the reminder waits for its time")
            #expect(try await harness.commands(RemindCustomer.self, in: reminders).map(\.orderId) == ["o-1"])

            harness.advance(by: .seconds(3600))
            #expect(try await harness.counts(of: reminders).active == 1, "the clock moved past the reminder's time")
            try await harness.expectIdle([orders])
            try await harness.expectNoDeadLetters()
        }
    }

    @Test func retriesFollowTheClockAndPoisonIsDeadLettered() async throws {
        try await HeraldTestHarness.run { harness in
            let work = try await harness.createQueue("work")
            var handlers = MessageHandlers()
            handlers.on(Flaky.self) { _, _ in throw Boom() }
            harness.processor(for: work, handlers: handlers) {
                $0.retry = RetryPolicy(maxAttempts: 3, baseDelay: .seconds(1), maxDelay: .seconds(4), jitter: 0)
            }
            try await harness.send(Flaky(commandId: "flaky"), to: work)
            try await harness.send(Message(messageId: "garbage", body: Data("nope".utf8), subject: Flaky.typeName), to: work)
            try await harness.send(Message(messageId: "stranger", body: Data("{}".utf8), subject: "harness.Unknown"), to: work)

            try await harness.runUntilIdle()
            #expect(try await harness.deadLetters(of: work).count == 2, "poison goes at once; the failing command waits for its retry")
            await #expect(throws: HeraldTestHarness.ExpectationFailure.self) { try await harness.expectIdle([work]) }

            let elapsed = try await harness.runUntilSettled(step: .seconds(1))
            #expect(elapsed == .seconds(3), "back-offs of 1 s and 2 s, moved through in steps of 1 s")
            try await harness.expectDeadLetter("garbage", in: work, reason: "UndecodableMessage")
            try await harness.expectDeadLetter("stranger", in: work, reason: "UnknownMessageType")
            let failed = try await harness.expectDeadLetter("flaky", in: work, reason: "HandlerFailed")
            #expect(failed.message.deliveryCount == 3)
            #expect(try await harness.allDeadLetters()[work]?.count == 3)
            try await harness.expectIdle()
            await #expect(throws: HeraldTestHarness.ExpectationFailure.self) { try await harness.expectNoDeadLetters() }
        }
    }

    /// A message the sequence gate held and then released is retried when its handler fails,
    /// not left deferred until the gap timeout dead-letters it.
    @Test func aReleasedMessageWhoseHandlerFailsIsRetried() async throws {
        try await HeraldTestHarness.run { harness in
            let feed = try await harness.createQueue("feed")
            let failures = Mutex(1)
            var handlers = MessageHandlers()
            handlers.on(Step.self) { step, context in
                if step.step == 2,
                    failures.withLock({ remaining in
                        defer { remaining -= 1 }
                        return remaining > 0
                    })
                {
                    throw Boom()
                }
                let log = try await context.load([Int].self, collection: "log", key: "steps")
                try context.save((log?.value ?? []) + [step.step], collection: "log", key: "steps", expectedVersion: log?.version ?? 0)
            }
            let processor = harness.processor(for: feed, handlers: handlers) {
                $0.sequenceGate = .seconds(30)
                $0.retry = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), jitter: 0)
            }
            for step in [2, 1] {  // swapped
                var message = try MessageCoding.message(for: Step(commandId: "step-\(step)", step: step), correlationId: nil, causationId: nil)
                message.senderId = "sender"
                message.senderSequence = Int64(step)
                try await harness.send(message, to: feed)
            }
            try await harness.runUntilIdle()
            #expect(processor.statistics.held == 1)
            #expect(try await harness.document([Int].self, collection: "log", key: "steps") == [1], "2 was released and failed")

            let elapsed = try await harness.runUntilSettled(step: .seconds(1))
            #expect(elapsed < .seconds(30), "retried long before the gap timeout")
            #expect(try await harness.document([Int].self, collection: "log", key: "steps") == [1, 2])
            try await harness.expectNoDeadLetters()
            try await harness.expectIdle()
        }
    }

    @Test func shutdownDeletesTheStore() async throws {
        let harness = try HeraldTestHarness(storage: .temporaryFile)
        let directory = try #require(harness.directory)
        #expect(FileManager.default.fileExists(atPath: directory.path))
        #expect(!harness.broker.isInMemory)
        await harness.shutdown()
        await harness.shutdown()
        #expect(!FileManager.default.fileExists(atPath: directory.path))
    }

    /// The default store is in memory: no directory, no file, and the harness works the same on it
    /// (every other test of this suite runs on it).
    @Test func theDefaultStoreIsInMemory() async throws {
        try await HeraldTestHarness.run { harness in
            #expect(harness.directory == nil)
            #expect(harness.broker.isInMemory)
            let queue = try await harness.createQueue("q")
            try await harness.send(Message(text: "hello"), to: queue)
            #expect(try await harness.broker.counts(of: queue).active == 1)
        }
    }
}
