import Foundation
import HeraldCore

// GUARANTEES.md §4 "Limits": each checked exactly; the limit is accepted, one more is rejected with its
// own error, and the rejected send leaves the store as it was.

extension BrokerConformance {
    static let limitCases: [ConformanceCase] = [
        ConformanceCase(name: "limits.bodyAtMaxMessageSize", guarantee: "§4 limits, maxMessageSize") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxMessageSize: 1024))
            try await broker.send(Message(body: body(size: 1024)), to: queuePath)
            try await expectUnchanged(broker, [queuePath], "a 1025-byte body") {
                try await expectError(.messageTooLarge, "a 1025-byte body to a 1024-byte queue") {
                    try await broker.send(Message(body: body(size: 1025)), to: queuePath)
                }
            }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "only the 1024-byte message")
            try expectEqual(try await receiveOne(broker, from: queuePath).message.body.count, 1024, "the body received")
        },

        ConformanceCase(name: "limits.bodyAtDefaultMaxMessageSize", guarantee: "§4 limits, maxMessageSize") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.send(Message(body: body(size: 256 * 1024)), to: queuePath)
            try await expectUnchanged(broker, [queuePath], "a 256 KiB + 1 body") {
                try await expectError(.messageTooLarge, "a 256 KiB + 1 body to a default queue") {
                    try await broker.send(Message(body: body(size: 256 * 1024 + 1)), to: queuePath)
                }
            }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "only the 256 KiB message")
            try expectEqual(try await receiveOne(broker, from: queuePath).message.body, body(size: 256 * 1024), "the body received")
        },

        ConformanceCase(name: "limits.bodyAtOneMebibyte", guarantee: "§4 limits, maxMessageSize") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(maxMessageSize: 1_048_576))
            try await broker.send(Message(body: body(size: 1_048_576)), to: queuePath)
            try await expectError(.messageTooLarge, "a 1 MiB + 1 body") { try await broker.send(Message(body: body(size: 1_048_577)), to: queuePath) }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "only the 1 MiB message")
        },

        ConformanceCase(name: "limits.identifierLength", guarantee: "§4 limits, identifiers") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.createQueue("sessions", options: EntityOptions(requiresSession: true))
            let sessions = EntityPath.queue("sessions")
            let ascii128 = string(bytes: 128)
            let utf8128 = string(bytes: 64, of: "é")  // 64 characters, 128 UTF-8 bytes
            let ascii129 = string(bytes: 129)
            let utf8129 = "a" + utf8128  // 65 characters, 129 UTF-8 bytes
            for id in [ascii128, utf8128] {
                try await broker.send(Message(messageId: id, body: Data("m".utf8)), to: queuePath)
                try await broker.send(Message(body: Data("m".utf8), correlationId: id), to: queuePath)
                try await broker.send(Message(body: Data("m".utf8), sessionId: id), to: sessions)
            }
            try await expectUnchanged(broker, [queuePath, sessions], "129-byte identifiers") {
                for id in [ascii129, utf8129] {
                    try await expectError(.identifierTooLong, "a messageId of \(id.count) characters, 129 bytes") {
                        try await broker.send(Message(messageId: id, body: Data("m".utf8)), to: queuePath)
                    }
                    try await expectError(.identifierTooLong, "a correlationId of \(id.count) characters, 129 bytes") {
                        try await broker.send(Message(body: Data("m".utf8), correlationId: id), to: queuePath)
                    }
                    try await expectError(.identifierTooLong, "a sessionId of \(id.count) characters, 129 bytes") {
                        try await broker.send(Message(body: Data("m".utf8), sessionId: id), to: sessions)
                    }
                }
            }
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.message.messageId).filter { $0 == ascii128 || $0 == utf8128 }, [ascii128, utf8128], "128-byte message ids")
            try expectEqual(received.compactMap(\.message.correlationId), [ascii128, utf8128], "128-byte correlation ids")
            try await expectCounts(broker, sessions, EntityCounts(active: 2), "the session queue")
            let session = try await broker.accept(sessions, utf8128)
            try expectEqual(try await broker.receiveNow(from: session).map(\.message.sessionId), [utf8128], "the 128-byte session")
        },

        ConformanceCase(name: "limits.onePropertySize", guarantee: "§4 limits, one property ≤ 32 KiB") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let limit = HeraldLimits.maxPropertySize
            try expectEqual(limit, 32768, "HeraldLimits.maxPropertySize")
            // key bytes + value bytes (string: UTF-8 length; int and double: 8; bool: 1)
            let atLimit: [(String, [String: PropertyValue])] = [
                ("string", ["k": .string(string(bytes: limit - 1))]),
                ("multibyte string", ["ké": .string(string(bytes: (limit - 3) / 2, of: "é") + "x")]),
                ("int", [string(bytes: limit - 8): .int(1)]),
                ("double", [string(bytes: limit - 8): .double(1.5)]),
                ("bool", [string(bytes: limit - 1): .bool(true)]),
            ]
            let overLimit: [(String, [String: PropertyValue])] = [
                ("string", ["k": .string(string(bytes: limit))]),
                ("multibyte string", ["ké": .string(string(bytes: (limit - 3) / 2 + 1, of: "é"))]),
                ("int", [string(bytes: limit - 7): .int(1)]),
                ("double", [string(bytes: limit - 7): .double(1.5)]),
                ("bool", [string(bytes: limit): .bool(true)]),
            ]
            for (label, properties) in atLimit {
                let size = properties.reduce(0) { $0 + $1.key.utf8.count + $1.value.encodedSize }
                try expectEqual(size, limit, "test set-up: size of the \(label) property")
                try await broker.send(Message(messageId: "ok-\(label)", body: Data(), applicationProperties: properties), to: queuePath)
            }
            try await expectUnchanged(broker, [queuePath], "a 32769-byte property") {
                for (label, properties) in overLimit {
                    let size = properties.reduce(0) { $0 + $1.key.utf8.count + $1.value.encodedSize }
                    try expectEqual(size, limit + 1, "test set-up: size of the \(label) property")
                    try await expectError(.propertyTooLarge, "a 32769-byte \(label) property") {
                        try await broker.send(Message(body: Data(), applicationProperties: properties), to: queuePath)
                    }
                }
            }
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.message.messageId), atLimit.map { "ok-\($0.0)" }, "the messages at the limit")
            for (message, (label, properties)) in zip(received, atLimit) {
                try expectEqual(message.message.applicationProperties, properties, "the \(label) property round-trips")
            }
        },

        ConformanceCase(name: "limits.allPropertiesSize", guarantee: "§4 limits, all properties ≤ 64 KiB") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let limit = HeraldLimits.maxPropertiesSize
            try expectEqual(limit, 65536, "HeraldLimits.maxPropertiesSize")
            func properties(lastValue: Int) -> [String: PropertyValue] {
                // 9 + 2 + 9 = 20 bytes of numbers and Booleans, then three strings under the per-property limit.
                [
                    "i": .int(7), "b": .bool(true), "d": .double(1.5),
                    "s1": .string(string(bytes: 21837)), "s2": .string(string(bytes: 21837)), "s3": .string(string(bytes: lastValue)),
                ]
            }
            let atLimit = properties(lastValue: 21836)
            let overLimit = properties(lastValue: 21837)
            try expectEqual(atLimit.reduce(0) { $0 + $1.key.utf8.count + $1.value.encodedSize }, limit, "test set-up")
            try expectEqual(overLimit.reduce(0) { $0 + $1.key.utf8.count + $1.value.encodedSize }, limit + 1, "test set-up")
            try await broker.send(Message(body: Data("m".utf8), applicationProperties: atLimit), to: queuePath)
            try await expectUnchanged(broker, [queuePath], "65537 bytes of properties") {
                try await expectError(.propertiesTooLarge, "65537 bytes of properties") {
                    try await broker.send(Message(body: Data("m".utf8), applicationProperties: overLimit), to: queuePath)
                }
            }
            try expectEqual(try await receiveOne(broker, from: queuePath).message.applicationProperties, atLimit, "the properties at the limit")
        },

        ConformanceCase(name: "limits.addressingAndAnnotations", guarantee: "§4 limits, identifiers and properties") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            // Annotations count with the application properties: 32 KiB each, 64 KiB together.
            let half = ["s": .string(string(bytes: HeraldLimits.maxPropertySize - 1))] as [String: PropertyValue]
            let atLimit = Message(
                messageId: "at-limit", body: Data(), applicationProperties: half, replyToSessionId: string(bytes: 128), to: string(bytes: 128),
                annotations: half)
            try await broker.send(atLimit, to: queuePath)
            try await expectUnchanged(broker, [queuePath], "addressing or annotations past the limits") {
                try await expectError(.identifierTooLong, "a 129-byte to") {
                    try await broker.send(Message(body: Data(), to: string(bytes: 129)), to: queuePath)
                }
                try await expectError(.identifierTooLong, "a 129-byte replyToSessionId") {
                    try await broker.send(Message(body: Data(), replyToSessionId: string(bytes: 129)), to: queuePath)
                }
                try await expectError(.propertyTooLarge, "a 32769-byte annotation") {
                    try await broker.send(Message(body: Data(), annotations: ["s": .string(string(bytes: HeraldLimits.maxPropertySize))]), to: queuePath)
                }
                try await expectError(.propertiesTooLarge, "65538 bytes of properties and annotations") {
                    try await broker.send(
                        Message(body: Data(), applicationProperties: half, annotations: half.merging(["b": .bool(true)]) { a, _ in a }), to: queuePath)
                }
            }
            try expectEqual(try await receiveOne(broker, from: queuePath).message, atLimit, "the message at the limits")
        },

        ConformanceCase(name: "limits.batchCount", guarantee: "§4 limits, batch ≤ 100; §4.1") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let hundred = (1...100).map { Message(text: "m\($0)") }
            let receipts = try await broker.send(hundred, to: queuePath)
            try expectEqual(receipts.count, 100, "receipts for a batch of 100")
            try await expectCounts(broker, queuePath, EntityCounts(active: 100), "after a batch of 100")
            try await expectUnchanged(broker, [queuePath], "a batch of 101") {
                try await expectError(.batchTooLarge, "a batch of 101") {
                    try await broker.send((1...101).map { Message(text: "n\($0)") }, to: queuePath)
                }
            }
            try await expectCounts(broker, queuePath, EntityCounts(active: 100), "nothing of the batch of 101 was enqueued")
        },

        ConformanceCase(name: "limits.completeTransactionCount", guarantee: "§4 limits, transaction ≤ 100") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            _ = try await broker.send((1...100).map { Message(text: "a\($0)") }, to: queuePath)
            _ = try await broker.send((1...100).map { Message(text: "b\($0)") }, to: queuePath)
            let first = try await broker.receive(from: queuePath, maxCount: 100)
            let second = try await broker.receive(from: queuePath, maxCount: 100)
            try expectEqual(first.count + second.count, 200, "messages received")
            let overLimit = first.compactMap(\.lockToken) + [second[0].lockToken!]
            try await expectUnchanged(broker, [queuePath], "completing 101 messages at once") {
                try await expectError(.batchTooLarge, "complete of 101 tokens") { try await broker.complete(overLimit) }
            }
            try await broker.complete(first.compactMap(\.lockToken))
            try await expectCounts(broker, queuePath, EntityCounts(locked: 100), "after completing 100 at once")
        },

        ConformanceCase(name: "limits.receiveMaxCountZero", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            try await expectUnchanged(broker, [queuePath], "a receive of 0 messages") {
                try await expectError(.invalidArgument, "receive maxCount 0 (peek-lock)") {
                    try await broker.receive(from: queuePath, maxCount: 0, maxWaitTime: .zero, mode: .peekLock)
                }
                try await expectError(.invalidArgument, "receive maxCount 0 (receive-and-delete)") {
                    try await broker.receive(from: queuePath, maxCount: 0, maxWaitTime: .zero, mode: .receiveAndDelete)
                }
                try await expectError(.invalidArgument, "receive maxCount -1") {
                    try await broker.receive(from: queuePath, maxCount: -1, maxWaitTime: .zero, mode: .peekLock)
                }
            }
        },
    ]
}
