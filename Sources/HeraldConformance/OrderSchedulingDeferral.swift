import Foundation
import HeraldCore

// GUARANTEES.md §4.6 (order) and §4.7 (scheduling and deferral).

extension BrokerConformance {
    static let orderCases: [ConformanceCase] = [
        ConformanceCase(name: "order.sequenceNumberOrderAcrossReceives", guarantee: "§4.6") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            var sent: [Int64] = []
            for index in 0..<50 {
                sent.append(try await broker.send(Message(text: "m\(index)"), to: queuePath).sequenceNumber ?? -1)
            }
            var received: [ReceivedMessage] = []
            while received.count < 50 {
                let batch = try await broker.receiveNow(from: queuePath, maxCount: 7)
                try expect(!batch.isEmpty, "receive returned nothing after \(received.count) of 50 messages")
                try expect(batch.count <= 7, "receive returned \(batch.count) messages for maxCount 7")
                received += batch
            }
            try expectEqual(received.map(\.sequenceNumber), sent, "received in sequence-number order")
            try expectEqual(received.map(\.text), (0..<50).map { "m\($0)" }, "bodies in send order")
            try await expectNothing(broker, from: queuePath, "after all 50")
        },

        ConformanceCase(name: "scheduling.invisibleUntilItsTime", guarantee: "§4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let time = adding(.seconds(30), to: context.clock.now())
            let receipt = try await broker.send(Message(body: Data("later".utf8), scheduledEnqueueTime: time), to: queuePath)
            try expectEqual(receipt.isDuplicate, false, "receipt")
            try await expectCounts(broker, queuePath, EntityCounts(scheduled: 1), "a scheduled message")
            try expectEqual(try await broker.peekAll(queuePath).map(\.state), [.scheduled], "peek shows it scheduled")
            try await expectNothing(broker, from: queuePath, "before its time")
            context.clock.advance(by: .seconds(30) - oneMillisecond)
            try await expectNothing(broker, from: queuePath, "1 ms before its time")
            context.clock.advance(by: oneMillisecond)
            let message = try await receiveOne(broker, from: queuePath, "at its time")
            try expectEqual(message.sequenceNumber, receipt.sequenceNumber, "the scheduled message")
            try expectEqual(message.state, .active, "state once visible")
            try expectEqual(message.deliveryCount, 1, "deliveryCount")
            try expectSameMillisecond(message.enqueuedTime, time, "a scheduled message's enqueuedTime is its scheduled time")
        },

        ConformanceCase(name: "scheduling.scheduleReturnsSequenceNumberAndCancelRemoves", guarantee: "§4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let time = adding(.seconds(30), to: context.clock.now())
            let first = try await broker.schedule(Message(text: "cancelled"), at: time, to: queuePath)
            let second = try await broker.schedule(Message(text: "kept"), at: time, to: queuePath)
            try expect(second > first, "schedule returns increasing sequence numbers")
            try expectEqual(try await broker.peekAll(queuePath).map(\.sequenceNumber), [first, second], "peek shows both by sequence number")
            try await broker.cancelScheduled([first], in: queuePath)
            try await expectCounts(broker, queuePath, EntityCounts(scheduled: 1), "after cancelling one")
            context.clock.advance(by: .seconds(30))
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.sequenceNumber), [second], "the cancelled message never appears")
            try await expectError(.messageNotFound, "cancelling it again") { try await broker.cancelScheduled([first], in: queuePath) }
        },

        ConformanceCase(name: "scheduling.cancelDependsOnlyOnTheTime", guarantee: "§4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let time = adding(.seconds(30), to: context.clock.now())
            let early = try await broker.schedule(Message(text: "early"), at: time, to: queuePath)
            let unswept = try await broker.schedule(Message(text: "unswept"), at: time, to: queuePath)
            let swept = try await broker.schedule(Message(text: "swept"), at: time, to: queuePath)
            context.clock.advance(by: .seconds(30) - oneMillisecond)
            try await broker.cancelScheduled([early], in: queuePath)
            context.clock.advance(by: oneMillisecond)
            // Due now: active, whether or not anyone has looked at the queue since (nobody has yet).
            let notScheduled = try await expectError(.messageNotFound, "cancelling a due message nobody has looked at") {
                try await broker.cancelScheduled([unswept], in: queuePath)
            }
            try expect(notScheduled.message.contains("no longer scheduled"), "the error says the message is no longer scheduled: \(notScheduled.message)")
            try await expectCounts(broker, queuePath, EntityCounts(active: 2), "both due messages are active")
            try await expectUnchanged(broker, [queuePath], "cancelling a due message after a count") {
                try await expectError(.messageNotFound, "cancelling a due message after a count") {
                    try await broker.cancelScheduled([swept], in: queuePath)
                }
            }
            let cancelled = try await expectError(.messageNotFound, "cancelling a cancelled message") {
                try await broker.cancelScheduled([early], in: queuePath)
            }
            try expect(cancelled.message.contains("no longer scheduled"), "the error says the message is no longer scheduled: \(cancelled.message)")
            let unknown = try await expectError(.messageNotFound, "cancelling a sequence number never assigned") {
                try await broker.cancelScheduled([swept + 1], in: queuePath)
            }
            try expect(unknown.message.contains("never had"), "the error says the queue never had that message: \(unknown.message)")
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["unswept", "swept"], "both due messages are delivered")
        },

        ConformanceCase(name: "scheduling.cancelNonScheduledThrows", guarantee: "§4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let active = try await broker.sendTexts(["active"], to: queuePath)[0]
            let scheduled = try await broker.schedule(Message(text: "scheduled"), at: adding(.seconds(30), to: context.clock.now()), to: queuePath)
            try await expectUnchanged(broker, [queuePath], "cancelScheduled of non-scheduled messages") {
                try await expectError(.messageNotFound, "cancelScheduled of an active message") { try await broker.cancelScheduled([active], in: queuePath) }
                try await expectError(.messageNotFound, "cancelScheduled of an unknown sequence number") {
                    try await broker.cancelScheduled([999], in: queuePath)
                }
                try await expectError(.messageNotFound, "cancelScheduled([scheduled, active]) cancels none") {
                    try await broker.cancelScheduled([scheduled, active], in: queuePath)
                }
            }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, scheduled: 1), "nothing was cancelled")
        },

        ConformanceCase(name: "scheduling.cancelThroughATopic", guarantee: "§4.7") { context in
            let broker = context.broker
            let topic = EntityPath.topic("events")
            let all = EntityPath.subscription("all", of: topic.name)
            let invoices = EntityPath.subscription("invoices", of: topic.name)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(invoices.name, topic: topic.name, filter: SubscriptionFilter(subject: "invoice"))
            // Each subscription numbers its copies itself: here neither numbering is the topic's.
            try await broker.send(Message(text: "earlier", subject: "invoice"), to: topic)
            try await broker.createSubscription(all.name, topic: topic.name)
            let time = adding(.seconds(30), to: context.clock.now())
            let order = try await broker.schedule(Message(text: "order", subject: "order"), at: time, to: topic)
            let invoice = try await broker.schedule(Message(text: "invoice", subject: "invoice"), at: time, to: topic)
            let kept = try await broker.schedule(Message(text: "kept", subject: "invoice"), at: time, to: topic)
            try expect(order < invoice && invoice < kept, "the topic's sends return increasing sequence numbers: \([order, invoice, kept])")
            try await expectCounts(broker, all, EntityCounts(scheduled: 3), "every message scheduled in all")
            try await expectCounts(broker, invoices, EntityCounts(active: 1, scheduled: 2), "the invoices scheduled in invoices")
            for subscription in [all, invoices] {
                let copy = try await broker.peekAll(subscription).first { $0.text == "invoice" }
                try expect(copy != nil && copy?.sequenceNumber != invoice, "\(subscription)'s copy has a number of its own, not the topic's \(invoice)")
            }

            // By the topic's numbers: each message's copy in every subscription that took it.
            try await broker.cancelScheduled([order, invoice], in: topic)
            try expectEqual(try await broker.peekAll(all).map(\.text), ["kept"], "all keeps only the message not cancelled")
            try expectEqual(try await broker.peekAll(invoices).map(\.text), ["earlier", "kept"], "invoices keeps only the message not cancelled")
            try await expectCounts(broker, all, EntityCounts(scheduled: 1), "all after the cancel")
            try await expectCounts(broker, invoices, EntityCounts(active: 1, scheduled: 1), "invoices after the cancel")

            // Refused as a queue refuses, all or none.
            let active = try await broker.send(Message(text: "active", subject: "invoice"), to: topic).sequenceNumber ?? -1
            try await expectUnchanged(broker, [all, invoices], "refused cancels through the topic") {
                let cancelled = try await expectError(.messageNotFound, "cancelling a cancelled message again") {
                    try await broker.cancelScheduled([invoice], in: topic)
                }
                try expect(cancelled.message.contains("no longer scheduled"), "the error says the message is no longer scheduled: \(cancelled.message)")
                let enqueued = try await expectError(.messageNotFound, "cancelling a message whose copies are enqueued") {
                    try await broker.cancelScheduled([active], in: topic)
                }
                try expect(enqueued.message.contains("no longer scheduled"), "the error says the message is no longer scheduled: \(enqueued.message)")
                let unknown = try await expectError(.messageNotFound, "cancelling a number the topic never assigned") {
                    try await broker.cancelScheduled([active + 1], in: topic)
                }
                try expect(unknown.message.contains("never had"), "the error says the topic never had that message: \(unknown.message)")
                try await expectError(.messageNotFound, "cancelScheduled([kept, active]) cancels none") {
                    try await broker.cancelScheduled([kept, active], in: topic)
                }
                try await expectError(.messageNotFound, "cancelScheduled([kept, kept]) cancels none") {
                    try await broker.cancelScheduled([kept, kept], in: topic)
                }
                try await expectError(.messageNotFound, "cancelScheduled([kept, unknown]) cancels none") {
                    try await broker.cancelScheduled([kept, active + 1], in: topic)
                }
            }

            // Once its time has come, a message is active in every subscription: refused.
            context.clock.advance(by: .seconds(30))
            let due = try await expectError(.messageNotFound, "cancelling a due message") { try await broker.cancelScheduled([kept], in: topic) }
            try expect(due.message.contains("no longer scheduled"), "the error says the message is no longer scheduled: \(due.message)")
            try expectEqual(try await broker.receiveNow(from: all, maxCount: 10).map(\.text), ["kept", "active"], "all delivers what was not cancelled")
            try expectEqual(try await broker.receiveNow(from: invoices, maxCount: 10).map(\.text), ["earlier", "kept", "active"], "so does invoices")
        },

        ConformanceCase(name: "scheduling.cancelThroughATopicWhatNoSubscriptionTook", guarantee: "§4.7") { context in
            let broker = context.broker
            let topic = EntityPath.topic("events")
            let invoices = EntityPath.subscription("invoices", of: topic.name)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(invoices.name, topic: topic.name, filter: SubscriptionFilter(subject: "invoice"))
            let time = adding(.seconds(30), to: context.clock.now())
            // Service Bus holds a scheduled message in the topic and filters it at its time, so its
            // sender can cancel it until then even if no subscription wants it: so can Herald's.
            let untaken = try await broker.schedule(Message(text: "order", subject: "order"), at: time, to: topic)
            let due = try await broker.schedule(Message(text: "order", subject: "order"), at: time, to: topic)
            let sentNow = try await broker.send(Message(text: "order", subject: "order"), to: topic).sequenceNumber ?? -1
            try await expectCounts(broker, invoices, EntityCounts(), "no subscription took them")
            try await broker.cancelScheduled([untaken], in: topic)
            let again = try await expectError(.messageNotFound, "cancelling it again") { try await broker.cancelScheduled([untaken], in: topic) }
            try expect(again.message.contains("no longer scheduled"), "the error says the message is no longer scheduled: \(again.message)")
            try await expectError(.messageNotFound, "a message sent for now that nobody took is gone") {
                try await broker.cancelScheduled([sentNow], in: topic)
            }
            context.clock.advance(by: .seconds(30))
            try await expectError(.messageNotFound, "once its time has come") { try await broker.cancelScheduled([due], in: topic) }

            // A topic without subscriptions alike.
            try await broker.createTopic("lonely")
            let lonely = try await broker.schedule(Message(text: "m"), at: adding(.seconds(30), to: context.clock.now()), to: .topic("lonely"))
            try await broker.cancelScheduled([lonely], in: .topic("lonely"))
        },

        ConformanceCase(name: "deferral.receivedOnlyBySequenceNumber", guarantee: "§4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["deferred", "next"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            try await broker.defer(try expectNotNil(message.lockToken, "lock token"))
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["next"], "receive skips the deferred message")
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1, deferred: 1), "counts")
            let peeked = try await broker.peekAll(queuePath)
            try expectEqual(peeked.first?.state, .deferred, "peek shows it deferred")
            context.clock.advance(by: .seconds(3600))
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["next"], "a deferred message does not come back by itself")
            let deferred = try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [message.sequenceNumber])
            try expectEqual(deferred.map(\.sequenceNumber), [message.sequenceNumber], "receiveDeferred returns it")
            try expectEqual(deferred[0].state, .deferred, "its state")
            try expectEqual(deferred[0].text, "deferred", "its body")
            let token = try expectNotNil(deferred[0].lockToken, "receiveDeferred locks it")
            try expect(token != message.lockToken, "with a fresh token")
            try await broker.complete(token)
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1), "the deferred message is completed")
        },

        ConformanceCase(name: "deferral.receiveDeferredOfNonDeferredThrows", guarantee: "§4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let active = try await broker.sendTexts(["active"], to: queuePath)[0]
            try await expectUnchanged(broker, [queuePath], "receiveDeferred of non-deferred messages") {
                try await expectError(.messageNotFound, "receiveDeferred of an active message") {
                    try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [active])
                }
                try await expectError(.messageNotFound, "receiveDeferred of an unknown sequence number") {
                    try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [999])
                }
            }
        },

        ConformanceCase(name: "deferral.deferredLockExpiresBackToDeferred", guarantee: "§4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(5)))
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            try await broker.defer(try expectNotNil(message.lockToken, "lock token"))
            let first = try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [message.sequenceNumber])
            context.clock.advance(by: .seconds(5))
            try await expectNothing(broker, from: queuePath, "a deferred message whose lock expired stays deferred")
            try await expectError(.lockLost, "its old token") { try await broker.complete(try expectNotNil(first.first?.lockToken, "")) }
            let second = try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [message.sequenceNumber])
            try await broker.complete(try expectNotNil(second.first?.lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(), "completed")
        },

        ConformanceCase(name: "deferral.exhaustedDeferredMessageIsDeadLettered", guarantee: "§4.4") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxDeliveryCount: 2))
            let numbers = try await broker.sendTexts(["spent", "fresh"], to: queuePath)
            for message in try await broker.receiveNow(from: queuePath) {
                try await broker.defer(try expectNotNil(message.lockToken, "lock token"))
            }
            // "spent" has been delivered twice (once by receive, once by number): the maximum.
            let again = try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [numbers[0]])
            try expectEqual(again.map(\.deliveryCount), [2], "the second delivery")
            try await broker.defer(try expectNotNil(again.first?.lockToken, "lock token"))
            try await expectError(.messageNotFound, "a sequence number asked for twice") {
                try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [numbers[1], numbers[1]])
            }
            // A third lock would exceed maxDeliveryCount: the message goes to the dead-letter queue instead.
            let third = try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [numbers[0], numbers[1]])
            try expectEqual(third.map(\.sequenceNumber), [numbers[1]], "only the message with deliveries left is received")
            try expectEqual(third.map(\.deliveryCount), [2], "its count")
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1, deadLettered: 1), "one locked, one dead-lettered")
            let dead = try await broker.receiveNow(from: queuePath.deadLetter)
            try expectEqual(dead.map(\.sequenceNumber), [numbers[0]], "the dead-letter queue holds it")
            try expectEqual(dead.first?.deadLetterReason, DeadLetterReason.maxDeliveryCountExceeded, "its reason")
            try expectEqual(dead.first?.deliveryCount, 3, "its count: two deliveries, and one from the dead-letter queue")
        },
    ]
}
