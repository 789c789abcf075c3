import Foundation
import HeraldCore

// GUARANTEES.md §4.10: a failed fsync or write is never acknowledged and never retried blindly; the
// store stops accepting work and says why.

extension BrokerConformance {
    static let failStopCases: [ConformanceCase] = [
        ConformanceCase(name: "failStop.failedSyncIsNeverAcknowledged", guarantee: "§4.10", requires: [.durableStorage]) { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.send(Message(messageId: "kept", text: "kept"), to: queuePath)
            context.failStorage()
            try await expectError(.storeFailed, "a send whose fsync fails") {
                try await broker.send(Message(messageId: "unacknowledged", text: "?"), to: queuePath)
            }
            // Stopped for good: no operation is served, not even a read that could show unacknowledged state.
            try await expectError(.storeFailed, "a send after the failure") {
                try await broker.send(Message(messageId: "after", text: "after"), to: queuePath)
            }
            try await expectError(.storeFailed, "a receive after the failure") { try await broker.receive(from: queuePath) }
            try await expectError(.storeFailed, "counts after the failure") { try await broker.counts(of: queuePath) }

            // Everything acknowledged is there after a restart; the unacknowledged send may or
            // may not be (the disk may have kept it); nothing sent after the failure is.
            let reopened = try await context.reopen()
            let ids = try await reopened.peek(queuePath, fromSequenceNumber: 0, maxCount: 10).map(\.message.messageId)
            try expect(ids == ["kept"] || ids == ["kept", "unacknowledged"], "after the restart the queue holds \(ids)")
            try await reopened.send(Message(messageId: "working", text: "again"), to: queuePath)
        },

        ConformanceCase(name: "failStop.failedSyncFailsConcurrentCallers", guarantee: "§4.10, §4.1") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            context.failStorage()
            let acknowledged = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        (try? await broker.send(Message(text: "m\(index)"), to: queuePath)) != nil
                    }
                }
                var count = 0
                for await ok in group where ok { count += 1 }
                return count
            }
            try expectEqual(acknowledged, 0, "sends acknowledged after a failed fsync")
        },
    ]
}
