import Foundation
import HeraldCore

// GUARANTEES.md §2: topics copy each message into every matching subscription; subscriptions are
// queues of their own, with their own dead-letter queues.

private let topic = EntityPath.topic("events")

private func subscription(_ name: String) -> EntityPath { .subscription(name, of: topic.name) }

extension BrokerConformance {
    static let topicCases: [ConformanceCase] = [
        ConformanceCase(name: "topics.filters", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name)
            let filters: [(String, SubscriptionFilter)] = [
                ("all", .all),
                ("bySubject", SubscriptionFilter(subject: "OrderPlaced")),
                ("byCorrelation", SubscriptionFilter(correlationId: "c-1")),
                ("byContentType", SubscriptionFilter(contentType: "application/json")),
                ("byProperties", SubscriptionFilter(properties: ["region": .string("eu"), "tier": .int(1)])),
                ("bySubjectAndProperty", SubscriptionFilter(subject: "OrderPlaced", properties: ["vip": .bool(true)])),
            ]
            for (name, filter) in filters {
                try await broker.createSubscription(name, topic: topic.name, options: EntityOptions(), filter: filter)
            }
            let messages = [
                Message(messageId: "subject", body: Data(), subject: "OrderPlaced"),
                Message(messageId: "otherSubject", body: Data(), subject: "OrderCancelled"),
                Message(messageId: "correlation", body: Data(), correlationId: "c-1"),
                Message(messageId: "contentType", body: Data(), contentType: "application/json"),
                Message(messageId: "properties", body: Data(), applicationProperties: ["region": .string("eu"), "tier": .int(1), "extra": .double(2.5)]),
                Message(messageId: "partialProperties", body: Data(), applicationProperties: ["region": .string("eu")]),
                Message(messageId: "wrongType", body: Data(), applicationProperties: ["region": .string("eu"), "tier": .string("1")]),
                Message(messageId: "vipOrder", body: Data(), subject: "OrderPlaced", applicationProperties: ["vip": .bool(true)]),
                Message(messageId: "plain", body: Data()),
            ]
            for message in messages { try await broker.send(message, to: topic) }
            let expected: [String: [String]] = [
                "all": messages.map(\.messageId),
                "bySubject": ["subject", "vipOrder"],
                "byCorrelation": ["correlation"],
                "byContentType": ["contentType"],
                "byProperties": ["properties"],
                "bySubjectAndProperty": ["vipOrder"],
            ]
            for (name, _) in filters {
                let received = try await broker.receiveNow(from: subscription(name))
                try expectEqual(received.map(\.message.messageId), expected[name] ?? [], "subscription \(name) receives exactly the matching copies")
                try expect(
                    received.allSatisfy { $0.entity == subscription(name) && $0.lockToken?.entity == subscription(name) },
                    "\(name): entity and token name the subscription")
            }
        },

        ConformanceCase(name: "topics.copiesAreIndependent", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name)
            try await broker.createSubscription("one", topic: topic.name)
            try await broker.createSubscription("two", topic: topic.name)
            let sent = Message(body: Data("m".utf8), subject: "S", applicationProperties: ["k": .int(1)])
            try await broker.send(sent, to: topic)
            let one = try await receiveOne(broker, from: subscription("one"))
            try expectEqual(one.message, sent, "the copy is the message as sent")
            try await broker.complete(try expectNotNil(one.lockToken, "lock token"))
            try await expectCounts(broker, subscription("one"), EntityCounts(), "one completed its copy")
            try await expectCounts(broker, subscription("two"), EntityCounts(active: 1), "two still has its copy")
            try expectEqual(try await receiveOne(broker, from: subscription("two")).message, sent, "two's copy")
        },

        ConformanceCase(name: "topics.laterSubscriptionGetsOnlyLaterMessages", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name)
            try await broker.createSubscription("early", topic: topic.name)
            try await broker.send(Message(text: "before"), to: topic)
            try await broker.createSubscription("late", topic: topic.name)
            try await broker.send(Message(text: "after"), to: topic)
            try expectEqual(try await broker.receiveNow(from: subscription("early")).map(\.text), ["before", "after"], "the early subscription")
            try expectEqual(try await broker.receiveNow(from: subscription("late")).map(\.text), ["after"], "the late subscription")
        },

        ConformanceCase(name: "topics.noSubscriptions", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name)
            let receipt = try await broker.send(Message(text: "nobody listens"), to: topic)
            try expectEqual(receipt.isDuplicate, false, "a send to a topic without subscriptions succeeds")
            try await broker.createSubscription("late", topic: topic.name)
            try await expectCounts(broker, subscription("late"), EntityCounts(), "and is not kept for later subscriptions")
        },

        ConformanceCase(name: "topics.batchFansOutAtomically", guarantee: "§4.1") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name, options: EntityOptions(maxMessageSize: 100))
            try await broker.createSubscription("one", topic: topic.name)
            try await broker.createSubscription("two", topic: topic.name, options: EntityOptions(), filter: SubscriptionFilter(subject: "keep"))
            let good = [
                Message(messageId: "a", body: Data(), subject: "keep"), Message(messageId: "b", body: Data()),
                Message(messageId: "c", body: Data(), subject: "keep"),
            ]
            _ = try await broker.send(good, to: topic)
            let one = try await broker.receiveNow(from: subscription("one"))
            try expectEqual(one.map(\.message.messageId), ["a", "b", "c"], "one gets the whole batch in order")
            try expectEqual(one.map(\.sequenceNumber), Array(one[0].sequenceNumber..<(one[0].sequenceNumber + 3)), "with consecutive sequence numbers")
            try expectEqual(try await broker.receiveNow(from: subscription("two")).map(\.message.messageId), ["a", "c"], "two gets the matching ones")
            let bad = [Message(messageId: "d", body: Data(), subject: "keep"), Message(messageId: "e", body: body(size: 101))]
            try await expectUnchanged(broker, [subscription("one"), subscription("two")], "a topic batch with one message too large") {
                try await expectError(.messageTooLarge, "a topic batch with one message too large") { try await broker.send(bad, to: topic) }
            }
        },

        ConformanceCase(name: "topics.invalidPaths", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name)
            try await broker.createSubscription("all", topic: topic.name)
            try await broker.send(Message(text: "m"), to: topic)
            try await expectUnchanged(broker, [subscription("all")], "sends to a subscription, receives from a topic") {
                try await expectError(.invalidArgument, "send to a subscription") { try await broker.send(Message(text: "m"), to: subscription("all")) }
                try await expectError(.invalidArgument, "receive from a topic") { try await broker.receiveNow(from: topic) }
            }
        },

        ConformanceCase(name: "topics.subscriptionDeadLetterQueues", guarantee: "§2, §4.4") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name)
            try await broker.createSubscription("one", topic: topic.name)
            try await broker.createSubscription("two", topic: topic.name)
            try await broker.send(Message(text: "m"), to: topic)
            let one = try await receiveOne(broker, from: subscription("one"))
            try await broker.deadLetter(try expectNotNil(one.lockToken, "lock token"), reason: "Bad", description: "only in one")
            try await expectCounts(broker, subscription("one"), EntityCounts(deadLettered: 1), "one")
            try await expectCounts(broker, subscription("two"), EntityCounts(active: 1), "two")
            let dead = try await broker.peekAll(subscription("one").deadLetter)
            try expectEqual(dead.map(\.text), ["m"], "one's dead-letter queue")
            try expectEqual(dead.first?.entity, subscription("one").deadLetter, "the dead letter's entity")
            try expectEqual(try await broker.peekAll(subscription("two").deadLetter), [], "two's dead-letter queue")
            let received = try await receiveOne(broker, from: subscription("one").deadLetter)
            try await broker.resubmit(try expectNotNil(received.lockToken, "lock token"))
            try expectEqual(try await broker.receiveNow(from: subscription("one")).map(\.text), ["m"], "resubmitted to one")
            try await expectCounts(broker, subscription("two"), EntityCounts(active: 1), "two untouched")
        },

        ConformanceCase(name: "topics.subscriptionOptionsApply", guarantee: "§2, maxDeliveryCount, lockDuration") { context in
            let broker = context.broker
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(
                "strict", topic: topic.name, options: EntityOptions(lockDuration: .seconds(5), maxDeliveryCount: 1), filter: .all)
            try await broker.send(Message(text: "m"), to: topic)
            let message = try await receiveOne(broker, from: subscription("strict"))
            try expectSameMillisecond(message.lockedUntil, adding(.seconds(5), to: context.clock.now()), "the subscription's lockDuration")
            context.clock.advance(by: .seconds(5))
            try await expectNothing(broker, from: subscription("strict"), "maxDeliveryCount 1: dead-lettered instead of a second delivery")
            try expectEqual(
                try await broker.peekAll(subscription("strict").deadLetter).map(\.deadLetterReason), [DeadLetterReason.maxDeliveryCountExceeded], "dead letters"
            )
        },
    ]
}
