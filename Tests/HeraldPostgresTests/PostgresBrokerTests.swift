import Foundation
import HeraldCore
import PostgresNIO
import Synchronization
import Testing

@testable import HeraldPostgres

/// What the conformance suite does not cover: several brokers on one schema.
@Suite("PostgresBrokerTests")
struct PostgresBrokerTests {
    /// Brokers that start at once on a new schema apply each migration exactly once.
    @Test func concurrentStartsMigrateOnce() async throws {
        try await SchemaFixture.with("mig", clients: 4) { fixture in
            let brokers = try (0..<4).map { try fixture.open(client: $0) }
            // Every broker serves once its migrations are in; each sees the others' queues.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, running) in brokers.enumerated() {
                    group.addTask { try await running.broker.createQueue("q\(index)") }
                }
                try await group.waitForAll()
            }
            for running in brokers {
                #expect(try await running.broker.listQueues().map(\.path.name) == ["q0", "q1", "q2", "q3"])
            }
            let rows = try await fixture.clients[0].client.query(PostgresQuery(unsafeSQL: "SELECT version FROM \"\(fixture.schema)\".herald_migrations"))
                .collect()
            #expect(try rows.map { try $0.decode(Int64.self) } == [1, 2, 3, 4, 5, 6, 7], "one row per migration")
            // A restart applies nothing.
            await brokers[0].close()
            let again = try fixture.open()
            #expect(try await again.broker.listQueues().count == 4)
        }
    }

    /// An options update on one broker reaches another broker of the schema (another process, as
    /// far as the database can tell), which had the entity cached: its notification makes the
    /// other broker read the entity again (GUARANTEES.md §6).
    @Test func optionsUpdatesReachOtherBrokers() async throws {
        try await SchemaFixture.with("opt", clients: 2) { fixture in
            let first = try fixture.open(client: 0)
            let second = try fixture.open(client: 1)
            try await first.broker.createQueue("q")
            // The second broker caches the queue with its first send, and listens.
            try await second.broker.send(Message(body: Data(count: 11)), to: .queue("q"))
            try await Task.sleep(for: .milliseconds(300))
            _ = try await first.broker.updateOptions(of: .queue("q"), EntityOptionsChange(maxMessageSize: 10))
            var refused = false
            let deadline = ContinuousClock.now + .seconds(10)
            while !refused && ContinuousClock.now < deadline {
                do {
                    try await second.broker.send(Message(body: Data(count: 11)), to: .queue("q"))
                    try await Task.sleep(for: .milliseconds(20))
                } catch let error as HeraldError where error.code == .messageTooLarge {
                    refused = true
                }
            }
            #expect(refused, "the second broker never applied the new size limit")
        }
    }

    /// A rule change on one broker applies to the very next send of another broker of the schema,
    /// which had cached the topic's subscriptions: the change bumps the topic row's generation,
    /// which every send reads under the row's lock.
    @Test func ruleChangesReachOtherBrokersAtTheirNextSend() async throws {
        try await SchemaFixture.with("rules", clients: 2) { fixture in
            let first = try fixture.open(client: 0)
            let second = try fixture.open(client: 1)
            let audit = EntityPath.subscription("audit", of: "events")
            try await first.broker.createTopic("events")
            try await first.broker.createSubscription("audit", topic: "events")
            try await second.broker.send(Message(messageId: "cached", body: Data()), to: .topic("events"))
            try await first.broker.removeRule(named: SubscriptionRule.defaultName, from: audit)
            try await second.broker.send(Message(messageId: "none", body: Data()), to: .topic("events"))
            try await first.broker.addRule(SubscriptionRule(name: "placed", filter: SubscriptionFilter(subject: "Placed")), to: audit)
            try await second.broker.send(Message(messageId: "placed", body: Data(), subject: "Placed"), to: .topic("events"))
            try await second.broker.send(Message(messageId: "other", body: Data(), subject: "Other"), to: .topic("events"))
            let received = try await second.broker.receive(from: audit, maxCount: 10, maxWaitTime: .zero)
            #expect(received.map(\.message.messageId) == ["cached", "placed"])
            #expect(try await second.broker.rules(of: audit).map(\.name) == ["placed"])
        }
    }

    /// A transaction that ends by publishing to a topic whose subscriptions the broker knows
    /// sends with one statement and commits right after it: every matching subscription gets its
    /// copies numbered in order, the completion commits with them, and a transaction whose send is
    /// refused changes nothing.
    @Test func aTransactionEndingWithAPublicationCommitsWithIt() async throws {
        try await SchemaFixture.with("publish") { fixture in
            let running = try fixture.open()
            let broker = running.broker
            try await broker.createQueue("in")
            try await broker.createTopic("events")
            try await broker.createSubscription("all", topic: "events")
            try await broker.createSubscription("placed", topic: "events", filter: SubscriptionFilter(subject: "Placed"))
            _ = try await broker.send([Message(messageId: "a", body: Data()), Message(messageId: "b", body: Data())], to: .queue("in"))
            let received = try await broker.receive(from: .queue("in"), maxCount: 2, maxWaitTime: .zero)
            #expect(received.count == 2)
            // The first publication reads the subscriptions; the next ones use what it read.
            try await broker.send(Message(messageId: "warm", body: Data(), subject: "Placed"), to: .topic("events"))

            var transaction = BrokerTransaction()
            transaction.complete(try #require(received[0].lockToken))
            for (id, subject) in [("p1", "Placed"), ("o1", "Other"), ("p2", "Placed")] {
                transaction.send(Message(messageId: id, body: Data(), subject: subject), to: .topic("events"))
            }
            let receipt = try await broker.commit(transaction)
            #expect(receipt.sends.map(\.sequenceNumber) == [2, 3, 4])
            let all = try await broker.receive(from: .subscription("all", of: "events"), maxCount: 10, maxWaitTime: .zero)
            #expect(all.map(\.message.messageId) == ["warm", "p1", "o1", "p2"])
            #expect(all.map(\.sequenceNumber) == [1, 2, 3, 4])
            let placed = try await broker.receive(from: .subscription("placed", of: "events"), maxCount: 10, maxWaitTime: .zero)
            #expect(placed.map(\.message.messageId) == ["warm", "p1", "p2"])
            #expect(placed.map(\.sequenceNumber) == [1, 2, 3])
            #expect(try await broker.counts(of: .queue("in")).locked == 1, "the completion committed with the publication")

            // A subscription that needs sessions refuses a message without one: nothing commits.
            try await broker.createSubscription("sessions", topic: "events", options: EntityOptions(requiresSession: true), filter: .all)
            try await broker.send(Message(messageId: "warm2", body: Data(), sessionId: "s"), to: .topic("events"))
            var refused = BrokerTransaction()
            refused.complete(try #require(received[1].lockToken))
            refused.send(Message(messageId: "no-session", body: Data()), to: .topic("events"))
            await #expect(throws: HeraldError.self) { try await broker.commit(refused) }
            let counts = try await broker.counts(of: .queue("in"))
            #expect(counts.locked == 1, "the refused transaction's completion was rolled back")
            #expect(try await broker.lastSequenceNumber(of: .topic("events")) == 5)

        }
    }

    /// A storage failure found before the commit stops the broker and commits nothing, also when
    /// the publication's statement would have committed its transaction by itself.
    @Test func aFailureBeforeTheCommitStopsAOneStatementPublication() async throws {
        try await SchemaFixture.with("failing") { fixture in
            let failing = Atomic<Bool>(false)
            let running = try fixture.open {
                $0._beforeCommit = {
                    if failing.load(ordering: .relaxed) { throw HeraldError(.storeFailed, "injected") }
                }
            }
            try await running.broker.createTopic("events")
            try await running.broker.createSubscription("all", topic: "events")
            try await running.broker.send(Message(messageId: "warm", body: Data()), to: .topic("events"))
            failing.store(true, ordering: .relaxed)
            var transaction = BrokerTransaction()
            transaction.send(Message(messageId: "lost", body: Data()), to: .topic("events"))
            let error = await #expect(throws: HeraldError.self) { try await running.broker.commit(transaction) }
            #expect(error?.code == .storeFailed)
            await running.close()

            let reader = try fixture.open()
            let received = try await reader.broker.receive(from: .subscription("all", of: "events"), maxCount: 10, maxWaitTime: .zero)
            #expect(received.map(\.message.messageId) == ["warm"])
        }
    }

    /// A topic with more subscriptions than one statement takes publishes through a statement
    /// per subscription: every one gets its copy.
    @Test func aPublicationToManySubscriptionsReachesEveryOne() async throws {
        try await SchemaFixture.with("many") { fixture in
            let running = try fixture.open()
            let broker = running.broker
            try await broker.createTopic("events")
            let names = (0...Store.maxSubscriptionsInOneStatement).map { "s\($0)" }
            for name in names { try await broker.createSubscription(name, topic: "events") }
            for id in ["warm", "published"] {
                var transaction = BrokerTransaction()
                transaction.send(Message(messageId: id, body: Data()), to: .topic("events"))
                _ = try await broker.commit(transaction)
            }
            for name in names {
                let received = try await broker.receive(from: .subscription(name, of: "events"), maxCount: 10, maxWaitTime: .zero)
                #expect(received.map(\.message.messageId) == ["warm", "published"], "\(name)")
            }
        }
    }

    /// A broker whose cached subscriptions are out of date (another broker deleted one) sends
    /// what the current subscriptions accept: a message without a session, once the only
    /// subscription that needs sessions is gone.
    @Test func aPublicationIsCheckedAgainstTheCurrentSubscriptions() async throws {
        try await SchemaFixture.with("stale", clients: 2) { fixture in
            let first = try fixture.open(client: 0)
            let second = try fixture.open(client: 1)
            try await first.broker.createTopic("events")
            try await first.broker.createSubscription("all", topic: "events")
            try await first.broker.createSubscription("sessions", topic: "events", options: EntityOptions(requiresSession: true), filter: .all)
            try await second.broker.send(Message(messageId: "cached", body: Data(), sessionId: "s"), to: .topic("events"))
            try await first.broker.deleteSubscription("sessions", topic: "events")
            var transaction = BrokerTransaction()
            transaction.send(Message(messageId: "no-session", body: Data()), to: .topic("events"))
            _ = try await second.broker.commit(transaction)
            let received = try await second.broker.receive(from: .subscription("all", of: "events"), maxCount: 10, maxWaitTime: .zero)
            #expect(received.map(\.message.messageId) == ["cached", "no-session"])
        }
    }

    /// The inbox answers which of many entries it holds in one read, the same as one by one.
    @Test func inboxEntriesAreFoundInOneRead() async throws {
        try await SchemaFixture.with("inbox") { fixture in
            let running = try fixture.open()
            let broker = running.broker
            var transaction = BrokerTransaction()
            transaction.recordInbox(handler: "h", messageId: "1")
            transaction.recordInbox(handler: "h", messageId: "2")
            transaction.recordInbox(handler: "other", messageId: "3")
            _ = try await broker.commit(transaction)
            let asked = [("h", "1"), ("h", "3"), ("other", "3"), ("other", "1"), ("h", "2"), ("h", "1")].map { InboxEntry(handler: $0.0, messageId: $0.1) }
            let found = try await broker.inboxEntries(among: asked)
            #expect(
                found == [InboxEntry(handler: "h", messageId: "1"), InboxEntry(handler: "h", messageId: "2"), InboxEntry(handler: "other", messageId: "3")])
            for entry in asked { #expect(try await broker.inboxContains(entry) == found.contains(entry)) }
            #expect(try await broker.inboxEntries(among: []).isEmpty)
        }
    }

    /// A receive waiting on one broker returns soon after a send on another (another process, as
    /// far as the database can tell): LISTEN/NOTIFY, not polling, since the poll interval is long.
    @Test func notifyWakesAReceiverOfAnotherBroker() async throws {
        try await SchemaFixture.with("wake", clients: 2) { fixture in
            let sender = try fixture.open(client: 0) { $0.pollInterval = .seconds(30) }
            let receiver = try fixture.open(client: 1) { $0.pollInterval = .seconds(30) }
            try await sender.broker.createQueue("q")
            _ = try await receiver.broker.listQueues()  // started, LISTENing
            try await Task.sleep(for: .milliseconds(200))
            for round in 0..<3 {
                let start = ContinuousClock.now
                async let received = receiver.broker.receive(from: .queue("q"), maxCount: 1, maxWaitTime: .seconds(10), mode: .peekLock)
                try await Task.sleep(for: .milliseconds(100))
                try await sender.broker.send(Message(text: "m\(round)"), to: .queue("q"))
                let messages = try await received
                let elapsed = ContinuousClock.now - start
                #expect(messages.map { String(decoding: $0.message.body, as: UTF8.self) } == ["m\(round)"])
                // Far below the 30 s poll interval: the notification woke it (a loaded machine took 2.6 s).
                #expect(elapsed < .seconds(8), "round \(round): the waiting receive took \(elapsed)")
                try await receiver.broker.complete(messages.compactMap(\.lockToken))
            }
        }
    }

    /// A broker that found itself alone sends no notifications; one that starts listening later
    /// announces itself, and from then on sends on the first broker wake its waiting receivers.
    @Test func aBrokerThatStartsLaterIsNotified() async throws {
        try await SchemaFixture.with("late", clients: 2) { fixture in
            let sender = try fixture.open(client: 0) { $0.pollInterval = .seconds(30) }
            try await sender.broker.createQueue("q")
            // The sender counts the listeners and finds only its own.
            try await Task.sleep(for: .seconds(1))
            _ = try await sender.broker.send(Message(text: "alone"), to: .queue("q"))
            let receiver = try fixture.open(client: 1) { $0.pollInterval = .seconds(30) }
            let first = try await receiver.broker.receive(from: .queue("q"), maxCount: 1, maxWaitTime: .seconds(5), mode: .receiveAndDelete)
            #expect(first.map { String(decoding: $0.message.body, as: UTF8.self) } == ["alone"])
            try await Task.sleep(for: .milliseconds(200))
            let start = ContinuousClock.now
            async let received = receiver.broker.receive(from: .queue("q"), maxCount: 1, maxWaitTime: .seconds(10), mode: .receiveAndDelete)
            try await Task.sleep(for: .milliseconds(100))
            try await sender.broker.send(Message(text: "later"), to: .queue("q"))
            let messages = try await received
            let elapsed = ContinuousClock.now - start
            #expect(messages.map { String(decoding: $0.message.body, as: UTF8.self) } == ["later"])
            // Without the notification it would wait out its 10 s (the poll interval is 30 s); a loaded
            // machine can take more than a second to wake it.
            #expect(elapsed < .seconds(5), "the waiting receive took \(elapsed)")
        }
    }

    /// Closing a broker releases its locks at once: another broker receives the messages without
    /// waiting for the lock duration.
    @Test func closeReleasesLocksForOtherBrokers() async throws {
        try await SchemaFixture.with("rel") { fixture in
            let first = try fixture.open()
            try await first.broker.createQueue("q", options: EntityOptions(lockDuration: .seconds(300)))
            _ = try await first.broker.send((0..<5).map { Message(text: "m\($0)") }, to: .queue("q"))
            #expect(try await first.broker.receive(from: .queue("q"), maxCount: 5).count == 5)
            let second = try fixture.open()
            #expect(try await second.broker.receive(from: .queue("q"), maxCount: 5).isEmpty, "locked by the first broker")
            await first.close()
            let again = try await second.broker.receive(from: .queue("q"), maxCount: 5)
            #expect(again.map(\.deliveryCount) == [2, 2, 2, 2, 2])
        }
    }

    /// A receive on a broker whose cache still holds a queue that another broker deleted and
    /// created again finds the new queue's messages: empty receives check the cache (at most
    /// once a second per queue), while waiting too.
    @Test func aQueueRecreatedByAnotherBrokerIsFound() async throws {
        try await SchemaFixture.with("recr") { fixture in
            let first = try fixture.open { $0.pollInterval = .milliseconds(100) }
            let second = try fixture.open { $0.pollInterval = .milliseconds(100) }
            try await first.broker.createQueue("q")
            // The first broker caches the queue, and its empty receives have just checked the cache.
            for _ in 0..<3 {
                #expect(try await first.broker.receive(from: .queue("q"), maxCount: 1, maxWaitTime: .zero, mode: .peekLock).isEmpty)
            }
            try await second.broker.deleteQueue("q")
            try await second.broker.createQueue("q")
            try await second.broker.send(Message(text: "new"), to: .queue("q"))
            let start = ContinuousClock.now
            let messages = try await first.broker.receive(from: .queue("q"), maxCount: 1, maxWaitTime: .seconds(10), mode: .peekLock)
            let elapsed = ContinuousClock.now - start
            #expect(messages.map { String(decoding: $0.message.body, as: UTF8.self) } == ["new"])
            #expect(elapsed < .seconds(3), "the receive took \(elapsed)")
            try await first.broker.complete(messages.compactMap(\.lockToken))
            #expect(try await second.broker.counts(of: .queue("q")) == EntityCounts())
        }
    }

    /// A message sent alone (its own statement, a value per column) is stored as the same message
    /// sent in a batch (one array per column): every field, the default time-to-live, a schedule.
    @Test func aMessageSentAloneIsStoredAsInABatch() async throws {
        try await SchemaFixture.with("alone") { fixture in
            let broker = try fixture.open().broker
            try await broker.createQueue("q", options: EntityOptions(defaultTimeToLive: .seconds(3600)))
            let later = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3600).rounded())
            func message(_ id: String, scheduled: Bool) -> Message {
                Message(
                    messageId: id, body: Data([0, 1, 2, 255]), contentType: "application/json", subject: "Placed",
                    correlationId: "c", causationId: "k", replyTo: "replies", timeToLive: scheduled ? nil : .seconds(60),
                    scheduledEnqueueTime: scheduled ? later : nil,
                    applicationProperties: ["n": .int(7), "s": .string("é"), "b": .bool(true), "d": .double(0.5)])
            }
            for scheduled in [false, true] {
                let alone = message("alone-\(scheduled)", scheduled: scheduled)
                let batch = [message("first-\(scheduled)", scheduled: scheduled), message("second-\(scheduled)", scheduled: scheduled)]
                _ = try await broker.send(alone, to: .queue("q"))
                _ = try await broker.send(batch, to: .queue("q"))
            }
            let stored = try await broker.peek(.queue("q"), fromSequenceNumber: 1, maxCount: 10)
            #expect(stored.map(\.message.messageId) == ["alone-false", "first-false", "second-false", "alone-true", "first-true", "second-true"])
            #expect(stored.map(\.state) == [.active, .active, .active, .scheduled, .scheduled, .scheduled])
            for group in [Array(stored[0..<3]), Array(stored[3..<6])] {
                let reference = group[1]
                for received in group {
                    var message = received.message
                    message.messageId = reference.message.messageId
                    #expect(message == reference.message)
                    let timeToLive = received.expiresAt.map { $0.timeIntervalSince(received.enqueuedTime) }
                    #expect(timeToLive == reference.expiresAt.map { $0.timeIntervalSince(reference.enqueuedTime) })
                }
            }
            #expect(stored[3].enqueuedTime == later)
        }
    }
}
