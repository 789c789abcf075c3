import Foundation
import HeraldCore

// GUARANTEES.md §4.1 and §4.2: what was acknowledged survives a restart; locks do not.

extension BrokerConformance {
    static let restartCases: [ConformanceCase] = [
        ConformanceCase(name: "restart.lockedMessagesAreDeliveredAgain", guarantee: "§4.2", requires: [.durableStorage]) { context in
            var broker = context.broker
            try await broker.createQueue(queueName)
            let sent = (1...3).map { Message(messageId: "m\($0)", body: Data("m\($0)".utf8), subject: "S", applicationProperties: ["n": .int(Int64($0))]) }
            let numbers = try await broker.send(sent, to: queuePath).compactMap(\.sequenceNumber)
            let locked = try await broker.receiveNow(from: queuePath, maxCount: 2)
            try expectEqual(locked.map(\.sequenceNumber), Array(numbers.prefix(2)), "two locked")
            broker = try await context.reopen()
            try await expectCounts(broker, queuePath, EntityCounts(active: 3), "after reopen every message is visible")
            let peeked = try await broker.peekAll(queuePath)
            try expectEqual(peeked.map(\.sequenceNumber), numbers, "sequence numbers survive")
            try expectEqual(peeked.map(\.deliveryCount), [1, 1, 0], "delivery counts survive")
            try expectEqual(peeked.map(\.message), sent, "the messages survive intact")
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.sequenceNumber), numbers, "received in order")
            try expectEqual(received.map(\.deliveryCount), [2, 2, 1], "delivery counts go on")
            for message in locked {
                try await expectError(.lockLost, "a token from before the restart") { try await broker.complete(try expectNotNil(message.lockToken, "")) }
            }
            try await broker.complete(received.compactMap(\.lockToken))
            try await expectCounts(broker, queuePath, EntityCounts(), "completed")
        },

        ConformanceCase(name: "restart.sequenceNumbersContinue", guarantee: "§3", requires: [.durableStorage]) { context in
            var broker = context.broker
            try await broker.createQueue(queueName)
            let numbers = try await broker.sendTexts(["a", "b", "c"], to: queuePath)
            try await broker.complete(try await broker.receiveNow(from: queuePath).compactMap(\.lockToken))
            try await expectCounts(broker, queuePath, EntityCounts(), "all completed")
            broker = try await context.reopen()
            let next = try await broker.send(Message(text: "d"), to: queuePath)
            try expect(
                (next.sequenceNumber ?? 0) > (numbers.max() ?? .max),
                "a sequence number is never reused: \(String(describing: next.sequenceNumber)) after \(numbers)")
            broker = try await context.reopen()
            let after = try await broker.send(Message(text: "e"), to: queuePath)
            try expect((after.sequenceNumber ?? 0) > (next.sequenceNumber ?? .max), "and after another reopen: \(String(describing: after.sequenceNumber))")
        },

        ConformanceCase(name: "restart.scheduledDeferredAndDeadLettersSurvive", guarantee: "§4.1, §4.7", requires: [.durableStorage]) { context in
            var broker = context.broker
            let populated = try await populateQueue(broker, clock: context.clock)
            broker = try await context.reopen()
            try await expectCounts(broker, queuePath, EntityCounts(active: 2, scheduled: 1, deferred: 1, deadLettered: 1), "after reopen")
            let deferred = try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [populated.deferred])
            try expectEqual(deferred.map(\.text), ["deferred"], "the deferred message")
            try await broker.complete(try expectNotNil(deferred.first?.lockToken, "lock token"))
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(dead.map(\.text), ["dead"], "the dead letter")
            try expectEqual(dead.first?.deadLetterReason, "Bad", "its reason")
            try expectEqual(dead.first?.deadLetterDescription, "set-up", "its description")
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["locked", "active"], "before the scheduled time")
            context.clock.advance(by: .seconds(30))
            let scheduled = try await broker.receiveNow(from: queuePath)
            try expectEqual(scheduled.map(\.sequenceNumber), [populated.scheduled], "the scheduled message at its time")
        },

        ConformanceCase(name: "restart.entitiesSurvive", guarantee: "§4.1", requires: [.durableStorage]) { context in
            var broker = context.broker
            let options = EntityOptions(lockDuration: .seconds(20), maxDeliveryCount: 4, duplicateDetectionWindow: .seconds(60))
            try await broker.createQueue(queueName, options: options)
            try await broker.createTopic("events", options: EntityOptions(maxMessageSize: 2048))
            let filter = SubscriptionFilter(subject: "S", properties: ["k": .int(1)])
            try await broker.createSubscription("audit", topic: "events", options: options, filter: filter)
            let queues = try await broker.listQueues()
            let topics = try await broker.listTopics()
            let subscriptions = try await broker.listSubscriptions(topic: "events")
            broker = try await context.reopen()
            try expectEqual(try await broker.listQueues(), queues, "queues after reopen")
            try expectEqual(try await broker.listTopics(), topics, "topics after reopen")
            try expectEqual(try await broker.listSubscriptions(topic: "events"), subscriptions, "subscriptions after reopen")
            try await broker.send(Message(body: Data(), subject: "S", applicationProperties: ["k": .int(1)]), to: .topic("events"))
            try await broker.send(Message(body: Data(), subject: "S"), to: .topic("events"))
            try await expectCounts(broker, .subscription("audit", of: "events"), EntityCounts(active: 1), "the filter applies after reopen")
        },

        ConformanceCase(name: "restart.sessionMessagesSurvive", guarantee: "§4.2, §4.6", requires: [.durableStorage]) { context in
            var broker = context.broker
            try await broker.createQueue("sessions", options: EntityOptions(lockDuration: .seconds(30), requiresSession: true))
            let sessions = EntityPath.queue("sessions")
            try await broker.sendTexts(["a1", "a2"], to: sessions, sessionId: "a")
            let session = try await broker.accept(sessions, "a")
            let received = try await broker.receiveNow(from: session, maxCount: 1)
            try expectEqual(received.map(\.text), ["a1"], "before reopen")
            broker = try await context.reopen()
            context.clock.advance(by: .seconds(30))
            let again = try await broker.accept(sessions, "a")
            let after = try await broker.receiveNow(from: again)
            try expectEqual(after.map(\.text), ["a1", "a2"], "the session's messages after reopen, in order")
            try expectEqual(after.map(\.deliveryCount), [2, 1], "delivery counts survive")
        },
    ]
}
