import Foundation
import HeraldCore

// GUARANTEES.md §4.5 (duplicate detection by messageId, the duplicateDetectionWindow option) and §4.9
// (sender sequences: duplicates and gaps).

extension BrokerConformance {
    static let duplicateDetectionCases: [ConformanceCase] = [
        ConformanceCase(name: "duplicates.sameIdWithinWindow", guarantee: "§4.5, duplicateDetectionWindow") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(duplicateDetectionWindow: .seconds(60)))
            let original = try await broker.send(Message(messageId: "m-1", body: Data("first".utf8)), to: queuePath)
            try expectEqual(original.isDuplicate, false, "the first send is not a duplicate")
            let originalNumber = try expectNotNil(original.sequenceNumber, "the first send's sequence number")
            let again = try await broker.send(Message(messageId: "m-1", body: Data("second".utf8)), to: queuePath)
            try expectEqual(again, SendReceipt(sequenceNumber: originalNumber, isDuplicate: true), "the second send of m-1")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "only one message enqueued")
            context.clock.advance(by: .seconds(60) - oneMillisecond)
            try expectEqual(
                try await broker.send(Message(messageId: "m-1", body: Data("third".utf8)), to: queuePath),
                SendReceipt(sequenceNumber: originalNumber, isDuplicate: true), "1 ms before the window ends"
            )
            context.clock.advance(by: oneMillisecond)
            let anew = try await broker.send(Message(messageId: "m-1", body: Data("fourth".utf8)), to: queuePath)
            try expectEqual(anew.isDuplicate, false, "once the window has passed the id is accepted anew")
            try expect((anew.sequenceNumber ?? 0) > originalNumber, "with a new sequence number, got \(String(describing: anew.sequenceNumber))")
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["first", "fourth"], "received")
        },

        ConformanceCase(name: "duplicates.duplicateOfACompletedMessage", guarantee: "§4.5") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(duplicateDetectionWindow: .seconds(60)))
            let original = try await broker.send(Message(messageId: "m-1", body: Data("first".utf8)), to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            try await broker.complete(try expectNotNil(message.lockToken, "lock token"))
            let again = try await broker.send(Message(messageId: "m-1", body: Data("second".utf8)), to: queuePath)
            try expectEqual(again, SendReceipt(sequenceNumber: original.sequenceNumber, isDuplicate: true), "a resend after completion")
            try await expectCounts(broker, queuePath, EntityCounts(), "nothing enqueued again")
        },

        ConformanceCase(name: "duplicates.withoutWindowEnqueuedTwice", guarantee: "§4.5") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let first = try await broker.send(Message(messageId: "m-1", body: Data("a".utf8)), to: queuePath)
            let second = try await broker.send(Message(messageId: "m-1", body: Data("b".utf8)), to: queuePath)
            try expectEqual(first.isDuplicate, false, "first")
            try expectEqual(second.isDuplicate, false, "without a window the same id is not a duplicate")
            try expect(second.sequenceNumber != first.sequenceNumber, "two sequence numbers")
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["a", "b"], "both enqueued")
        },

        ConformanceCase(name: "duplicates.survivesReopen", guarantee: "§4.5", requires: [.durableStorage]) { context in
            var broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(duplicateDetectionWindow: .seconds(600)))
            let original = try await broker.send(Message(messageId: "m-1", body: Data("a".utf8)), to: queuePath)
            broker = try await context.reopen()
            let again = try await broker.send(Message(messageId: "m-1", body: Data("b".utf8)), to: queuePath)
            try expectEqual(again, SendReceipt(sequenceNumber: original.sequenceNumber, isDuplicate: true), "a resend after reopen")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "one message")
        },

        ConformanceCase(name: "duplicates.withinOneBatch", guarantee: "§4.5, §4.1") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(duplicateDetectionWindow: .seconds(60)))
            let receipts = try await broker.send(
                [
                    Message(messageId: "a", body: Data("a1".utf8)), Message(messageId: "b", body: Data("b".utf8)),
                    Message(messageId: "a", body: Data("a2".utf8)),
                ],
                to: queuePath
            )
            try expectEqual(receipts.count, 3, "one receipt per message")
            try expectEqual(receipts.map(\.isDuplicate), [false, false, true], "the second a is a duplicate of the first")
            try expectEqual(receipts[2].sequenceNumber, receipts[0].sequenceNumber, "with the first one's sequence number")
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["a1", "b"], "enqueued")
        },

        ConformanceCase(name: "duplicates.topicLevel", guarantee: "§4.5") { context in
            let broker = context.broker
            try await broker.createTopic("events", options: EntityOptions(duplicateDetectionWindow: .seconds(60)))
            try await broker.createSubscription("all", topic: "events")
            let topic = EntityPath.topic("events")
            let first = try await broker.send(Message(messageId: "e-1", body: Data("a".utf8)), to: topic)
            let second = try await broker.send(Message(messageId: "e-1", body: Data("b".utf8)), to: topic)
            try expectEqual(first.isDuplicate, false, "first")
            try expectEqual(second, SendReceipt(sequenceNumber: first.sequenceNumber, isDuplicate: true), "the second send to the topic")
            try expectEqual(try await broker.receiveNow(from: .subscription("all", of: "events")).map(\.text), ["a"], "the subscription gets one copy")
        },

        ConformanceCase(name: "senderSequence.repeatedPairIsDuplicate", guarantee: "§4.9") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.createQueue("windowed", options: EntityOptions(duplicateDetectionWindow: .seconds(60)))
            for path in [queuePath, EntityPath.queue("windowed")] {
                var receipts: [SendReceipt] = []
                for sequence in Int64(1)...3 {
                    receipts.append(try await broker.send(Message(body: Data("\(sequence)".utf8), senderId: "s1", senderSequence: sequence), to: path))
                }
                try expectEqual(receipts.map(\.isDuplicate), [false, false, false], "\(path): sender sequences 1, 2, 3")
                // A new messageId, so only the (senderId, senderSequence) pair makes it a duplicate.
                let repeated = try await broker.send(Message(body: Data("2 again".utf8), senderId: "s1", senderSequence: 2), to: path)
                try expectEqual(repeated.isDuplicate, true, "\(path): (s1, 2) again")
                if let number = repeated.sequenceNumber {
                    try expectEqual(number, receipts[1].sequenceNumber, "\(path): a duplicate's sequence number is the original's")
                }
                let other = try await broker.send(Message(body: Data("other".utf8), senderId: "s2", senderSequence: 2), to: path)
                try expectEqual(other.isDuplicate, false, "\(path): (s2, 2) is another sender's")
                try expectEqual(try await broker.receiveNow(from: path).map(\.text), ["1", "2", "3", "other"], "\(path): nothing enqueued for the repeat")
            }
        },

        ConformanceCase(name: "senderSequence.gapIsVisible", guarantee: "§4.9") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            for sequence in [Int64(1), 2, 4] {
                try await broker.send(Message(body: Data("\(sequence)".utf8), senderId: "s1", senderSequence: sequence), to: queuePath)
            }
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.message.senderId), ["s1", "s1", "s1"], "receivers see the senderId")
            let sequences = received.compactMap(\.message.senderSequence)
            try expectEqual(sequences, [1, 2, 4], "receivers see the sender sequences")
            let gaps = zip(sequences, sequences.dropFirst()).filter { $1 != $0 + 1 }.map { "\($0)→\($1)" }
            try expectEqual(gaps, ["2→4"], "the gap is visible")
        },
        ConformanceCase(name: "senderSequence.reorderedLowerNumberIsAccepted", guarantee: "§4.9") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let third = try await broker.send(Message(body: Data("3".utf8), senderId: "s1", senderSequence: 3), to: queuePath)
            let first = try await broker.send(Message(body: Data("1".utf8), senderId: "s1", senderSequence: 1), to: queuePath)
            try expect(!third.isDuplicate && !first.isDuplicate, "a late, lower sender sequence is a reordered message, not a duplicate")
            let again = try await broker.send(Message(body: Data("1".utf8), senderId: "s1", senderSequence: 1), to: queuePath)
            try expectEqual(again, SendReceipt(sequenceNumber: first.sequenceNumber, isDuplicate: true), "the repeated pair (s1, 1)")
            try expectEqual(try await broker.peekAll(queuePath).map { $0.message.senderSequence }, [3, 1], "the receiver sees the reordering")
        },
    ]
}
