import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import Synchronization
import Testing

@Suite struct MessageProcessorTests {
    @Test func everyMessageDeliveredTwiceHasOneEffect() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("commands")  // no duplicate-detection window: both copies are enqueued
        try await broker.createTopic("events")
        try await broker.createSubscription("all", topic: "events")
        var handlers = MessageHandlers()
        handlers.on(Increment.self) { command, context in
            let value = try await bump(context, command.counter)
            try context.publish(Incremented(counter: command.counter, value: value), to: .topic("events"))
        }
        let commands = CommandBus(broker: broker)
        for index in 0..<20 {
            let command = Increment(commandId: "c-\(index)", counter: "k")
            try await commands.send(command, to: .queue("commands"))
            try await commands.send(command, to: .queue("commands"))
        }
        let processor = store.processor(.queue("commands"), handlers)
        try await processor.processAvailable()
        #expect(try await broker.document("k", in: "counters").map { try JSONDecoder().decode(Int.self, from: $0.data) } == 20)
        #expect(try await broker.counts(of: .subscription("all", of: "events")).active == 20)
        #expect(try await broker.counts(of: .queue("commands")) == EntityCounts())
        #expect(processor.statistics.handled == 20)
        #expect(processor.statistics.duplicatesSuppressed == 20)
    }

    @Test func aBatchsInboxIsReadOnceYetNoHandlerRunsForWhatWasHandled() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("commands")
        let runs = Mutex<[String: Int]>([:])
        var handlers = MessageHandlers()
        handlers.on(Increment.self) { command, context in
            runs.withLock { $0[command.commandId, default: 0] += 1 }
            _ = try await bump(context, command.counter)
        }
        var handledBefore = BrokerTransaction()
        handledBefore.recordInbox(handler: Increment.typeName, messageId: "c-1")
        _ = try await broker.commit(handledBefore)
        let commands = CommandBus(broker: broker)
        // One receive takes all four: c-0 twice (its second copy is handled only after the
        // first committed), c-1 handled before, c-2 new.
        for id in ["c-0", "c-0", "c-1", "c-2"] { try await commands.send(Increment(commandId: id, counter: "k"), to: .queue("commands")) }
        let processor = store.processor(.queue("commands"), handlers)
        try await processor.processAvailable()
        #expect(runs.withLock { $0 } == ["c-0": 1, "c-2": 1], "no handler runs for a message its inbox holds")
        #expect(processor.statistics.handled == 2)
        #expect(processor.statistics.duplicatesSuppressed == 2)
        #expect(
            try await broker.inboxEntries(among: ["c-0", "c-1", "c-2", "c-3"].map { InboxEntry(handler: Increment.typeName, messageId: $0) })
                == Set(["c-0", "c-1", "c-2"].map { InboxEntry(handler: Increment.typeName, messageId: $0) }))
        #expect(try await broker.counts(of: .queue("commands")) == EntityCounts())
    }

    @Test func outgoingMessagesCarryCorrelationAndCausation() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        try await broker.createQueue("out")
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            try context.send(Step(commandId: "next-\(command.step)", step: command.step + 1), to: .queue("out"))
        }
        try await CommandBus(broker: broker).send(Step(commandId: "first", step: 1), to: .queue("in"), correlationId: "workflow-7")
        try await store.processor(.queue("in"), handlers).processAvailable()
        let out = try await broker.peek(.queue("out"), fromSequenceNumber: 1, maxCount: 10)
        #expect(out.count == 1)
        #expect(out.first?.message.messageId == "next-1", "a command's message id is its id")
        #expect(out.first?.message.correlationId == "workflow-7")
        #expect(out.first?.message.causationId == "first")
        #expect(out.first?.message.subject == Step.typeName)
    }

    @Test func poisonMessagesLandInTheDeadLetterQueueWithTheirReason() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        var handlers = MessageHandlers()
        handlers.on(Fail.self) { _, _ in throw Boom() }
        handlers.on(Step.self) { _, _ in }
        try await broker.send(Message(messageId: "unknown", body: Data("{}".utf8), subject: "test.Unknown"), to: .queue("in"))
        try await broker.send(Message(messageId: "garbage", body: Data("not json".utf8), subject: Step.typeName), to: .queue("in"))
        try await CommandBus(broker: broker).send(Fail(commandId: "failing"), to: .queue("in"))
        let processor = store.processor(.queue("in"), handlers) { $0.retry = RetryPolicy(maxAttempts: 3, baseDelay: .seconds(1), maxDelay: .seconds(10)) }
        for _ in 0..<3 {
            try await processor.processAvailable()
            store.clock.advance(by: .seconds(10))  // past any backoff
        }
        let dead = try await broker.peek(EntityPath.queue("in").deadLetter, fromSequenceNumber: 1, maxCount: 10)
        let reasons = Dictionary(uniqueKeysWithValues: dead.map { ($0.message.messageId, $0.deadLetterReason ?? "") })
        #expect(reasons == ["unknown": "UnknownMessageType", "garbage": "UndecodableMessage", "failing": "HandlerFailed"])
        #expect(dead.first { $0.message.messageId == "garbage" }?.message.body == Data("not json".utf8), "the body is kept")
        #expect(dead.first { $0.message.messageId == "failing" }?.deliveryCount == 3)
        #expect(processor.statistics.retries == 2)
        #expect(processor.statistics.deadLettered == ["UnknownMessageType": 1, "UndecodableMessage": 1, "HandlerFailed": 1])
    }

    @Test func retryBacksOffExponentiallyWithJitter() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1), jitter: 0.5)
        #expect(policy.delay(afterAttempt: 1, random: 1) == .milliseconds(100))
        #expect(policy.delay(afterAttempt: 2, random: 1) == .milliseconds(200))
        #expect(policy.delay(afterAttempt: 3, random: 0) == .milliseconds(200))
        #expect(policy.delay(afterAttempt: 9, random: 1) == .seconds(1), "capped")
    }

    @Test func reorderedMessagesAreHeldAndReleasedInOrder() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in try await log(context, "order", command.step) }
        for step in [3, 1, 4, 2] { try await sendStep(step, to: broker) }
        let processor = store.processor(.queue("in"), handlers) { $0.sequenceGate = .seconds(30) }
        try await processor.processAvailable()
        #expect(try await broker.document("order", in: "logs").map { try JSONDecoder().decode([Int].self, from: $0.data) } == [1, 2, 3, 4])
        #expect(processor.statistics.held == 2)
        #expect(try await broker.counts(of: .queue("in")) == EntityCounts())
    }

    @Test func aGapThatNeverFillsDeadLettersTheHeldMessages() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in try await log(context, "order", command.step) }
        for step in [2, 3] { try await sendStep(step, to: broker) }
        let processor = store.processor(.queue("in"), handlers) { $0.sequenceGate = .seconds(30) }
        try await processor.processAvailable()
        #expect(try await broker.counts(of: .queue("in")) == EntityCounts(deferred: 2), "held while the gap may still fill")
        store.clock.advance(by: .seconds(30))
        try await processor.processAvailable()
        let dead = try await broker.peek(EntityPath.queue("in").deadLetter, fromSequenceNumber: 1, maxCount: 10)
        #expect(dead.map(\.message.senderSequence) == [2, 3])
        #expect(dead.allSatisfy { $0.deadLetterReason == "SequenceGapTimeout" })
        #expect(try await broker.document("order", in: "logs") == nil, "nothing was handled out of order")
        // The gate moved past the gap: the sender's next message is handled.
        try await sendStep(4, to: broker)
        try await processor.processAvailable()
        #expect(try await broker.document("order", in: "logs").map { try JSONDecoder().decode([Int].self, from: $0.data) } == [4])
    }

    @Test func sessionModeHandlesEachSessionInOrder() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in", options: EntityOptions(requiresSession: true))
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            try await log(context, context.message.message.sessionId ?? "", command.step)
        }
        let bus = CommandBus(broker: broker)
        for step in 1...5 {
            for session in ["a", "b"] {
                try await bus.send(Step(commandId: "\(session)\(step)", step: step), to: .queue("in"), sessionId: session)
            }
        }
        let processor = store.processor(.queue("in"), handlers) { $0.sessions = true }
        try await processor.processAvailable()
        for session in ["a", "b"] {
            #expect(try await broker.document(session, in: "logs").map { try JSONDecoder().decode([Int].self, from: $0.data) } == [1, 2, 3, 4, 5])
        }
    }

    @Test func gracefulStopFinishesTheCurrentMessageAndReturnsTheRest() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        let processorBox = ProcessorBox()
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            try await log(context, "done", command.step)
            processorBox.processor?.stop()  // stop while the first message is in flight
        }
        let bus = CommandBus(broker: broker)
        for step in 1...5 { try await bus.send(Step(commandId: "s\(step)", step: step), to: .queue("in")) }
        let processor = store.processor(.queue("in"), handlers)
        processorBox.processor = processor
        try await processor.run()
        #expect(try await broker.document("done", in: "logs").map { try JSONDecoder().decode([Int].self, from: $0.data) } == [1])
        #expect(try await broker.counts(of: .queue("in")) == EntityCounts(active: 4), "the rest were abandoned, not lost or locked")
    }

    /// A source that cannot exist is a mistake to report, not a condition to wait out: `run()`
    /// throws at once instead of logging a warning and retrying forever.
    @Test(arguments: [
        (EntityPath.queue("nowhere"), false, HeraldError.Code.entityNotFound),
        (EntityPath.queue("nowhere"), true, HeraldError.Code.entityNotFound),
        (EntityPath.subscription("audit", of: "nowhere"), false, HeraldError.Code.entityNotFound),
        (EntityPath.queue("events"), false, HeraldError.Code.entityNotFound),
        (EntityPath.queue("not a name"), false, HeraldError.Code.invalidName),
    ])
    func runThrowsWhenTheSourceCannotBeReceivedFrom(_ source: EntityPath, _ sessions: Bool, _ code: HeraldError.Code) async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        try await store.broker.createTopic("events")
        let processor = store.processor(source, MessageHandlers()) { $0.sessions = sessions }
        let thrown = try await withThrowingTaskGroup(of: HeraldError?.self) { group in
            group.addTask {
                do {
                    try await processor.run()
                    return nil
                } catch let error as HeraldError {
                    return error
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                processor.stop()
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        #expect(thrown?.code == code, "run() of a processor of \(source) ends with \(code)")
    }
}

/// Sends step `step` to queue `in`, stamped by sender `sender` with sequence `step`.
private func sendStep(_ step: Int, to broker: SQLiteBroker) async throws {
    var message = try MessageCoding.message(for: Step(commandId: "s\(step)", step: step), correlationId: nil, causationId: nil)
    message.senderId = "sender"
    message.senderSequence = Int64(step)
    try await broker.send(message, to: .queue("in"))
}

final class ProcessorBox: @unchecked Sendable {
    var processor: MessageProcessor?
}

/// Lock renewal runs on the processor's clock, the one the broker's locks expire by: with a manual
/// clock, a handler that takes several lock durations of that clock keeps its lock without sleeping.
@Suite struct LockRenewalTests {
    @Test func aHandlerSlowerThanTheLockKeepsItsLock() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in", options: EntityOptions(lockDuration: .seconds(60)))
        let clock = store.clock
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            // 2.5 lock durations, in steps of half a lock: each step waits for the renewal it is due.
            for _ in 0..<5 {
                let before = try await lockedUntil(of: context.message, in: broker)
                clock.advance(by: .seconds(30))
                try await waitUntil("the lock is renewed") { try await lockedUntil(of: context.message, in: broker) > before }
            }
            try await log(context, "done", command.step)
        }
        try await CommandBus(broker: broker).send(Step(commandId: "slow", step: 1), to: .queue("in"))
        let processor = store.processor(.queue("in"), handlers)
        try await processor.processAvailable()
        #expect(processor.statistics.handled == 1)
        #expect(processor.statistics.lockLosses == 0)
        #expect(try await broker.counts(of: .queue("in")) == EntityCounts())
    }
}

/// When the lock of `message` expires, as the store shows it.
private func lockedUntil(of message: ReceivedMessage, in broker: SQLiteBroker) async throws -> Date {
    let peeked = try await broker.peek(message.entity, fromSequenceNumber: message.sequenceNumber, maxCount: 1)
    return try #require(peeked.first?.lockedUntil, "the message is locked")
}
