import Foundation
import HeraldCore

// Peek, counts, and waiting receives (long polling).

extension BrokerConformance {
    static let receivingCases: [ConformanceCase] = [
        ConformanceCase(name: "peek.fromSequenceNumber", guarantee: "§3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let numbers = try await broker.sendTexts(["a", "b", "c", "d", "e"], to: queuePath)
            let middle = try await broker.peek(queuePath, fromSequenceNumber: numbers[2], maxCount: 2)
            try expectEqual(middle.map(\.sequenceNumber), [numbers[2], numbers[3]], "peek(from: the third, maxCount: 2)")
            try expectEqual(middle.map(\.text), ["c", "d"], "their bodies")
            try expect(middle.allSatisfy { $0.lockToken == nil }, "peeked messages have no lock token")
            try expectEqual(try await broker.peek(queuePath, fromSequenceNumber: numbers[4] + 1, maxCount: 10), [], "peek past the last message")
            try expectEqual(try await broker.peek(queuePath, fromSequenceNumber: numbers[4], maxCount: 10).map(\.text), ["e"], "peek from the last message")
            try expectEqual(try await broker.peekAll(queuePath).map(\.text), ["a", "b", "c", "d", "e"], "peek everything")
        },

        ConformanceCase(name: "peek.everyStateWithoutLocking", guarantee: "§4.3, §4.7") { context in
            let broker = context.broker
            let populated = try await populateQueue(broker, clock: context.clock)
            let peeked = try await broker.peekAll(queuePath)
            try expectEqual(
                peeked.map(\.sequenceNumber), [populated.locked.sequenceNumber, populated.deferred, populated.active, populated.scheduled],
                "peek includes the locked, deferred, active and scheduled messages, in order"
            )
            try expectEqual(peeked.map(\.text), ["locked", "deferred", "active", "scheduled"], "their bodies")
            try expectEqual(peeked.map(\.state), [.active, .deferred, .active, .scheduled], "their states")
            try expectEqual(peeked.map(\.deliveryCount), [1, 1, 0, 0], "their delivery counts")
            try expect(peeked.allSatisfy { $0.lockToken == nil }, "peeked messages have no lock token")
            try expectEqual(try await broker.peekAll(queuePath), peeked, "peeking again gives the same")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, locked: 1, scheduled: 1, deferred: 1, deadLettered: 1), "peek changes no count")
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.sequenceNumber), [populated.active], "peek locked nothing")
            try expectEqual(received.first?.deliveryCount, 1, "peek did not count as a delivery")
        },

        ConformanceCase(name: "counts.eachState", guarantee: "§3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await expectCounts(broker, queuePath, EntityCounts(), "an empty queue")
            try await broker.sendTexts(["a", "b", "c", "d"], to: queuePath)
            try await expectCounts(broker, queuePath, EntityCounts(active: 4), "active")
            let received = try await broker.receiveNow(from: queuePath, maxCount: 3)
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, locked: 3), "locked")
            try await broker.defer(try expectNotNil(received[0].lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, locked: 2, deferred: 1), "deferred")
            try await broker.deadLetter(try expectNotNil(received[1].lockToken, "lock token"), reason: "Bad", description: nil)
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, locked: 1, deferred: 1, deadLettered: 1), "dead-lettered")
            _ = try await broker.schedule(Message(text: "later"), at: adding(.seconds(30), to: context.clock.now()), to: queuePath)
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, locked: 1, scheduled: 1, deferred: 1, deadLettered: 1), "scheduled")
            try await broker.abandon(try expectNotNil(received[2].lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(active: 2, scheduled: 1, deferred: 1, deadLettered: 1), "abandoned")
            context.clock.advance(by: .seconds(30))
            try await expectCounts(broker, queuePath, EntityCounts(active: 3, deferred: 1, deadLettered: 1), "the scheduled message became active")
            _ = try await broker.receiveNow(from: queuePath, maxCount: 1)
            context.clock.advance(by: .seconds(60))
            try await expectCounts(broker, queuePath, EntityCounts(active: 3, deferred: 1, deadLettered: 1), "an expired lock counts as active")
        },

        ConformanceCase(name: "longPoll.wakesOnSend", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let start = ContinuousClock.now
            let sender = Task {
                try await Task.sleep(for: .milliseconds(100))
                try await broker.send(Message(text: "late"), to: queuePath)
            }
            // A long wait, so that a slow, loaded machine (the send waits for an fsync) cannot be
            // mistaken for a receive that only returned when its wait ran out.
            let received = try await withRealTimeLimit(.seconds(60), "receive(maxWaitTime: 30 s)") {
                try await broker.receive(from: queuePath, maxCount: 1, maxWaitTime: .seconds(30), mode: .peekLock)
            }
            let elapsed = ContinuousClock.now - start
            try await sender.value
            try expectEqual(received.map(\.text), ["late"], "the waiting receive gets the message sent while it waits")
            try expect(elapsed < .seconds(20), "the waiting receive returns soon after the send, not at the end of its wait: took \(elapsed)")
        },

        ConformanceCase(name: "longPoll.emptyTimesOut", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let start = ContinuousClock.now
            let received = try await withRealTimeLimit(.seconds(10), "receive(maxWaitTime: 200 ms)") {
                try await broker.receive(from: queuePath, maxCount: 1, maxWaitTime: .milliseconds(200), mode: .peekLock)
            }
            let elapsed = ContinuousClock.now - start
            try expectEqual(received, [], "an empty queue gives nothing")
            try expect(elapsed >= .milliseconds(150), "the receive waits about maxWaitTime: took \(elapsed)")
        },
    ]
}
