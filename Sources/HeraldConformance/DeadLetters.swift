import Foundation
import HeraldCore

// GUARANTEES.md §2 (dead-letter queues and resubmission) and §4.11 (nothing is dropped silently).

extension BrokerConformance {
    static let deadLetterCases: [ConformanceCase] = [
        ConformanceCase(name: "deadLetters.keepEverything", guarantee: "§4.11") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let sent = Message(
                messageId: "m-1", body: Data([0xDE, 0xAD, 0x00, 0xBE, 0xEF]), contentType: "application/octet-stream", subject: "Thing",
                correlationId: "c", causationId: "d", replyTo: "r",
                applicationProperties: ["s": .string("v"), "i": .int(-1), "d": .double(0.25), "b": .bool(false)]
            )
            try await broker.send(sent, to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: "Bad", description: "why")
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "counts")
            try await expectNothing(broker, from: queuePath, "the dead letter left the queue")
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(dead.count, 1, "dead letters")
            try expectEqual(dead[0].message, sent, "body and properties intact")
            try expectEqual(dead[0].deadLetterReason, "Bad", "deadLetterReason")
            try expectEqual(dead[0].deadLetterDescription, "why", "deadLetterDescription")
            try expectEqual(dead[0].entity, queuePath.deadLetter, "entity")
            try expectEqual(dead[0].lockToken, nil, "a peeked dead letter has no token")
        },

        // A dead-letter queue is counted on its own: its messages are active or locked there, and
        // it has no dead letters of its own; the queue counts them as dead-lettered.
        ConformanceCase(name: "deadLetters.countsOfTheDeadLetterQueue", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["a", "b", "c", "d"], to: queuePath)
            for message in try await broker.receiveNow(from: queuePath, maxCount: 3) {
                try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: "Bad", description: nil)
            }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, deadLettered: 3), "the queue")
            try await expectCounts(broker, queuePath.deadLetter, EntityCounts(active: 3), "the dead-letter queue")
            _ = try await receiveOne(broker, from: queuePath.deadLetter)
            try await expectCounts(broker, queuePath.deadLetter, EntityCounts(active: 2, locked: 1), "a dead letter received from the dead-letter queue")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, deadLettered: 3), "the queue, with a locked dead letter")
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            let subscription = EntityPath.subscription("audit", of: "events")
            try await broker.send(Message(text: "e"), to: .topic("events"))
            try await expectCounts(broker, subscription.deadLetter, EntityCounts(), "the empty dead-letter queue of a subscription")
            let event = try await receiveOne(broker, from: subscription)
            try await broker.deadLetter(try expectNotNil(event.lockToken, "lock token"), reason: "Bad", description: nil)
            try await expectCounts(broker, subscription.deadLetter, EntityCounts(active: 1), "the dead-letter queue of a subscription")
            try await expectCounts(broker, subscription, EntityCounts(deadLettered: 1), "the subscription")
        },

        ConformanceCase(name: "deadLetters.withoutDescription", guarantee: "§4.11") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: "NoDescription", description: nil)
            let dead = try await receiveOne(broker, from: queuePath.deadLetter)
            try expectEqual(dead.deadLetterReason, "NoDescription", "reason")
            try expectEqual(dead.deadLetterDescription, nil, "description")
        },

        ConformanceCase(name: "deadLetters.receiveLockAndComplete", guarantee: "§2, §4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(10)))
            try await broker.sendTexts(["a", "b"], to: queuePath)
            for message in try await broker.receiveNow(from: queuePath) {
                try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: "Bad", description: nil)
            }
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 2), "two dead letters")
            let first = try await receiveOne(broker, from: queuePath.deadLetter)
            let token = try expectNotNil(first.lockToken, "a dead letter received in peek-lock mode has a lock token")
            try expectEqual(first.text, "a", "dead letters in order")
            try expectEqual(first.entity, queuePath.deadLetter, "entity")
            try expectEqual(token.entity, queuePath.deadLetter, "the token names the dead-letter queue")
            try expectEqual(first.deadLetterReason, "Bad", "reason")
            let second = try await receiveOne(broker, from: queuePath.deadLetter, "a locked dead letter is not received again")
            try expectEqual(second.text, "b", "the other dead letter")
            try await broker.abandon(try expectNotNil(second.lockToken, "lock token"))
            try await broker.complete(token)
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "complete removes the dead letter")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter).map(\.text), ["b"], "the remaining dead letter")
            try expectEqual(try await broker.complete(token), .alreadySettled, "completing the dead letter twice: a retry")
            let third = try await receiveOne(broker, from: queuePath.deadLetter)
            context.clock.advance(by: .seconds(10))
            try await expectError(.lockLost, "a dead letter's expired lock") { try await broker.complete(try expectNotNil(third.lockToken, "")) }
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "still there")
        },

        ConformanceCase(name: "deadLetters.resubmit", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let sent = Message(body: Data("m".utf8), applicationProperties: ["k": .string("v")])
            let sequenceNumber = try expectNotNil(try await broker.send(sent, to: queuePath).sequenceNumber, "sequence number")
            try await broker.sendTexts(["later"], to: queuePath)
            let received = try await broker.receiveNow(from: queuePath, maxCount: 1)
            try await broker.abandon(try expectNotNil(received.first?.lockToken, "lock token"))
            let again = try await receiveOne(broker, from: queuePath)
            try expectEqual(again.deliveryCount, 2, "delivered twice")
            try await broker.deadLetter(try expectNotNil(again.lockToken, "lock token"), reason: "Bad", description: nil)
            let later = try await receiveOne(broker, from: queuePath)
            try await broker.complete(try expectNotNil(later.lockToken, "lock token"))
            let dead = try await receiveOne(broker, from: queuePath.deadLetter)
            try await broker.resubmit(try expectNotNil(dead.lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "back in the queue")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter), [], "the dead-letter queue is empty")
            let peeked = try await broker.peekAll(queuePath)
            try expectEqual(peeked.map(\.sequenceNumber), [sequenceNumber], "the original sequence number")
            try expectEqual(peeked.first?.deliveryCount, 0, "deliveryCount starts again at 0")
            try expectEqual(peeked.first?.message, sent, "the message intact")
            let back = try await receiveOne(broker, from: queuePath)
            try expectEqual(back.sequenceNumber, sequenceNumber, "received with its original sequence number")
            try expectEqual(back.deliveryCount, 1, "deliveryCount after resubmit")
            try expectEqual(back.entity, queuePath, "from the queue")
            try await broker.complete(try expectNotNil(back.lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(), "completed")
        },

        ConformanceCase(name: "deadLetters.resubmitWithStaleToken", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(10)))
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: "Bad", description: nil)
            let dead = try await receiveOne(broker, from: queuePath.deadLetter)
            context.clock.advance(by: .seconds(10))
            try await expectUnchanged(broker, [queuePath], "resubmit with an expired token") {
                try await expectError(.lockLost, "resubmit with an expired token") { try await broker.resubmit(try expectNotNil(dead.lockToken, "")) }
            }
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "still dead-lettered")
        },
    ]
}
