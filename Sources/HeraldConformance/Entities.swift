import Foundation
import HeraldCore

// GUARANTEES.md §2: queues, topics, subscriptions, names and entity options.

extension BrokerConformance {
    static let entityCases: [ConformanceCase] = [
        ConformanceCase(name: "entities.createListDeleteQueues", guarantee: "§2") { context in
            let broker = context.broker
            try expectEqual(try await broker.listQueues(), [], "a fresh broker has no queues")
            for name in ["b", "a", "c"] { try await broker.createQueue(name) }
            try expectEqual(try await broker.listQueues().map(\.path), [.queue("a"), .queue("b"), .queue("c")], "queues listed by name")
            try await broker.deleteQueue("b")
            try expectEqual(try await broker.listQueues().map(\.path), [.queue("a"), .queue("c")], "after deleting b")
            try await expectError(.entityNotFound, "deleting b again") { try await broker.deleteQueue("b") }
            try await expectError(.entityNotFound, "counts of the deleted queue") { try await broker.counts(of: .queue("b")) }
            try expectEqual(try await broker.listTopics(), [], "creating queues creates no topic")
        },

        ConformanceCase(name: "entities.createListDeleteTopicsAndSubscriptions", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic("events")
            try await broker.createTopic("alerts")
            try expectEqual(try await broker.listTopics().map(\.path), [.topic("alerts"), .topic("events")], "topics listed by name")
            try expectEqual(try await broker.listQueues(), [], "creating topics creates no queue")
            try await broker.createSubscription("zeta", topic: "events")
            try await broker.createSubscription("audit", topic: "events")
            try expectEqual(
                try await broker.listSubscriptions(topic: "events").map(\.path),
                [.subscription("audit", of: "events"), .subscription("zeta", of: "events")], "subscriptions listed by name"
            )
            try expectEqual(try await broker.listSubscriptions(topic: "alerts"), [], "another topic's subscriptions")
            try await expectError(.entityAlreadyExists, "the same subscription twice") {
                try await broker.createSubscription("audit", topic: "events")
            }
            try await broker.deleteSubscription("zeta", topic: "events")
            try expectEqual(try await broker.listSubscriptions(topic: "events").map(\.path), [.subscription("audit", of: "events")], "after deleting zeta")
            try await expectError(.entityNotFound, "deleting zeta again") { try await broker.deleteSubscription("zeta", topic: "events") }
            try await broker.deleteTopic("events")
            try expectEqual(try await broker.listTopics().map(\.path), [.topic("alerts")], "after deleting events")
            try await expectError(.entityNotFound, "subscription of a deleted topic") {
                try await broker.counts(of: .subscription("audit", of: "events"))
            }
            try await broker.createTopic("events")
            try expectEqual(try await broker.listSubscriptions(topic: "events"), [], "a recreated topic has no subscriptions")
        },

        ConformanceCase(name: "entities.optionsRoundTrip", guarantee: "§2") { context in
            let broker = context.broker
            let queueOptions = EntityOptions(
                lockDuration: .seconds(17), maxDeliveryCount: 7, defaultTimeToLive: .seconds(3600), deadLetterOnExpiration: false,
                duplicateDetectionWindow: .seconds(120), requiresSession: true, maxMessageSize: 4096, parkSessionOnDeadLetter: true
            )
            try await broker.createQueue("custom", options: queueOptions)
            try await broker.createQueue("plain")
            try expectEqual(
                try await broker.listQueues(),
                [EntityDescription(path: .queue("custom"), options: queueOptions), EntityDescription(path: .queue("plain"), options: EntityOptions())],
                "listQueues"
            )
            let topicOptions = EntityOptions(
                defaultTimeToLive: .milliseconds(1500), duplicateDetectionWindow: .seconds(7 * 24 * 3600), maxMessageSize: 1_048_576)
            try await broker.createTopic("events", options: topicOptions)
            try expectEqual(try await broker.listTopics(), [EntityDescription(path: .topic("events"), options: topicOptions)], "listTopics")
            let subscriptionOptions = EntityOptions(lockDuration: .seconds(300), maxDeliveryCount: 2000, requiresSession: true)
            let filter = SubscriptionFilter(
                subject: "OrderPlaced", correlationId: "c-1", contentType: "application/json",
                properties: ["region": .string("eu"), "priority": .int(3), "ratio": .double(0.5), "vip": .bool(true)]
            )
            try await broker.createSubscription("audit", topic: "events", options: subscriptionOptions, filter: filter)
            try await broker.createSubscription("all", topic: "events")
            try expectEqual(
                try await broker.listSubscriptions(topic: "events"),
                [
                    SubscriptionDescription(path: .subscription("all", of: "events"), options: EntityOptions(), filter: .all),
                    SubscriptionDescription(path: .subscription("audit", of: "events"), options: subscriptionOptions, filter: filter),
                ],
                "listSubscriptions"
            )
        },

        ConformanceCase(name: "entities.queuesAndTopicsShareANamespace", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createQueue("x")
            try await expectError(.entityAlreadyExists, "createTopic(x) after createQueue(x)") { try await broker.createTopic("x") }
            try await expectError(.entityAlreadyExists, "createQueue(x) twice") { try await broker.createQueue("x") }
            try await broker.createTopic("y")
            try await expectError(.entityAlreadyExists, "createQueue(y) after createTopic(y)") { try await broker.createQueue("y") }
            try await expectError(.entityAlreadyExists, "createTopic(y) twice") { try await broker.createTopic("y") }
            try expectEqual(try await broker.listQueues().map(\.path), [.queue("x")], "queues")
            try expectEqual(try await broker.listTopics().map(\.path), [.topic("y")], "topics")
        },

        ConformanceCase(name: "entities.unknownEntity", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic("events")
            let nowhere = EntityPath.queue("nowhere")
            try await expectError(.entityNotFound, "send to an unknown queue") { try await broker.send(Message(text: "m"), to: nowhere) }
            try await expectError(.entityNotFound, "send to an unknown topic") { try await broker.send(Message(text: "m"), to: .topic("nowhere")) }
            try await expectError(.entityNotFound, "receive from an unknown queue") { try await broker.receiveNow(from: nowhere) }
            try await expectError(.entityNotFound, "receive from an unknown subscription") {
                try await broker.receiveNow(from: .subscription("nowhere", of: "events"))
            }
            try await expectError(.entityNotFound, "receive from an unknown dead-letter queue") { try await broker.receiveNow(from: nowhere.deadLetter) }
            try await expectError(.entityNotFound, "peek an unknown queue") { try await broker.peekAll(nowhere) }
            try await expectError(.entityNotFound, "counts of an unknown queue") { try await broker.counts(of: nowhere) }
            try await expectError(.entityNotFound, "delete an unknown queue") { try await broker.deleteQueue("nowhere") }
            try await expectError(.entityNotFound, "delete an unknown topic") { try await broker.deleteTopic("nowhere") }
            try await expectError(.entityNotFound, "delete an unknown subscription") { try await broker.deleteSubscription("nowhere", topic: "events") }
            try await expectError(.entityNotFound, "createSubscription on an unknown topic") { try await broker.createSubscription("s", topic: "nowhere") }
            try await expectError(.entityNotFound, "listSubscriptions of an unknown topic") { try await broker.listSubscriptions(topic: "nowhere") }
            try expectEqual(try await broker.listQueues(), [], "no queue was created on the way")
            try expectEqual(try await broker.listTopics().map(\.path), [.topic("events")], "no topic was created on the way")
        },

        // Queues and topics share one namespace, but a path names a kind: naming a queue as a topic
        // (or the reverse) finds nothing, rather than reaching the entity of the other kind.
        ConformanceCase(name: "entities.pathOfTheOtherKind", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createQueue("orders")
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            let queueAsTopic = EntityPath.topic("orders")
            let topicAsQueue = EntityPath.queue("events")
            let sent = try await expectError(.entityNotFound, "send to the queue named as a topic") {
                try await broker.send(Message(text: "m"), to: queueAsTopic)
            }
            try expect(sent.message.contains("'orders' is a queue"), "the error says what 'orders' is: \(sent.message)")
            let scheduled = adding(.seconds(30), to: context.clock.now())
            try await expectError(.entityNotFound, "schedule to the queue named as a topic") {
                try await broker.schedule(Message(text: "m"), at: scheduled, to: queueAsTopic)
            }
            let sentToTopic = try await expectError(.entityNotFound, "send to the topic named as a queue") {
                try await broker.send(Message(text: "m"), to: topicAsQueue)
            }
            try expect(sentToTopic.message.contains("'events' is a topic"), "the error says what 'events' is: \(sentToTopic.message)")
            let sequenceNumber = try await broker.schedule(Message(text: "later"), at: scheduled, to: .queue("orders"))
            try await expectError(.entityNotFound, "cancel in the queue named as a topic") {
                try await broker.cancelScheduled([sequenceNumber], in: queueAsTopic)
            }
            try await expectError(.entityNotFound, "receive from the topic named as a queue") { try await broker.receiveNow(from: topicAsQueue) }
            try await expectError(.entityNotFound, "receive from the dead letters of the topic named as a queue") {
                try await broker.receiveNow(from: topicAsQueue.deadLetter)
            }
            try await expectError(.entityNotFound, "receiveDeferred from the topic named as a queue") {
                try await broker.receiveDeferred(from: topicAsQueue, sequenceNumbers: [1])
            }
            try await expectError(.entityNotFound, "peek the topic named as a queue") { try await broker.peekAll(topicAsQueue) }
            try await expectError(.entityNotFound, "counts of the topic named as a queue") { try await broker.counts(of: topicAsQueue) }
            try await expectError(.entityNotFound, "acceptSession on the topic named as a queue") {
                try await broker.acceptSession(on: topicAsQueue, sessionId: "s", maxWaitTime: .zero)
            }
            try await expectError(.entityNotFound, "deleteQueue of a topic") { try await broker.deleteQueue("events") }
            try await expectError(.entityNotFound, "deleteTopic of a queue") { try await broker.deleteTopic("orders") }
            try await expectError(.entityNotFound, "createSubscription on a queue") { try await broker.createSubscription("s", topic: "orders") }
            try await expectError(.entityNotFound, "listSubscriptions of a queue") { try await broker.listSubscriptions(topic: "orders") }
            try await expectCounts(broker, .queue("orders"), EntityCounts(scheduled: 1), "only the scheduled message reached the queue")
            try await expectCounts(broker, .subscription("audit", of: "events"), EntityCounts(), "nothing reached the subscription")
            try expectEqual(try await broker.listQueues().map(\.path), [.queue("orders")], "the queue is still there")
            try expectEqual(try await broker.listTopics().map(\.path), [.topic("events")], "the topic is still there")
        },

        ConformanceCase(name: "entities.deleteQueueRemovesItsMessages", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["a", "b", "c", "d"], to: queuePath)
            let received = try await broker.receiveNow(from: queuePath, maxCount: 2)
            try await broker.deadLetter(try expectNotNil(received[0].lockToken, "lock token"), reason: "Bad", description: nil)
            _ = try await broker.schedule(Message(text: "later"), at: adding(.seconds(30), to: context.clock.now()), to: queuePath)
            try await broker.deleteQueue(queueName)
            try await broker.createQueue(queueName)
            try await expectCounts(broker, queuePath, EntityCounts(), "the recreated queue")
            try expectEqual(try await broker.peekAll(queuePath), [], "peek of the recreated queue")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter), [], "peek of the recreated dead-letter queue")
            context.clock.advance(by: .seconds(30))
            try await expectNothing(broker, from: queuePath, "the old scheduled message")
        },

        ConformanceCase(name: "entities.deleteTopicRemovesSubscriptions", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            try await broker.send(Message(text: "m"), to: .topic("events"))
            try await broker.deleteTopic("events")
            try await broker.createTopic("events")
            try await expectError(.entityNotFound, "the old subscription") { try await broker.counts(of: .subscription("audit", of: "events")) }
            try await broker.createSubscription("audit", topic: "events")
            try await expectCounts(broker, .subscription("audit", of: "events"), EntityCounts(), "the recreated subscription")
        },

        ConformanceCase(name: "entities.invalidNames", guarantee: "§2") { context in
            let broker = context.broker
            try await broker.createTopic("events")
            for name in ["", "-a", ".a", "_a", "a b", "a/b", "a$b", "é", string(bytes: 129)] {
                try await expectError(.invalidName, "createQueue(\"\(name.prefix(20))\") (\(name.utf8.count) bytes)") { try await broker.createQueue(name) }
                try await expectError(.invalidName, "createTopic(\"\(name.prefix(20))\")") { try await broker.createTopic(name) }
                try await expectError(.invalidName, "createSubscription(\"\(name.prefix(20))\")") {
                    try await broker.createSubscription(name, topic: "events")
                }
            }
            try expectEqual(try await broker.listQueues(), [], "no queue was created")
            try expectEqual(try await broker.listTopics().map(\.path), [.topic("events")], "no topic was created")
            try expectEqual(try await broker.listSubscriptions(topic: "events"), [], "no subscription was created")
        },

        ConformanceCase(name: "entities.validNames", guarantee: "§2") { context in
            let broker = context.broker
            let long = string(bytes: 128)
            for name in [long, "a.b_c-d", "9x", "A", "Z.9"] { try await broker.createQueue(name) }
            try await broker.createTopic("t-" + string(bytes: 126))
            try await broker.createSubscription("a.b_c-d", topic: "t-" + string(bytes: 126))
            try expectEqual(Set(try await broker.listQueues().map(\.path.name)), [long, "a.b_c-d", "9x", "A", "Z.9"], "queues")
            try await broker.send(Message(text: "m"), to: .queue(long))
            try expectEqual(try await receiveOne(broker, from: .queue(long)).text, "m", "a message through the 128-character queue")
        },

        // Every option at its edges: the bound is accepted, one step beyond is rejected.
        ConformanceCase(name: "entities.optionBounds", guarantee: "§2") { context in
            let broker = context.broker
            let accepted: [(String, EntityOptions)] = [
                ("lockDuration 1 s", EntityOptions(lockDuration: .seconds(1))),
                ("lockDuration 300 s", EntityOptions(lockDuration: .seconds(300))),
                ("maxDeliveryCount 1", EntityOptions(maxDeliveryCount: 1)),
                ("maxDeliveryCount 2000", EntityOptions(maxDeliveryCount: 2000)),
                ("maxMessageSize 1", EntityOptions(maxMessageSize: 1)),
                ("maxMessageSize 1 MiB", EntityOptions(maxMessageSize: 1_048_576)),
                ("duplicateDetectionWindow 1 s", EntityOptions(duplicateDetectionWindow: .seconds(1))),
                ("duplicateDetectionWindow 7 days", EntityOptions(duplicateDetectionWindow: .seconds(7 * 24 * 3600))),
                ("defaultTimeToLive 1 ms", EntityOptions(defaultTimeToLive: .milliseconds(1))),
                ("parkSessionOnDeadLetter with requiresSession", EntityOptions(requiresSession: true, parkSessionOnDeadLetter: true)),
            ]
            let rejected: [(String, EntityOptions)] = [
                ("lockDuration 999 ms", EntityOptions(lockDuration: .milliseconds(999))),
                ("lockDuration 301 s", EntityOptions(lockDuration: .seconds(301))),
                ("maxDeliveryCount 0", EntityOptions(maxDeliveryCount: 0)),
                ("maxDeliveryCount 2001", EntityOptions(maxDeliveryCount: 2001)),
                ("maxMessageSize 0", EntityOptions(maxMessageSize: 0)),
                ("maxMessageSize 1 MiB + 1", EntityOptions(maxMessageSize: 1_048_577)),
                ("duplicateDetectionWindow 7 days + 1 s", EntityOptions(duplicateDetectionWindow: .seconds(7 * 24 * 3600 + 1))),
                ("duplicateDetectionWindow 0", EntityOptions(duplicateDetectionWindow: .zero)),
                ("defaultTimeToLive 0", EntityOptions(defaultTimeToLive: .zero)),
                ("parkSessionOnDeadLetter without requiresSession", EntityOptions(parkSessionOnDeadLetter: true)),
            ]
            for (index, (label, options)) in accepted.enumerated() {
                try await broker.createQueue("ok\(index)", options: options)
                let listed = try await broker.listQueues().first { $0.path == .queue("ok\(index)") }
                try expectEqual(listed?.options, options, "\(label): listed options")
            }
            for (index, (label, options)) in rejected.enumerated() {
                try await expectError(.invalidOption, "createQueue with \(label)") { try await broker.createQueue("bad\(index)", options: options) }
            }
            try await expectError(.invalidOption, "createTopic with maxMessageSize 0") {
                try await broker.createTopic("badtopic", options: EntityOptions(maxMessageSize: 0))
            }
            try await broker.createTopic("events")
            try await expectError(.invalidOption, "createSubscription with lockDuration 301 s") {
                try await broker.createSubscription("bad", topic: "events", options: EntityOptions(lockDuration: .seconds(301)), filter: .all)
            }
            try expectEqual(try await broker.listQueues().count, accepted.count, "no rejected queue was created")
            try expectEqual(try await broker.listTopics().map(\.path), [.topic("events")], "no rejected topic was created")
            try expectEqual(try await broker.listSubscriptions(topic: "events"), [], "no rejected subscription was created")
        },
    ]
}
