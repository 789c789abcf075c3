import Foundation
import HeraldCore

// GUARANTEES.md §4.4 and §4.11: delivery counts, and poison messages reach the dead-letter queue intact.

extension BrokerConformance {
    static let deliveryCountCases: [ConformanceCase] = [
        ConformanceCase(name: "deliveryCount.releaseIsNotCounted", guarantee: "§4.4, maxDeliveryCount", requires: [.uncountedRelease]) { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxDeliveryCount: 2))
            try await broker.send(Message(messageId: "released", body: Data("r".utf8)), to: queuePath)
            // More releases than the maximum delivery count: none counts, none dead-letters.
            for release in 1...3 {
                let message = try await receiveOne(broker, from: queuePath, "receive after \(release - 1) releases")
                try expectEqual(message.deliveryCount, 1, "deliveryCount after \(release - 1) releases")
                try expectEqual(try await broker.release(try expectNotNil(message.lockToken, "lock token")), .settled, "release \(release)")
            }
            let counted = try await receiveOne(broker, from: queuePath, "receive after the releases")
            try expectEqual(counted.deliveryCount, 1, "a released delivery is taken back")
            try await broker.abandon(try expectNotNil(counted.lockToken, "lock token"))
            let again = try await receiveOne(broker, from: queuePath, "receive after an abandon")
            try expectEqual(again.deliveryCount, 2, "an abandoned delivery counts")
            try await broker.complete(try expectNotNil(again.lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(), "completed, never dead-lettered")
        },

        ConformanceCase(name: "deliveryCount.maxDeliveryCountByAbandon", guarantee: "§4.4, §4.11, maxDeliveryCount") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxDeliveryCount: 3))
            let properties: [String: PropertyValue] = ["kind": .string("poison"), "n": .int(7)]
            let sent = Message(messageId: "poison", body: Data([1, 2, 3]), subject: "Poison", applicationProperties: properties)
            try await broker.send(sent, to: queuePath)
            for delivery in 1...3 {
                let message = try await receiveOne(broker, from: queuePath, "delivery \(delivery)")
                try expectEqual(message.deliveryCount, delivery, "deliveryCount of delivery \(delivery)")
                try await broker.abandon(try expectNotNil(message.lockToken, "lock token"))
            }
            try await expectNothing(broker, from: queuePath, "after maxDeliveryCount deliveries")
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "the message is dead-lettered")
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(dead.count, 1, "dead letters")
            try expectEqual(dead[0].deadLetterReason, DeadLetterReason.maxDeliveryCountExceeded, "deadLetterReason")
            try expectEqual(dead[0].deadLetterReason, "MaxDeliveryCountExceeded", "deadLetterReason spelled as in GUARANTEES.md")
            try expectEqual(dead[0].message, sent, "body and properties intact")
            try expectEqual(dead[0].deliveryCount, 3, "deliveryCount of the dead letter")
            try expectEqual(dead[0].entity, queuePath.deadLetter, "a dead letter's entity is the dead-letter path")
            let received = try await receiveOne(broker, from: queuePath.deadLetter, "receive from the dead-letter queue")
            try expectEqual(received.message, sent, "received dead letter intact")
            try expectEqual(received.deadLetterReason, DeadLetterReason.maxDeliveryCountExceeded, "received deadLetterReason")
        },

        ConformanceCase(name: "deliveryCount.maxDeliveryCountByLockExpiry", guarantee: "§4.4, maxDeliveryCount") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(5), maxDeliveryCount: 3))
            let sent = Message(body: Data("poison".utf8), applicationProperties: ["p": .bool(true)])
            try await broker.send(sent, to: queuePath)
            for delivery in 1...3 {
                let message = try await receiveOne(broker, from: queuePath, "delivery \(delivery)")
                try expectEqual(message.deliveryCount, delivery, "deliveryCount of delivery \(delivery)")
                context.clock.advance(by: .seconds(5))
            }
            try await expectNothing(broker, from: queuePath, "after the third lock expired")
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "the message is dead-lettered")
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(dead.map(\.deadLetterReason), [DeadLetterReason.maxDeliveryCountExceeded], "deadLetterReason")
            try expectEqual(dead.first?.message, sent, "body and properties intact")
            try expectEqual(dead.first?.deliveryCount, 3, "deliveryCount of the dead letter")
        },

        ConformanceCase(name: "deliveryCount.maxDeliveryCountOne", guarantee: "§4.4, maxDeliveryCount") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxDeliveryCount: 1))
            try await broker.sendTexts(["a", "b"], to: queuePath)
            let first = try await receiveOne(broker, from: queuePath)
            try expectEqual(first.text, "a", "first")
            try await broker.abandon(try expectNotNil(first.lockToken, "lock token"))
            let next = try await broker.receiveNow(from: queuePath)
            try expectEqual(next.map(\.text), ["b"], "a is dead-lettered on its second delivery, b is delivered")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter).map(\.text), ["a"], "dead letters")
        },

        ConformanceCase(name: "deliveryCount.peekDoesNotCount", guarantee: "§4.4") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxDeliveryCount: 2))
            try await broker.sendTexts(["m"], to: queuePath)
            for _ in 1...5 { _ = try await broker.peekAll(queuePath) }
            try expectEqual(try await broker.peekAll(queuePath).map(\.deliveryCount), [0], "peek leaves deliveryCount at 0")
            let message = try await receiveOne(broker, from: queuePath)
            try expectEqual(message.deliveryCount, 1, "the first receive after peeks")
        },
    ]
}
