import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// Counting an entity runs on the writer, so it must not read every stored message: a queue of a
/// million messages and a console refreshing its counts every two seconds would otherwise hold
/// the writer (and every send behind it) for a large part of each second.
@Suite struct CountsScanTests {
    /// The plans SQLite chooses. The messages per state come from `message_ready` alone (a
    /// covering index, no message row and no body read); the locked and exhausted ones from the
    /// messages delivered at least once. (Before, both read every row of the entity.)
    @Test func countingReadsIndexesNotMessages() throws {
        let database = try QueryPlans()
        let plans = [
            try database.plan(StoreTransaction.storedCounts, [1]),
            try database.plan(StoreTransaction.lockedCounts, [1, 0]),
            try database.plan(StoreTransaction.exhaustedMessages, [1, 10, 0]),
        ]
        #expect(plans[0].contains { $0.contains("COVERING INDEX message_ready (entity_id=?)") }, "\(plans[0])")
        #expect(plans[1].contains { $0.contains("USING INDEX message_delivered (entity_id=?") }, "\(plans[1])")
        #expect(plans[2].contains { $0.contains("USING INDEX message_delivered (entity_id=? AND dlq=? AND delivery_count>?)") }, "\(plans[2])")
    }

    /// What the counts say, across the states the two reads split: locked and unlocked messages
    /// of one state, an expired lock, a spent delivery count (dead-lettered by the count), deferred,
    /// scheduled and dead-lettered messages.
    @Test func countsSplitLockedFromUnlockedInEveryState() async throws {
        let clock = ManualBrokerClock()
        try await SQLiteBroker.withInMemoryBroker(configuration: SQLiteBroker.Configuration(clock: clock)) { broker in
            let queue = EntityPath.queue("work")
            var options = EntityOptions()
            options.maxDeliveryCount = 2
            options.lockDuration = .seconds(10)
            try await broker.createQueue(queue.name, options: options)
            _ = try await broker.send((0..<20).map { Message(messageId: "m\($0)", body: Data("\($0)".utf8)) }, to: queue)
            _ = try await broker.send(Message(messageId: "later", body: Data(), scheduledEnqueueTime: clock.now().addingTimeInterval(3600)), to: queue)

            // m0–m1 reach their last delivery and their locks expire; m2–m3 are deferred, m4 dead-lettered.
            for _ in 0..<2 {
                _ = try await broker.receive(from: queue, maxCount: 2, maxWaitTime: .zero, mode: .peekLock)
                clock.advance(by: .seconds(11))
            }
            let next = try await broker.receive(from: queue, maxCount: 3, maxWaitTime: .zero, mode: .peekLock)
            #expect(next.map(\.message.messageId) == ["m2", "m3", "m4"])
            for message in next.prefix(2) { _ = try await broker.defer(message.lockToken!) }
            _ = try await broker.deadLetter(next[2].lockToken!, reason: "test", description: nil)
            // m5–m9 locked now; m10–m19 never delivered.
            _ = try await broker.receive(from: queue, maxCount: 5, maxWaitTime: .zero, mode: .peekLock)

            let counts = try await broker.counts(of: queue)
            #expect(counts.active == 10)
            #expect(counts.locked == 5)
            #expect(counts.deferred == 2)
            #expect(counts.scheduled == 1)
            #expect(counts.deadLettered == 3, "m4, and m0–m1 whose last lock expired")
        }
    }
}
