import Foundation
import HeraldCore

// GUARANTEES.md §6: what an operator does to a store (options updates, purges, bulk jobs on dead
// letters), on every store.

/// The broker of `context` as a ``HeraldCore/ManageableBroker``; every store must be one.
func manageable(_ broker: any MessageBroker) throws -> any ManageableBroker {
    guard let broker = broker as? any ManageableBroker else {
        throw ConformanceFailure("the broker under test is not a ManageableBroker (GUARANTEES.md §6)")
    }
    return broker
}

/// Waits (in real time, at most 30 s) until the job has finished.
private func finished(_ broker: any ManageableBroker, _ job: BulkJob) async throws -> BulkJob {
    try await withRealTimeLimit(.seconds(30), "bulk job \(job.id) (\(job.action))") {
        try await broker.waitForBulkJob(job.id, interval: .milliseconds(5))
    }
}

/// Sends `texts` to ``queuePath`` and dead-letters each with the reason the text's first letter names.
private func deadLetters(_ broker: any MessageBroker, _ texts: [String], reason: (String) -> String = { _ in "Bad" }) async throws -> [Int64] {
    let numbers = try await broker.sendTexts(texts, to: queuePath)
    for message in try await broker.receiveNow(from: queuePath, maxCount: texts.count) {
        try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: reason(message.text), description: nil)
    }
    try await expectCounts(broker, queuePath, EntityCounts(deadLettered: texts.count), "set-up: every message dead-lettered")
    return numbers
}

extension BrokerConformance {
    static let managementCases: [ConformanceCase] = [
        ConformanceCase(name: "management.updateOptions", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(60)))
            let options = try await broker.updateOptions(
                of: queuePath, EntityOptionsChange(lockDuration: .seconds(10), maxDeliveryCount: 3, defaultTimeToLive: .seconds(3600)))
            var expected = EntityOptions(lockDuration: .seconds(10), maxDeliveryCount: 3, defaultTimeToLive: .seconds(3600))
            try expectEqual(options, expected, "the options in force")
            try expectEqual(try await broker.listQueues().first?.options, expected, "the listed options")
            // A lock taken after the change lasts the new duration.
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            try expectSameMillisecond(message.lockedUntil, adding(.seconds(10), to: context.clock.now()), "a lock of the new duration")
            try expectSameMillisecond(message.expiresAt, adding(.seconds(3600), to: context.clock.now()), "the new default time-to-live")
            context.clock.advance(by: .seconds(10))
            try await expectError(.lockLost, "the lock expired after the new duration") { try await broker.complete(try expectNotNil(message.lockToken, "")) }
            // Clearing an optional option, and a change that leaves the others alone.
            expected.defaultTimeToLive = nil
            try expectEqual(try await broker.updateOptions(of: queuePath, EntityOptionsChange(defaultTimeToLive: .some(nil))), expected, "TTL removed")
            try expectEqual(try await broker.updateOptions(of: queuePath, EntityOptionsChange()), expected, "an empty change")
        },

        ConformanceCase(name: "management.updatedOptionsSurviveRestart", guarantee: "§6, §4.1", requires: [.durableStorage]) { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(60)))
            let expected = try await broker.updateOptions(of: queuePath, EntityOptionsChange(lockDuration: .seconds(10), maxDeliveryCount: 3))
            let reopened = try manageable(try await context.reopen())
            try expectEqual(try await reopened.listQueues().first?.options, expected, "the options after a restart")
        },

        ConformanceCase(name: "management.updateOptionsRefused", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            try await expectUnchanged(broker, [queuePath], "refused changes") {
                try await expectError(.invalidOption, "a lock duration past 5 minutes") {
                    try await broker.updateOptions(of: queuePath, EntityOptionsChange(lockDuration: .seconds(301)))
                }
                try await expectError(.invalidOption, "requiresSession cannot change") {
                    try await broker.updateOptions(of: queuePath, EntityOptionsChange(maxDeliveryCount: 5, requiresSession: true))
                }
                try await expectError(.invalidOption, "parking needs sessions") {
                    try await broker.updateOptions(of: queuePath, EntityOptionsChange(parkSessionOnDeadLetter: true))
                }
                try await expectError(.entityNotFound, "no such queue") {
                    try await broker.updateOptions(of: .queue("nowhere"), EntityOptionsChange(maxDeliveryCount: 5))
                }
                try await expectError(.entityNotFound, "a queue's name as a topic") {
                    try await broker.updateOptions(of: .topic(queueName), EntityOptionsChange(maxDeliveryCount: 5))
                }
                try await expectError(.invalidName, "a bad name") {
                    try await broker.updateOptions(of: .queue("not a name"), EntityOptionsChange(maxDeliveryCount: 5))
                }
            }
            // Stating the session option as it is is no change.
            let options = try await broker.updateOptions(of: queuePath, EntityOptionsChange(maxDeliveryCount: 5, requiresSession: false))
            try expectEqual(options.maxDeliveryCount, 5, "the change applied")
        },

        ConformanceCase(name: "management.updateTopicAndSubscription", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            let subscription = EntityPath.subscription("audit", of: "events")
            _ = try await broker.updateOptions(of: .topic("events"), EntityOptionsChange(maxMessageSize: 10))
            _ = try await broker.updateOptions(of: subscription, EntityOptionsChange(maxDeliveryCount: 1))
            try expectEqual(try await broker.listTopics().first?.options.maxMessageSize, 10, "the topic's new size limit")
            try expectEqual(try await broker.listSubscriptions(topic: "events").first?.options.maxDeliveryCount, 1, "the subscription's new maximum")
            try await expectError(.messageTooLarge, "a send checked against the new limit") {
                try await broker.send(Message(body: body(size: 11)), to: .topic("events"))
            }
            try await broker.send(Message(body: body(size: 10)), to: .topic("events"))
            let first = try await receiveOne(broker, from: subscription)
            try await broker.abandon(try expectNotNil(first.lockToken, "lock token"))
            try await expectNothing(broker, from: subscription, "the second delivery passes the new maximum")
            try await expectCounts(broker, subscription, EntityCounts(deadLettered: 1), "dead-lettered at its next receive")
        },

        ConformanceCase(name: "management.loweredMaxDeliveryCount", guarantee: "§6, §4.4") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            for _ in 0..<2 { try await broker.abandon(try expectNotNil(try await receiveOne(broker, from: queuePath).lockToken, "lock token")) }
            _ = try await broker.updateOptions(of: queuePath, EntityOptionsChange(maxDeliveryCount: 2))
            try await expectNothing(broker, from: queuePath, "a message delivered as often as the new maximum")
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(dead.map(\.deadLetterReason), [DeadLetterReason.maxDeliveryCountExceeded], "dead-lettered")
        },

        ConformanceCase(name: "management.duplicateWindowUpdated", guarantee: "§6, §4.5") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            try await broker.send(Message(messageId: "a", text: "1"), to: queuePath)
            _ = try await broker.updateOptions(of: queuePath, EntityOptionsChange(duplicateDetectionWindow: .seconds(60)))
            let second = try await broker.send(Message(messageId: "a", text: "2"), to: queuePath)
            try expectEqual(second.isDuplicate, false, "a message id sent before the window was on is not remembered")
            let third = try await broker.send(Message(messageId: "a", text: "3"), to: queuePath)
            try expectEqual(third, SendReceipt(sequenceNumber: second.sequenceNumber, isDuplicate: true), "remembered from then on")
            _ = try await broker.updateOptions(of: queuePath, EntityOptionsChange(duplicateDetectionWindow: .some(nil)))
            let fourth = try await broker.send(Message(messageId: "a", text: "4"), to: queuePath)
            try expectEqual(fourth.isDuplicate, false, "detection off")
            try expectEqual(try await broker.peekAll(queuePath).map(\.text), ["1", "2", "4"], "the messages enqueued")
        },

        ConformanceCase(name: "management.purge", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            let queue = try await populateQueue(broker, clock: context.clock)
            try await broker.sendTexts(["two", "three"], to: queuePath)
            try expectEqual(try await broker.purge(queuePath), 3, "the active messages purged")
            try await expectCounts(
                broker, queuePath, EntityCounts(locked: 1, scheduled: 1, deferred: 1, deadLettered: 1), "locked, scheduled, deferred and dead letters stay")
            try await broker.complete(try expectNotNil(queue.locked.lockToken, "lock token"))
            try expectEqual(try await broker.purge(queuePath), 0, "nothing waits")
            context.clock.advance(by: .seconds(30))
            try expectEqual(try await broker.purge(queuePath), 1, "a scheduled message whose time came is active")
            try expectEqual(try await broker.purge(queuePath.deadLetter), 1, "the dead letters")
            try await expectCounts(broker, queuePath, EntityCounts(deferred: 1), "the deferred message stays")
            try expectEqual(try await broker.peekAll(queuePath).map(\.sequenceNumber), [queue.deferred], "the deferred message")
            try await expectError(.invalidArgument, "a topic holds no messages") { try await broker.purge(.topic(queueName)) }
            try await expectError(.entityNotFound, "no such queue") { try await broker.purge(.queue("nowhere")) }
        },

        ConformanceCase(name: "management.purgeLeavesLockedDeadLetters", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            _ = try await deadLetters(broker, ["a", "b"])
            let locked = try await receiveOne(broker, from: queuePath.deadLetter)
            try expectEqual(try await broker.purge(queuePath.deadLetter), 1, "the dead letter nobody holds")
            try await broker.complete(try expectNotNil(locked.lockToken, "the held dead letter's lock survives"))
            try await expectCounts(broker, queuePath, EntityCounts(), "empty")
        },

        ConformanceCase(name: "management.lastSequenceNumber", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            try expectEqual(try await broker.lastSequenceNumber(of: queuePath), 0, "before the first message")
            let numbers = try await broker.sendTexts(["a", "b", "c"], to: queuePath)
            try expectEqual(try await broker.lastSequenceNumber(of: queuePath), numbers.last, "after three")
            try expectEqual(try await broker.lastSequenceNumber(of: queuePath.deadLetter), numbers.last, "the dead-letter queue shares it")
            try await expectError(.entityNotFound, "no such queue") { try await broker.lastSequenceNumber(of: .queue("nowhere")) }
        },

        ConformanceCase(name: "management.sessions", guarantee: "§6, §4.6, §4.12") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName, options: EntityOptions(requiresSession: true, parkSessionOnDeadLetter: true))
            try await broker.sendTexts(["a1", "a2"], to: queuePath, sessionId: "a")
            try await broker.sendTexts(["b1"], to: queuePath, sessionId: "b")
            try await broker.sendTexts(["c1", "c2"], to: queuePath, sessionId: "c")
            let held = try await broker.accept(queuePath, "a")
            try await broker.setSessionState(Data("xyz".utf8), for: held)
            let c = try await broker.accept(queuePath, "c")
            let poison = try await broker.receiveNow(from: c, maxCount: 1)
            try await broker.deadLetter(try expectNotNil(poison.first?.lockToken, "lock token"), reason: "Bad", description: nil)
            try await broker.releaseSession(c)
            let sessions = try await broker.sessions(of: queuePath, after: nil, maxCount: 100)
            try expectEqual(sessions.map(\.sessionId), ["a", "b", "c"], "every session, in id order")
            try expectEqual(sessions.map(\.messageCount), [2, 1, 1], "messages (the dead letter not counted)")
            try expectEqual(sessions.map(\.isLocked), [true, false, false], "a is held")
            try expectSameMillisecond(sessions[0].lockedUntil, held.lockedUntil, "held until")
            try expectEqual(sessions.map(\.isParked), [false, false, true], "c is parked by its dead letter")
            try expectEqual(sessions.map(\.stateSize), [3, nil, nil], "a has 3 bytes of state")
            try expectEqual(try await broker.sessions(of: queuePath, after: "a", maxCount: 1).map(\.sessionId), ["b"], "a page after a")
            try await broker.createQueue("plain")
            try await expectError(.sessionNotEnabled, "a queue without sessions") { try await broker.sessions(of: .queue("plain"), after: nil, maxCount: 10) }
            try await expectError(.invalidArgument, "a dead-letter queue has no sessions") {
                try await broker.sessions(of: queuePath.deadLetter, after: nil, maxCount: 10)
            }
            try await expectError(.invalidArgument, "a count out of range") { try await broker.sessions(of: queuePath, after: nil, maxCount: 0) }
        },

        ConformanceCase(name: "bulkJobs.resubmitAll", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            let numbers = try await deadLetters(broker, ["a", "b", "c", "d", "e"])
            let started = try await broker.startBulkJob(.resubmit, on: queuePath, selection: .all)
            try expectEqual(started.total, 5, "the selection")
            try expectEqual(started.entity, queuePath, "the job's entity")
            try expectEqual(started.action, .resubmit, "the job's action")
            let job = try await finished(broker, started)
            try expectEqual(job.state, .completed, "state")
            try expectEqual([job.processed, job.applied, job.notFound, job.failed], [5, 5, 0, 0], "processed, applied, not found, failed")
            try await expectCounts(broker, queuePath, EntityCounts(active: 5), "all back")
            let back = try await broker.peekAll(queuePath)
            try expectEqual(back.map(\.sequenceNumber), numbers, "with their sequence numbers")
            try expectEqual(back.map(\.deliveryCount), [0, 0, 0, 0, 0], "and delivery counts of zero")
            try expectEqual(try await broker.bulkJob(job.id), job, "the job as kept")
            try expect(try await broker.bulkJobs().contains(job), "the job is listed")
        },

        ConformanceCase(name: "bulkJobs.selection", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            try await broker.send(Message(body: Data("an Order for Ann".utf8), subject: "OrderPlaced"), to: queuePath)
            try await broker.send(
                Message(body: Data("a payment".utf8), subject: "PaymentTaken", applicationProperties: ["region": .string("eu")]), to: queuePath)
            context.clock.advance(by: .seconds(10))
            let later = context.clock.now()
            try await broker.send(
                Message(body: Data("another order".utf8), subject: "OrderPlaced", applicationProperties: ["region": .string("us")]), to: queuePath)
            for (index, message) in try await broker.receiveNow(from: queuePath, maxCount: 3).enumerated() {
                try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: index == 1 ? "Timeout" : "Poison", description: nil)
            }
            let dead = try await broker.peekAll(queuePath.deadLetter)
            func selected(_ filter: DeadLetterFilter) -> [Int64] { dead.filter(filter.matches).map(\.sequenceNumber) }
            try expectEqual(selected(DeadLetterFilter(reason: "Poison")), [dead[0].sequenceNumber, dead[2].sequenceNumber], "by reason")
            try expectEqual(selected(DeadLetterFilter(subject: "PaymentTaken")), [dead[1].sequenceNumber], "by subject")
            try expectEqual(selected(DeadLetterFilter(bodyContains: "ORDER")), [dead[0].sequenceNumber, dead[2].sequenceNumber], "by body text, any case")
            try expectEqual(selected(DeadLetterFilter(properties: ["region": .string("us")])), [dead[2].sequenceNumber], "by property")
            try expectEqual(selected(DeadLetterFilter(enqueuedFrom: later)), [dead[2].sequenceNumber], "from a time")
            try expectEqual(selected(DeadLetterFilter(enqueuedBefore: later)), [dead[0].sequenceNumber, dead[1].sequenceNumber], "before a time")
            try expectEqual(selected(DeadLetterFilter(reason: "Poison", subject: "PaymentTaken")), [], "every condition holds")

            let job = try await finished(
                broker, try await broker.startBulkJob(.purge, on: queuePath, selection: .matching(DeadLetterFilter(reason: "Poison", bodyContains: "order"))))
            try expectEqual([job.total, job.applied], [2, 2], "the two poison orders purged")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter).map(\.sequenceNumber), [dead[1].sequenceNumber], "the other stays")

            let named = try await finished(
                broker,
                try await broker.startBulkJob(.resubmit, on: queuePath, selection: .sequenceNumbers([dead[1].sequenceNumber, 999, dead[1].sequenceNumber])))
            try expectEqual(
                [named.total, named.applied, named.notFound], [2, 1, 1], "a number named twice counts once; one that is no dead letter is not found")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "resubmitted")
            let empty = try await broker.startBulkJob(.purge, on: queuePath, selection: .all)
            try expectEqual([empty.state.rawValue, "\(empty.total)"], ["completed", "0"], "an empty selection completes at once")
        },

        ConformanceCase(name: "bulkJobs.move", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            try await broker.createQueue("other", options: EntityOptions(duplicateDetectionWindow: .seconds(60)))
            try await broker.createQueue("sessions", options: EntityOptions(requiresSession: true))
            try await broker.createTopic("events")
            try await broker.createSubscription("all", topic: "events")
            try await broker.createSubscription("orders", topic: "events", filter: SubscriptionFilter(subject: "Order"))
            try await broker.send(Message(messageId: "x", body: Data("x".utf8)), to: .queue("other"))
            let sent = [
                Message(messageId: "x", body: Data("x".utf8), subject: "Order", applicationProperties: ["k": .int(1)]),
                Message(messageId: "y", body: Data("y".utf8), sessionId: "s"),
            ]
            for message in sent { try await broker.send(message, to: queuePath) }
            for message in try await broker.receiveNow(from: queuePath) {
                try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: "Bad", description: nil)
            }
            let moved = try await finished(broker, try await broker.startBulkJob(.move(to: .queue("other")), on: queuePath, selection: .all))
            try expectEqual([moved.applied, moved.failed], [2, 0], "both moved")
            try await expectCounts(broker, queuePath, EntityCounts(), "the dead letters left")
            let arrived = try await broker.peekAll(.queue("other"))
            try expectEqual(arrived.map(\.message), [Message(messageId: "x", body: Data("x".utf8))] + sent, "moved whole, duplicate detection bypassed")
            try expectEqual(arrived.map(\.sequenceNumber), [1, 2, 3], "new sequence numbers")
            try expectEqual(arrived.map(\.deliveryCount), [0, 0, 0], "delivery counts of zero")
            try expectEqual(arrived.map(\.deadLetterReason), [nil, nil, nil], "no dead-letter reason")

            // Back to dead letters, then to a session queue (one has no session) and to a topic.
            for message in try await broker.receiveNow(from: .queue("other")) {
                try await broker.deadLetter(try expectNotNil(message.lockToken, "lock token"), reason: "Again", description: nil)
            }
            let refused = try await finished(broker, try await broker.startBulkJob(.move(to: .queue("sessions")), on: .queue("other"), selection: .all))
            try expectEqual([refused.applied, refused.failed], [1, 2], "messages without a session id are refused")
            try expect(refused.failure?.isEmpty == false, "the refusal is told: \(refused.failure ?? "none")")
            try expectEqual(try await broker.peekAll(.queue("sessions")).map(\.message.sessionId), ["s"], "the session message moved")
            let fanned = try await finished(broker, try await broker.startBulkJob(.move(to: .topic("events")), on: .queue("other"), selection: .all))
            try expectEqual([fanned.applied, fanned.failed], [2, 0], "both moved to the topic")
            try expectEqual(try await broker.peekAll(.subscription("all", of: "events")).count, 2, "copied to every matching subscription")
            try expectEqual(try await broker.peekAll(.subscription("orders", of: "events")).map(\.message.subject), ["Order"], "filters apply")
            try await expectCounts(broker, .queue("other"), EntityCounts(), "nothing left behind")
        },

        ConformanceCase(name: "bulkJobs.refused", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            try await broker.createTopic("events")
            try await expectError(.invalidArgument, "a topic has no dead letters") {
                try await broker.startBulkJob(.resubmit, on: .topic("events"), selection: .all)
            }
            try await expectError(.invalidArgument, "name the queue, not its dead-letter queue") {
                try await broker.startBulkJob(.resubmit, on: queuePath.deadLetter, selection: .all)
            }
            try await expectError(.entityNotFound, "no such queue") { try await broker.startBulkJob(.purge, on: .queue("nowhere"), selection: .all) }
            try await expectError(.entityNotFound, "no such target") {
                try await broker.startBulkJob(.move(to: .queue("nowhere")), on: queuePath, selection: .all)
            }
            try await expectError(.invalidArgument, "a move goes to a queue or topic") {
                try await broker.startBulkJob(.move(to: queuePath.deadLetter), on: queuePath, selection: .all)
            }
            try await expectError(.jobNotFound, "no such job") { try await broker.bulkJob("nope") }
            try await expectError(.jobNotFound, "no such job to cancel") { try await broker.cancelBulkJob("nope") }
        },

        ConformanceCase(name: "bulkJobs.actOnHeldDeadLetters", guarantee: "§6, §4.3") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            let numbers = try await deadLetters(broker, ["a"])
            let held = try await receiveOne(broker, from: queuePath.deadLetter, "a receiver of the dead-letter queue holds it")
            let job = try await finished(broker, try await broker.startBulkJob(.resubmit, on: queuePath, selection: .all))
            try expectEqual(job.applied, 1, "resubmitted although held")
            try expectEqual(try await broker.peekAll(queuePath).map(\.sequenceNumber), numbers, "back in the queue")
            try await expectError(.lockLost, "the holder's lock is lost") { try await broker.complete(try expectNotNil(held.lockToken, "lock token")) }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "once")
        },

        ConformanceCase(name: "bulkJobs.frozenSelection", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            _ = try await deadLetters(broker, ["a", "b"])
            let started = try await broker.startBulkJob(.purge, on: queuePath, selection: .all)
            try await broker.sendTexts(["late"], to: queuePath)
            try await broker.deadLetter(
                try expectNotNil(try await receiveOne(broker, from: queuePath).lockToken, "lock token"), reason: "Late", description: nil)
            let job = try await finished(broker, started)
            try expectEqual([job.total, job.applied], [2, 2], "the two selected")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter).map(\.deadLetterReason), ["Late"], "the dead letter that came after stays")
        },

        ConformanceCase(name: "bulkJobs.cancelAndEntityDeleted", guarantee: "§6") { context in
            let broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            _ = try await deadLetters(broker, (0..<50).map { "m\($0)" })
            let cancelled = try await broker.cancelBulkJob(try await broker.startBulkJob(.purge, on: queuePath, selection: .all).id)
            try expect(cancelled.state == .cancelled || cancelled.state == .completed, "cancelled, unless it finished first: \(cancelled.state)")
            let settled = try await finished(broker, cancelled)
            try expectEqual(settled, try await broker.cancelBulkJob(settled.id), "cancelling a finished job changes nothing")
            let left = try await broker.counts(of: queuePath).deadLettered
            try expectEqual(settled.applied + left, 50, "what it purged and what stays add up")

            try await broker.createQueue("doomed")
            try await broker.sendTexts(["a"], to: .queue("doomed"))
            try await broker.deadLetter(
                try expectNotNil(try await receiveOne(broker, from: .queue("doomed")).lockToken, "lock token"), reason: "Bad", description: nil)
            try await broker.createQueue("target")
            let moving = try await broker.startBulkJob(.move(to: .queue("target")), on: .queue("doomed"), selection: .all)
            try await broker.deleteQueue("target")
            let job = try await finished(broker, moving)
            try expect(job.state == .failed || job.state == .completed, "failed once its target was gone, unless it finished first: \(job.state)")
            if job.state == .failed {
                try expect(job.failure?.contains("target") == true, "the reason names the target: \(job.failure ?? "none")")
                try await expectCounts(broker, .queue("doomed"), EntityCounts(deadLettered: 1), "the dead letter stays")
            }
        },

        ConformanceCase(name: "bulkJobs.resumedAfterRestart", guarantee: "§6, §4.1", requires: [.durableStorage]) { context in
            var broker = try manageable(context.broker)
            try await broker.createQueue(queueName)
            let numbers = try await deadLetters(broker, (0..<300).map { "m\($0)" })
            let started = try await broker.startBulkJob(.resubmit, on: queuePath, selection: .all)
            broker = try manageable(try await context.reopen())
            let job = try await finished(broker, started)
            try expectEqual(job.state, .completed, "resumed and completed")
            try expectEqual([job.total, job.processed, job.applied], [300, 300, 300], "every dead letter once")
            try expectEqual(try await broker.peekAll(queuePath).map(\.sequenceNumber), numbers, "all back, none twice")
            try await expectCounts(broker, queuePath, EntityCounts(active: 300), "and no dead letter left")
        },
    ]
}
