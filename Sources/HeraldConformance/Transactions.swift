import Foundation
import HeraldCore

// GUARANTEES.md §4.8: completing a received message, sending new ones, writing documents, recording
// the inbox and appending events commit together, or not at all; §5: the event store's
// optimistic concurrency and its outbox (events published in the same commit as their append).

/// The broker of `context` as a ``HeraldCore/TransactionalBroker``; every store must be one.
private func transactional(_ context: ConformanceContext) throws -> any TransactionalBroker {
    guard let broker = context.broker as? any TransactionalBroker else {
        throw ConformanceFailure("the broker under test is not a TransactionalBroker (GUARANTEES.md §4.8)")
    }
    return broker
}

private let outbox = EntityPath.queue("out")

extension BrokerConformance {
    static let transactionCases: [ConformanceCase] = [
        ConformanceCase(name: "transactions.sendViaCommitsTogether", guarantee: "§4.8") { context in
            let broker = try transactional(context)
            try await broker.createQueue(queueName)
            try await broker.createQueue("out")
            try await broker.sendTexts(["in"], to: queuePath)
            let received = try await receiveOne(broker, from: queuePath)
            var transaction = BrokerTransaction()
            transaction.complete(received.lockToken!)
            transaction.send(Message(text: "out-1"), to: outbox)
            transaction.send(Message(text: "out-2"), to: outbox)
            transaction.write(Data("state".utf8), collection: "orders", key: "o1", expectedVersion: 0)
            transaction.recordInbox(handler: "h", messageId: received.message.messageId)
            let receipt = try await broker.commit(transaction)
            try expectEqual(receipt.sends.map(\.sequenceNumber), [1, 2], "the sends' sequence numbers")
            try await expectCounts(broker, queuePath, EntityCounts(), "the received message was completed")
            try expectEqual(try await broker.peekAll(outbox).map(\.text), ["out-1", "out-2"], "the messages sent with it")
            try expectEqual(try await broker.document("o1", in: "orders"), VersionedDocument(data: Data("state".utf8), version: 1), "the document")
            try expect(try await broker.inboxContains(InboxEntry(handler: "h", messageId: received.message.messageId)), "the inbox entry")
        },

        ConformanceCase(name: "transactions.lostLockUndoesEverything", guarantee: "§4.8, §4.3") { context in
            let broker = try transactional(context)
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(5)))
            try await broker.createQueue("out")
            try await broker.sendTexts(["in"], to: queuePath)
            let received = try await receiveOne(broker, from: queuePath)
            context.clock.advance(by: .seconds(5))
            var transaction = BrokerTransaction()
            transaction.send(Message(text: "out"), to: outbox)
            transaction.write(Data("state".utf8), collection: "orders", key: "o1", expectedVersion: 0)
            transaction.recordInbox(handler: "h", messageId: "m")
            transaction.append([EventData(type: "E", data: Data())], to: "s", expectedVersion: .noStream, publishTo: outbox)
            transaction.complete(received.lockToken!)
            try await expectError(.lockLost, "a transaction completing with an expired lock") { try await broker.commit(transaction) }
            try await expectCounts(broker, outbox, EntityCounts(), "nothing was sent")
            try expect(try await broker.document("o1", in: "orders") == nil, "no document was written")
            try expect(!(try await broker.inboxContains(InboxEntry(handler: "h", messageId: "m"))), "no inbox entry was recorded")
            try expectEqual(try await broker.readStream("s", from: 1, maxCount: 10).count, 0, "no event was appended")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "the received message is visible again")
        },

        ConformanceCase(name: "transactions.inboxRejectsSecondHandling", guarantee: "§4.8, §5 idempotent handlers") { context in
            let broker = try transactional(context)
            var first = BrokerTransaction()
            first.recordInbox(handler: "h", messageId: "m1")
            first.write(Data("1".utf8), collection: "c", key: "k", expectedVersion: 0)
            _ = try await broker.commit(first)
            var second = BrokerTransaction()
            second.recordInbox(handler: "h", messageId: "m1")
            second.write(Data("2".utf8), collection: "c", key: "k", expectedVersion: 1)
            try await expectError(.alreadyProcessed, "handling m1 a second time") { try await broker.commit(second) }
            try expectEqual(try await broker.document("k", in: "c")?.data, Data("1".utf8), "the second handling had no effect")
            var other = BrokerTransaction()
            other.recordInbox(handler: "other", messageId: "m1")
            _ = try await broker.commit(other)
            try expect(try await broker.inboxContains(InboxEntry(handler: "other", messageId: "m1")), "another handler may handle m1")
        },

        ConformanceCase(name: "transactions.inboxEntriesOfABatch", guarantee: "§4.8, §5 idempotent handlers") { context in
            let broker = try transactional(context)
            var handled = BrokerTransaction()
            handled.recordInbox(handler: "h", messageId: "m1")
            handled.recordInbox(handler: "h", messageId: "m3")
            _ = try await broker.commit(handled)
            let asked = [("h", "m1"), ("h", "m2"), ("h", "m3"), ("other", "m1")].map { InboxEntry(handler: $0.0, messageId: $0.1) }
            try expectEqual(
                try await broker.inboxEntries(among: asked), [InboxEntry(handler: "h", messageId: "m1"), InboxEntry(handler: "h", messageId: "m3")],
                "the entries the inbox holds")
            try expectEqual(try await broker.inboxEntries(among: []), [], "none asked")
            try await expectError(.identifierTooLong, "an empty message id") {
                _ = try await broker.inboxEntries(among: [InboxEntry(handler: "h", messageId: "")])
            }
        },

        ConformanceCase(name: "transactions.documentVersions", guarantee: "§4.8 optimistic concurrency") { context in
            let broker = try transactional(context)
            var create = BrokerTransaction()
            create.write(Data("a".utf8), collection: "c", key: "k", expectedVersion: 0)
            _ = try await broker.commit(create)
            try await expectError(.concurrencyConflict, "creating it again") { try await broker.commit(create) }
            var update = BrokerTransaction()
            update.write(Data("b".utf8), collection: "c", key: "k", expectedVersion: 1)
            _ = try await broker.commit(update)
            try await expectError(.concurrencyConflict, "a stale update") { try await broker.commit(update) }
            try expectEqual(try await broker.document("k", in: "c"), VersionedDocument(data: Data("b".utf8), version: 2), "the document")
            try expectEqual(try await broker.documents(in: "c").keys.sorted(), ["k"], "the collection")
            var delete = BrokerTransaction()
            delete.delete(collection: "c", key: "k", expectedVersion: 2)
            _ = try await broker.commit(delete)
            try expect(try await broker.document("k", in: "c") == nil, "the document was deleted")
        },

        ConformanceCase(name: "transactions.documentVersionsAtTheEdges", guarantee: "§4.8 optimistic concurrency") { context in
            let broker = try transactional(context)
            var deleteAbsent = BrokerTransaction()
            deleteAbsent.delete(collection: "c", key: "k", expectedVersion: 0)
            _ = try await broker.commit(deleteAbsent)
            var updateAbsent = BrokerTransaction()
            updateAbsent.write(Data("a".utf8), collection: "c", key: "k", expectedVersion: 1)
            try await expectError(.concurrencyConflict, "an update of a document that does not exist") { try await broker.commit(updateAbsent) }
            try expect(try await broker.document("k", in: "c") == nil, "the failed update created nothing")
            var twice = BrokerTransaction()
            twice.write(Data("a".utf8), collection: "c", key: "k", expectedVersion: 0)
            twice.write(Data("b".utf8), collection: "c", key: "k", expectedVersion: 1)
            _ = try await broker.commit(twice)
            try expectEqual(try await broker.document("k", in: "c"), VersionedDocument(data: Data("b".utf8), version: 2), "two writes in one commit")
            var staleDelete = BrokerTransaction()
            staleDelete.delete(collection: "c", key: "k", expectedVersion: 1)
            try await expectError(.concurrencyConflict, "a delete at a stale version") { try await broker.commit(staleDelete) }
            try await expectError(.concurrencyConflict, "deleting, as absent, a document that exists") { try await broker.commit(deleteAbsent) }
            var conflicting = BrokerTransaction()
            conflicting.write(Data("other".utf8), collection: "c", key: "other", expectedVersion: 0)
            conflicting.write(Data("c".utf8), collection: "c", key: "k", expectedVersion: 1)
            try await expectError(.concurrencyConflict, "a commit with one stale write") { try await broker.commit(conflicting) }
            try expect(try await broker.document("other", in: "c") == nil, "nothing of a conflicting commit is applied")
            try expectEqual(try await broker.document("k", in: "c"), VersionedDocument(data: Data("b".utf8), version: 2), "the document after the conflicts")
        },

        ConformanceCase(name: "transactions.appendPublishesInTheSameCommit", guarantee: "§4.8, §5 event store and outbox") { context in
            let broker = try transactional(context)
            try await broker.createTopic("events")
            try await broker.createSubscription("all", topic: "events")
            let subscription = EntityPath.subscription("all", of: "events")
            var append = BrokerTransaction()
            append.append(
                [EventData(type: "OrderPlaced", data: Data("1".utf8), correlationId: "c"), EventData(type: "OrderPaid", data: Data("2".utf8))],
                to: "order-1", expectedVersion: .noStream, publishTo: .topic("events")
            )
            let receipt = try await broker.commit(append)
            try expectEqual(receipt.streamVersions, ["order-1": 2], "the stream's version")
            let published = try await broker.peekAll(subscription)
            try expectEqual(published.map(\.message.messageId), ["order-1@1", "order-1@2"], "published message ids (stream@version)")
            try expectEqual(published.map(\.message.subject), ["OrderPlaced", "OrderPaid"], "published subjects (event types)")
            try expectEqual(published.first?.message.correlationId, "c", "the correlation id travels")
            let stored = try await broker.readStream("order-1", from: 1, maxCount: 10)
            try expectEqual(stored.map(\.version), [1, 2], "stored versions")
            try expectEqual(stored.map(\.event.type), ["OrderPlaced", "OrderPaid"], "stored types")

            // A conflicting append stores nothing and publishes nothing.
            try await expectError(.concurrencyConflict, "an append to a stream that exists, expecting none") { try await broker.commit(append) }
            var stale = BrokerTransaction()
            stale.append([EventData(type: "X", data: Data())], to: "order-1", expectedVersion: .exactly(1), publishTo: .topic("events"))
            try await expectError(.concurrencyConflict, "an append at a stale version") { try await broker.commit(stale) }
            try expectEqual(try await broker.peekAll(subscription).count, 2, "nothing more was published")

            var next = BrokerTransaction()
            next.append([EventData(type: "OrderShipped", data: Data())], to: "order-1", expectedVersion: .exactly(2), publishTo: .topic("events"))
            next.append([EventData(type: "Other", data: Data())], to: "order-2", expectedVersion: .any)
            _ = try await broker.commit(next)
            let all = try await broker.readAll(from: 1, maxCount: 10)
            try expectEqual(all.map(\.stream), ["order-1", "order-1", "order-1", "order-2"], "readAll in position order")
            try expect(zip(all, all.dropFirst()).allSatisfy { $0.position < $1.position }, "positions strictly increase")
            try expectEqual(try await broker.readAll(from: all[2].position, maxCount: 10).count, 2, "readAll from a position")
            try expectEqual(try await broker.peekAll(subscription).count, 3, "only the append with a topic was published")
        },

        ConformanceCase(name: "transactions.republishedEventIsAbsorbed", guarantee: "§5 one id scheme") { context in
            let broker = try transactional(context)
            try await broker.createTopic("events", options: EntityOptions(duplicateDetectionWindow: .seconds(600)))
            try await broker.createSubscription("all", topic: "events")
            var append = BrokerTransaction()
            append.append([EventData(type: "E", data: Data())], to: "s", expectedVersion: .noStream, publishTo: .topic("events"))
            _ = try await broker.commit(append)
            let again = try await broker.send(Message(messageId: RecordedEvent.messageId(stream: "s", version: 1), text: ""), to: .topic("events"))
            try expect(again.isDuplicate, "re-publishing s@1 is a duplicate")
            try expectEqual(try await broker.peekAll(.subscription("all", of: "events")).count, 1, "one copy in the subscription")
        },

        ConformanceCase(name: "transactions.deferDeadLetterAndCancelByMessageId", guarantee: "§4.8, §4.7") { context in
            let broker = try transactional(context)
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["held", "poison"], to: queuePath)
            let scheduled = try await broker.schedule(
                Message(messageId: "timeout-1", text: "t"), at: adding(.seconds(60), to: context.clock.now()), to: queuePath)
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.text), ["held", "poison"], "received")
            var transaction = BrokerTransaction()
            transaction.defer(received[0].lockToken!)
            transaction.deadLetter(received[1].lockToken!, reason: "Poison", description: "bad")
            transaction.cancelScheduled(messageId: "timeout-1", in: queuePath)
            transaction.cancelScheduled(messageId: "never-scheduled", in: queuePath)
            _ = try await broker.commit(transaction)
            try await expectCounts(broker, queuePath, EntityCounts(deferred: 1, deadLettered: 1), "after the transaction")
            let deferred = try await broker.receiveDeferred(from: queuePath, sequenceNumbers: [received[0].sequenceNumber])
            try expectEqual(deferred.map(\.text), ["held"], "the deferred message")
            let dead = try await broker.peekAll(queuePath.deadLetter)
            try expectEqual(dead.first?.deadLetterReason, "Poison", "the dead letter's reason")
            try expect(!(try await broker.peekAll(queuePath).contains { $0.sequenceNumber == scheduled }), "the timeout was cancelled")
        },

        ConformanceCase(name: "transactions.cancelThroughATopic", guarantee: "§4.8, §4.7") { context in
            let broker = try transactional(context)
            let topic = EntityPath.topic("timeouts")
            let one = EntityPath.subscription("one", of: topic.name)
            let two = EntityPath.subscription("two", of: topic.name)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(one.name, topic: topic.name)
            try await broker.createSubscription(two.name, topic: topic.name)
            let time = adding(.seconds(60), to: context.clock.now())
            _ = try await broker.schedule(Message(messageId: "timeout-1", text: "t1"), at: time, to: topic)
            let second = try await broker.schedule(Message(messageId: "timeout-2", text: "t2"), at: time, to: topic)
            _ = try await broker.schedule(Message(messageId: "timeout-3", text: "t3"), at: time, to: topic)
            // By message id (a process manager's timeout) and by the topic's sequence number.
            var transaction = BrokerTransaction()
            transaction.cancelScheduled(messageId: "timeout-1", in: topic)
            transaction.cancelScheduled(second, in: topic)
            _ = try await broker.commit(transaction)
            for subscription in [one, two] {
                try expectEqual(try await broker.peekAll(subscription).map(\.text), ["t3"], "\(subscription) keeps the timeout not cancelled")
            }
            // A sequence number no longer scheduled fails the whole transaction.
            var refused = BrokerTransaction()
            refused.cancelScheduled(messageId: "timeout-3", in: topic)
            refused.cancelScheduled(second, in: topic)
            try await expectUnchanged(broker, [one, two], "a transaction cancelling a cancelled message") {
                try await expectError(.messageNotFound, "cancelling a cancelled message in a transaction") { try await broker.commit(refused) }
            }
        },

        ConformanceCase(name: "transactions.limit", guarantee: "§4 limits, transaction ≤ 100") { context in
            let broker = try transactional(context)
            try await broker.createQueue("out")
            var transaction = BrokerTransaction()
            for index in 1...100 { transaction.send(Message(text: "\(index)"), to: outbox) }
            _ = try await broker.commit(transaction)
            transaction.send(Message(text: "101"), to: outbox)
            try await expectUnchanged(broker, [outbox], "a transaction of 101 messages") {
                try await expectError(.batchTooLarge, "a transaction of 101 messages") { try await broker.commit(transaction) }
            }
        },

        ConformanceCase(name: "transactions.stateNamesAreCheckedOnReadsToo", guarantee: "bad input gets a typed error") { context in
            let broker = try transactional(context)
            let long = String(repeating: "k", count: 257)
            try await expectError(.identifierTooLong, "a document key of 257 bytes") { _ = try await broker.document(long, in: "c") }
            try await expectError(.identifierTooLong, "an empty collection") { _ = try await broker.documents(in: "") }
            try await expectError(.identifierTooLong, "an inbox message id of 257 bytes") {
                _ = try await broker.inboxContains(InboxEntry(handler: "h", messageId: long))
            }
            try await expectError(.identifierTooLong, "an empty handler") { _ = try await broker.inboxContains(InboxEntry(handler: "", messageId: "m")) }
            try await expectError(.identifierTooLong, "an empty stream") { _ = try await broker.readStream("", from: 1, maxCount: 10) }
            let longest = String(repeating: "k", count: 256)
            try expect(try await broker.document(longest, in: "c") == nil, "a key of 256 bytes is a valid name")
        },

        ConformanceCase(name: "transactions.surviveRestart", guarantee: "§4.8, §4.2", requires: [.durableStorage]) { context in
            let broker = try transactional(context)
            var transaction = BrokerTransaction()
            transaction.write(Data("d".utf8), collection: "c", key: "k", expectedVersion: 0)
            transaction.recordInbox(handler: "h", messageId: "m")
            transaction.append([EventData(type: "E", data: Data("e".utf8))], to: "s", expectedVersion: .noStream)
            _ = try await broker.commit(transaction)
            guard let reopened = try await context.reopen() as? any TransactionalBroker else {
                throw ConformanceFailure("the reopened broker is not a TransactionalBroker")
            }
            try expectEqual(try await reopened.document("k", in: "c")?.version, 1, "the document after a restart")
            try expect(try await reopened.inboxContains(InboxEntry(handler: "h", messageId: "m")), "the inbox after a restart")
            try expectEqual(try await reopened.readStream("s", from: 1, maxCount: 10).map(\.event.data), [Data("e".utf8)], "the stream after a restart")
            var next = BrokerTransaction()
            next.append([EventData(type: "E", data: Data())], to: "s2", expectedVersion: .noStream)
            _ = try await reopened.commit(next)
            let positions = try await reopened.readAll(from: 1, maxCount: 10).map(\.position)
            try expect(positions.count == 2 && positions[0] < positions[1], "positions go on after a restart: \(positions)")
        },
    ]
}
