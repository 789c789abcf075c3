import Foundation
import HeraldCore

// GUARANTEES.md §4.4: time-to-live, the defaultTimeToLive and deadLetterOnExpiration options.

extension BrokerConformance {
    static let expiryCases: [ConformanceCase] = [
        ConformanceCase(name: "expiry.timeToLiveDeadLetters", guarantee: "§4.4, deadLetterOnExpiration true") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let sentAt = context.clock.now()
            let sent = Message(body: Data("short-lived".utf8), timeToLive: .seconds(10), applicationProperties: ["k": .string("v")])
            try await broker.send(sent, to: queuePath)
            let peeked = try await broker.peekAll(queuePath)
            try expectSameMillisecond(peeked.first?.expiresAt, adding(.seconds(10), to: sentAt), "expiresAt = enqueuedTime + timeToLive")
            context.clock.advance(by: .seconds(10) - oneMillisecond)
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "1 ms before expiry")
            context.clock.advance(by: oneMillisecond)
            try await expectNothing(broker, from: queuePath, "once the time-to-live has passed")
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "the expired message is dead-lettered")
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(dead.map(\.deadLetterReason), [DeadLetterReason.ttlExpired], "deadLetterReason")
            try expectEqual(dead.first?.deadLetterReason, "TTLExpired", "deadLetterReason spelled as in GUARANTEES.md")
            try expectEqual(dead.first?.message.body, sent.body, "body intact")
            try expectEqual(dead.first?.message.applicationProperties, sent.applicationProperties, "properties intact")
            context.clock.advance(by: .seconds(3600))
            try expectEqual(try await broker.peekAll(queuePath.deadLetter).count, 1, "a dead letter does not expire away")
        },

        ConformanceCase(name: "expiry.timeToLiveDropsWithoutDeadLetter", guarantee: "§4.4, deadLetterOnExpiration false") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(deadLetterOnExpiration: false))
            try await broker.send(Message(body: Data("m".utf8), timeToLive: .seconds(10)), to: queuePath)
            try await broker.send(Message(body: Data("kept".utf8)), to: queuePath)
            context.clock.advance(by: .seconds(10))
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["kept"], "the expired message is not received")
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1), "the expired message is gone")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter), [], "nothing was dead-lettered")
            try expectEqual(try await broker.peekAll(queuePath).map(\.text), ["kept"], "peek")
        },

        ConformanceCase(name: "expiry.defaultTimeToLive", guarantee: "§4.4, defaultTimeToLive") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(defaultTimeToLive: .seconds(10)))
            let sentAt = context.clock.now()
            _ = try await broker.send(
                [
                    Message(messageId: "default", body: Data("default".utf8)),
                    Message(messageId: "longer", body: Data("longer".utf8), timeToLive: .seconds(60)),
                    Message(messageId: "shorter", body: Data("shorter".utf8), timeToLive: .seconds(5)),
                ],
                to: queuePath
            )
            let peeked = try await broker.peekAll(queuePath)
            try expectEqual(peeked.map(\.message.messageId), ["default", "longer", "shorter"], "peek")
            try expectSameMillisecond(peeked[0].expiresAt, adding(.seconds(10), to: sentAt), "the entity's default applies")
            try expectSameMillisecond(peeked[1].expiresAt, adding(.seconds(60), to: sentAt), "a longer own timeToLive overrides the default")
            try expectSameMillisecond(peeked[2].expiresAt, adding(.seconds(5), to: sentAt), "a shorter own timeToLive overrides the default")
            context.clock.advance(by: .seconds(5))
            try await expectCounts(broker, queuePath, EntityCounts(active: 2, deadLettered: 1), "after 5 s")
            context.clock.advance(by: .seconds(5))
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.message.messageId), ["longer"], "after 10 s only the longer-lived message")
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(Set(dead.map(\.message.messageId)), ["default", "shorter"], "dead letters")
            try expect(dead.allSatisfy { $0.deadLetterReason == DeadLetterReason.ttlExpired }, "both dead-lettered as TTLExpired")
        },

        ConformanceCase(name: "expiry.topicDefaultTimeToLive", guarantee: "§4.4, defaultTimeToLive") { context in
            let broker = context.broker
            try await broker.createTopic("events", options: EntityOptions(defaultTimeToLive: .seconds(10)))
            try await broker.createSubscription("all", topic: "events")
            let subscription = EntityPath.subscription("all", of: "events")
            let sentAt = context.clock.now()
            try await broker.send(Message(text: "m"), to: .topic("events"))
            try expectSameMillisecond(
                try await broker.peekAll(subscription).first?.expiresAt, adding(.seconds(10), to: sentAt), "the topic's default applies to the copy")
            context.clock.advance(by: .seconds(10))
            try await expectNothing(broker, from: subscription, "the copy expired")
            try expectEqual(try await broker.peekAll(subscription.deadLetter).map(\.deadLetterReason), [DeadLetterReason.ttlExpired], "dead letters")
        },
    ]
}
