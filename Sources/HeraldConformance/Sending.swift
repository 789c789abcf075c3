import Foundation
import HeraldCore

// GUARANTEES.md §3 and §4.1: sequence numbers, atomic batches, and every field of a message round-trips.

extension BrokerConformance {
    static let sendingCases: [ConformanceCase] = [
        ConformanceCase(name: "sending.sequenceNumbersStartAtOneAndIncrease", guarantee: "§3, §4.1") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.createQueue("other")
            let numbers = try await broker.sendTexts(["a", "b", "c", "d"], to: queuePath)
            try expectEqual(numbers.first, 1, "the first sequence number of a queue")
            try expect(zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 }, "sequence numbers strictly increase: \(numbers)")
            try expectEqual(try await broker.sendTexts(["x"], to: .queue("other")), [1], "another queue numbers its own messages from 1")
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.sequenceNumber), numbers, "receive reports the sequence numbers send returned")
            try expectEqual(received.map(\.text), ["a", "b", "c", "d"], "bodies in order")
        },

        ConformanceCase(name: "sending.batchGetsConsecutiveNumbers", guarantee: "§4.1") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let first = try await broker.send(Message(text: "first"), to: queuePath)
            let receipts = try await broker.send((1...10).map { Message(text: "b\($0)") }, to: queuePath)
            try expectEqual(receipts.map(\.isDuplicate), Array(repeating: false, count: 10), "no duplicates")
            let numbers = receipts.compactMap(\.sequenceNumber)
            try expectEqual(numbers.count, 10, "every receipt has a sequence number")
            try expect(numbers[0] > (first.sequenceNumber ?? .max), "the batch comes after the first message")
            try expectEqual(numbers, Array(numbers[0]..<(numbers[0] + 10)), "a batch gets consecutive sequence numbers")
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.text), ["first"] + (1...10).map { "b\($0)" }, "the batch received in order")
        },

        ConformanceCase(name: "sending.batchWithOneInvalidMessageEnqueuesNone", guarantee: "§4.1") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxMessageSize: 100))
            try await broker.sendTexts(["before"], to: queuePath)
            let batch = [Message(text: "ok1"), Message(body: body(size: 101)), Message(text: "ok2")]
            try await expectUnchanged(broker, [queuePath], "a batch with one message too large") {
                try await expectError(.messageTooLarge, "a batch with one message too large") { try await broker.send(batch, to: queuePath) }
            }
            let badIdentifier = [Message(text: "ok1"), Message(messageId: string(bytes: 129), body: Data("x".utf8))]
            try await expectError(.identifierTooLong, "a batch with one messageId too long") { try await broker.send(badIdentifier, to: queuePath) }
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["before"], "only the message sent before")
            let next = try await broker.send(Message(text: "after"), to: queuePath)
            try expect((next.sequenceNumber ?? 0) > 1, "the next message gets a new sequence number, got \(String(describing: next.sequenceNumber))")
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["after"], "the message sent after")
        },

        ConformanceCase(name: "sending.everyFieldRoundTrips", guarantee: "§3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            context.clock.advance(by: .milliseconds(1234))
            let properties: [String: PropertyValue] = [
                "string": .string("héllo ✓"), "empty": .string(""), "numeric string": .string("42"), "bool string": .string("true"),
                "int": .int(42), "zero": .int(0), "one": .int(1), "negative": .int(-7), "max": .int(.max), "min": .int(.min),
                "double": .double(-3.25), "whole double": .double(2.0), "tiny double": .double(1e-300),
                "true": .bool(true), "false": .bool(false), "ünïcödé kéy": .int(3),
            ]
            let full = Message(
                messageId: "id-1", body: Data([0x00, 0x01, 0xFF, 0xFE, 0x7F, 0x80, 0x00]), contentType: "application/octet-stream",
                subject: "OrderPlaced", correlationId: "corr-1", causationId: "cause-1", sessionId: nil, replyTo: "replies",
                timeToLive: .seconds(3600), scheduledEnqueueTime: nil, applicationProperties: properties,
                senderId: "sender-1", senderSequence: 1, replyToSessionId: "reply-session", to: "billing",
                annotations: ["custom": .string("value"), "x-opt-custom": .int(7), "ratio": .double(0.5), "flag": .bool(false)]
            )
            let minimal = Message(messageId: "id-2", body: Data())
            let sentAt = context.clock.now()
            let receipts = try await broker.send([full, minimal], to: queuePath)
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.count, 2, "messages received")
            let first = received[0].message
            try expectEqual(first.messageId, full.messageId, "messageId")
            try expectEqual(first.body, full.body, "body")
            try expectEqual(first.contentType, full.contentType, "contentType")
            try expectEqual(first.subject, full.subject, "subject")
            try expectEqual(first.correlationId, full.correlationId, "correlationId")
            try expectEqual(first.causationId, full.causationId, "causationId")
            try expectEqual(first.sessionId, full.sessionId, "sessionId")
            try expectEqual(first.replyTo, full.replyTo, "replyTo")
            try expectEqual(first.timeToLive, full.timeToLive, "timeToLive")
            try expectEqual(first.scheduledEnqueueTime, full.scheduledEnqueueTime, "scheduledEnqueueTime")
            for key in properties.keys.sorted() {
                try expectEqual(first.applicationProperties[key], properties[key], "application property '\(key)'")
            }
            try expectEqual(first.applicationProperties, properties, "applicationProperties")
            try expectEqual(first.senderId, full.senderId, "senderId")
            try expectEqual(first.senderSequence, full.senderSequence, "senderSequence")
            try expectEqual(first.replyToSessionId, full.replyToSessionId, "replyToSessionId")
            try expectEqual(first.to, full.to, "to")
            try expectEqual(first.annotations, full.annotations, "annotations")
            try expectEqual(first, full, "the whole message")
            try expectEqual(received[1].message, minimal, "a message with only an id and an empty body")
            try expectEqual(received.map(\.sequenceNumber), receipts.compactMap(\.sequenceNumber), "sequence numbers")
            for message in received {
                try expectSameMillisecond(message.enqueuedTime, sentAt, "enqueuedTime is the clock's now")
                try expectEqual(message.entity, queuePath, "entity")
                try expectEqual(message.state, .active, "state")
                try expectEqual(message.deadLetterReason, nil, "deadLetterReason")
                try expectEqual(message.deadLetterDescription, nil, "deadLetterDescription")
            }
            try expectSameMillisecond(received[0].expiresAt, adding(.seconds(3600), to: sentAt), "expiresAt is enqueuedTime + timeToLive")
            try expectEqual(received[1].expiresAt, nil, "a message without time-to-live does not expire")
            // Without a sender pair, as most sends are: a store's shortest send path keeps them too.
            let addressed = Message(messageId: "id-3", body: Data("a".utf8), replyToSessionId: "s", to: "t", annotations: ["k": .int(1)])
            _ = try await broker.send([addressed], to: queuePath)
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.message), [addressed], "a message with only addressing and annotations")
        },
    ]
}
