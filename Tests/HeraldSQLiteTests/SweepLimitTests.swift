import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// A sweep (due scheduled messages made active, expired ones removed or dead-lettered) runs on
/// the writer inside a receive or a count. One client that scheduled many messages for one moment,
/// or let many expire, must not hold the writer, and every other client's operations, for as long
/// as all of them take: each sweep handles at most ``StoreTransaction/sweepLimit`` of each kind,
/// and receives never deliver an expired message the sweeps have not reached yet.
@Suite struct SweepLimitTests {
    private static let limit = StoreTransaction.sweepLimit
    private static let backlog = 2 * limit + limit / 2

    /// Runs `body` with an in-memory broker on a manual clock and the queue `name`.
    private static func withQueue(
        _ name: String, options: EntityOptions = EntityOptions(), _ body: (SQLiteBroker, EntityPath, ManualBrokerClock) async throws -> Void
    ) async throws {
        let clock = ManualBrokerClock()
        try await SQLiteBroker.withInMemoryBroker(configuration: SQLiteBroker.Configuration(clock: clock)) { broker in
            try await broker.createQueue(name, options: options)
            try await body(broker, .queue(name), clock)
        }
    }

    private static func send(_ count: Int, to queue: EntityPath, on broker: SQLiteBroker, _ make: (Int) -> Message) async throws {
        for start in stride(from: 0, to: count, by: HeraldLimits.maxBatchCount) {
            let batch = (start..<min(count, start + HeraldLimits.maxBatchCount)).map(make)
            _ = try await broker.send(batch, to: queue)
        }
    }

    /// The sweep's two reads go through the partial indexes of scheduled and of expiring messages,
    /// in the order they come due, without sorting: a sweep with nothing to do reads nothing.
    @Test func sweepingReadsTheIndexesInDueOrder() throws {
        let plans = try QueryPlans()
        let due = try plans.plan(StoreTransaction.dueScheduled, [1, 0, 10])
        let expired = try plans.plan(StoreTransaction.expiredMessages, [1, 0, 0, 10])
        #expect(due.contains { $0.contains("USING INDEX message_scheduled (entity_id=? AND visible_at<?)") }, "\(due)")
        #expect(expired.contains { $0.contains("USING INDEX message_expiry (entity_id=? AND expires_at>? AND expires_at<?)") }, "\(expired)")
        #expect(!(due + expired).contains { $0.contains("TEMP B-TREE") }, "\(due) \(expired)")
    }

    /// Scheduled messages that come due together become active a limit at a time, the earliest
    /// due first, and are received in order. (Before, the first count made all of them active.)
    @Test func scheduledMessagesComeDueALimitPerSweep() async throws {
        try await Self.withQueue("scheduled") { broker, queue, clock in
            let due = clock.now().addingTimeInterval(3600)
            try await Self.send(Self.backlog, to: queue, on: broker) {
                Message(messageId: "m\($0)", body: Data(), scheduledEnqueueTime: due.addingTimeInterval(Double($0 / Self.limit)))
            }
            clock.advance(by: .seconds(3700))

            var counts = try await broker.counts(of: queue)
            #expect(counts.active == Self.limit)
            #expect(counts.scheduled == Self.backlog - Self.limit)

            let first = try await broker.receive(from: queue, maxCount: 5, maxWaitTime: .zero, mode: .peekLock)
            #expect(first.map(\.message.messageId) == (0..<5).map { "m\($0)" })
            counts = try await broker.counts(of: queue)
            #expect(counts.scheduled == 0, "three sweeps: two counts and a receive")
            #expect(counts.active == Self.backlog - 5)
            #expect(counts.locked == 5)

            var received = first.map(\.message.messageId)
            while true {
                let batch = try await broker.receive(from: queue, maxCount: 1000, maxWaitTime: .zero, mode: .receiveAndDelete)
                if batch.isEmpty { break }
                received += batch.map(\.message.messageId)
            }
            #expect(received == (0..<Self.backlog).map { "m\($0)" })
        }
    }

    /// Expired messages leave a limit per sweep, the earliest expired first; meanwhile a receive
    /// passes over those still stored and takes only live messages. (Before, the first receive
    /// dead-lettered all of them.)
    @Test func expiredMessagesLeaveALimitPerSweepAndAreNeverDelivered() async throws {
        var options = EntityOptions()
        options.deadLetterOnExpiration = true
        try await Self.withQueue("expiring", options: options) { broker, queue, clock in
            try await Self.send(Self.backlog, to: queue, on: broker) { Message(messageId: "old\($0)", body: Data(), timeToLive: .seconds(60)) }
            _ = try await broker.send([Message(messageId: "live1", body: Data()), Message(messageId: "live2", body: Data())], to: queue)
            clock.advance(by: .seconds(120))

            let live = try await broker.receive(from: queue, maxCount: 10, maxWaitTime: .zero, mode: .peekLock)
            #expect(live.map(\.message.messageId) == ["live1", "live2"])
            var counts = try await broker.counts(of: queue)
            #expect(counts.deadLettered == 2 * Self.limit, "one receive and one count")
            counts = try await broker.counts(of: queue)
            #expect(counts.deadLettered == Self.backlog)
            #expect(counts.active == 0)
            #expect(counts.locked == 2)

            let deadLetters = try await broker.receive(from: queue.deadLetter, maxCount: 5, maxWaitTime: .zero, mode: .peekLock)
            #expect(deadLetters.map(\.message.messageId) == (0..<5).map { "old\($0)" }, "the earliest expired first, in order")
        }
    }

    /// In a session, a receive passes over the session's expired messages the sweep has not
    /// reached and keeps the order of the rest.
    @Test func aSessionReceivePassesOverExpiredMessages() async throws {
        var options = EntityOptions()
        options.requiresSession = true
        try await Self.withQueue("sessions", options: options) { broker, queue, clock in
            _ = try await broker.send(Message(messageId: "first", body: Data(), sessionId: "s"), to: queue)
            try await Self.send(Self.limit + 200, to: queue, on: broker) {
                Message(messageId: "old\($0)", body: Data(), sessionId: "s", timeToLive: .seconds(60))
            }
            _ = try await broker.send(Message(messageId: "last", body: Data(), sessionId: "s"), to: queue)
            clock.advance(by: .seconds(120))

            let session = try await broker.acceptSession(on: queue, sessionId: "s", maxWaitTime: .zero)
            let received = try await broker.receive(from: session, maxCount: 10, maxWaitTime: .zero)
            #expect(received.map(\.message.messageId) == ["first", "last"])
        }
    }
}
