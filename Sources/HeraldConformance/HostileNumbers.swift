import Foundation
import HeraldCore

// Numbers a client controls are bounded before any arithmetic on them (a delay added to the clock
// overflowed and stopped the server), and a receive can be held to a byte budget.

extension BrokerConformance {
    static let hostileNumberCases: [ConformanceCase] = [
        ConformanceCase(name: "limits.abandonDelayIsBounded", guarantee: "§4 limits, abandon delay") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.send(Message(text: "a"), to: queuePath)
            let received = try await receiveOne(broker, from: queuePath)
            guard let token = received.lockToken else { throw ConformanceFailure("a peek-lock delivery without a lock token") }
            for delay: Duration in [
                HeraldLimits.maxAbandonDelay + .milliseconds(1), .seconds(Int64.max), .milliseconds(Int64.max), .milliseconds(-1), .seconds(Int64.min),
            ] {
                try await expectError(.invalidArgument, "an abandon delayed by \(delay)") { try await broker.abandon(token, delay: delay) }
            }
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1), "the refused abandons left the lock")
            try await broker.abandon(token, delay: HeraldLimits.maxAbandonDelay)
            try await expectNothing(broker, from: queuePath, "a message abandoned for 10 years")
            try expectEqual(try await broker.peek(queuePath, fromSequenceNumber: 0, maxCount: 10).count, 1, "the message is kept")
        },

        ConformanceCase(name: "limits.cancelCountIsBounded", guarantee: "§4 limits, cancellation size") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let time = adding(.seconds(30), to: context.clock.now())
            let first = try await broker.schedule(Message(text: "one"), at: time, to: queuePath)
            let second = try await broker.schedule(Message(text: "two"), at: time, to: queuePath)
            try await expectError(.invalidArgument, "a cancellation naming no message") { try await broker.cancelScheduled([], in: queuePath) }
            let tooMany = [first, second] + (1...Int64(HeraldLimits.maxCancelCount - 1)).map { second + $0 }
            try await expectError(.invalidArgument, "a cancellation naming \(tooMany.count) messages") {
                try await broker.cancelScheduled(tooMany, in: queuePath)
            }
            try await expectCounts(broker, queuePath, EntityCounts(scheduled: 2), "the refused cancellations cancelled nothing")
            try await broker.cancelScheduled(Array(tooMany.prefix(2)), in: queuePath)
            try await expectCounts(broker, queuePath, EntityCounts(), "both cancelled")
        },

        ConformanceCase(name: "receiving.byteBudget", guarantee: "§4 limits, answer size") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            for _ in 0..<5 { try await broker.send(Message(body: body(size: 1000)), to: queuePath) }
            let two = try await broker.receive(from: queuePath, maxCount: 5, maxBytes: 2500, maxWaitTime: .zero, mode: .peekLock)
            try expectEqual(two.map(\.sequenceNumber), [1, 2], "a 2,500-byte budget takes two 1,000-byte messages")
            let one = try await broker.receive(from: queuePath, maxCount: 5, maxBytes: 10, maxWaitTime: .zero, mode: .receiveAndDelete)
            try expectEqual(one.map(\.sequenceNumber), [3], "the first message is delivered whatever the budget")
            try await expectCounts(broker, queuePath, EntityCounts(active: 2, locked: 2), "the rest are untouched")
            let rest = try await broker.receive(from: queuePath, maxCount: 5, maxBytes: .max, maxWaitTime: .zero, mode: .peekLock)
            try expectEqual(rest.map(\.sequenceNumber), [4, 5], "without a budget, the rest")
        },
    ]
}
