import Foundation
import HeraldCore

// GUARANTEES.md §4.3 (peek-lock), §4.13 (fencing), and the lockDuration option.

extension BrokerConformance {
    static let peekLockCases: [ConformanceCase] = [
        ConformanceCase(name: "peekLock.receiveLocks", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(30)))
            let sequenceNumber = try await broker.sendTexts(["m"], to: queuePath)[0]
            context.clock.advance(by: .milliseconds(2500))
            let message = try await receiveOne(broker, from: queuePath)
            let token = try expectNotNil(message.lockToken, "a peek-lock receive returns a lock token")
            try expectEqual(token.entity, queuePath, "the token's entity")
            try expectEqual(token.sequenceNumber, sequenceNumber, "the token's sequence number")
            try expectEqual(message.deliveryCount, 1, "deliveryCount of the first delivery")
            try expectEqual(message.state, .active, "state")
            try expectSameMillisecond(message.lockedUntil, adding(.seconds(30), to: context.clock.now()), "lockedUntil is now + lockDuration")
            try await expectNothing(broker, from: queuePath, "a locked message is not received again")
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1), "one locked message")
        },

        ConformanceCase(name: "peekLock.completeRemoves", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["a", "b"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            let token = try expectNotNil(message.lockToken, "lock token")
            try await broker.complete(token)
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "after complete")
            try expectEqual(try await broker.peekAll(queuePath).map(\.text), ["b"], "the completed message is gone")
            try expectEqual(try await broker.complete(token), .alreadySettled, "completing twice: a retry")
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["b"], "only b is left")
        },

        ConformanceCase(name: "peekLock.abandonMakesVisibleAtOnce", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            let first = try await receiveOne(broker, from: queuePath)
            try await broker.abandon(try expectNotNil(first.lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "after abandon")
            let second = try await receiveOne(broker, from: queuePath, "an abandoned message is visible at once")
            try expectEqual(second.sequenceNumber, first.sequenceNumber, "the same message")
            try expectEqual(second.deliveryCount, 2, "deliveryCount of the second delivery")
            try expect(second.lockToken != nil && second.lockToken != first.lockToken, "every delivery gets a fresh token")
            try expectEqual(try await broker.abandon(try expectNotNil(first.lockToken, "")), .alreadySettled, "abandoning with the first token again: a retry")
            try await broker.complete(try expectNotNil(second.lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(), "after complete")
        },

        ConformanceCase(name: "peekLock.abandonWithDelay", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            let first = try await receiveOne(broker, from: queuePath)
            try await broker.abandon(try expectNotNil(first.lockToken, "lock token"), delay: .seconds(10))
            try await expectNothing(broker, from: queuePath, "at once after abandon(delay: 10 s)")
            context.clock.advance(by: .seconds(10) - oneMillisecond)
            try await expectNothing(broker, from: queuePath, "1 ms before the delay ends")
            context.clock.advance(by: oneMillisecond)
            let second = try await receiveOne(broker, from: queuePath, "when the delay ends")
            try expectEqual(second.sequenceNumber, first.sequenceNumber, "the same message")
            try expectEqual(second.deliveryCount, 2, "deliveryCount")
        },

        ConformanceCase(name: "peekLock.abandonWithNegativeDelay", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            let token = try expectNotNil(message.lockToken, "lock token")
            try await expectUnchanged(broker, [queuePath], "abandon with a negative delay") {
                try await expectError(.invalidArgument, "abandon(delay: -1 s)") { try await broker.abandon(token, delay: .seconds(-1)) }
            }
            try await broker.complete(token)
        },

        ConformanceCase(name: "peekLock.deferAndDeadLetter", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["deferred", "dead"], to: queuePath)
            let received = try await broker.receiveNow(from: queuePath)
            try expectEqual(received.map(\.text), ["deferred", "dead"], "received")
            try await broker.defer(try expectNotNil(received[0].lockToken, "lock token"))
            try await broker.deadLetter(try expectNotNil(received[1].lockToken, "lock token"), reason: "Bad", description: "why")
            try await expectNothing(broker, from: queuePath, "deferred and dead-lettered messages are not received")
            try await expectCounts(broker, queuePath, EntityCounts(deferred: 1, deadLettered: 1), "after defer and deadLetter")
            try expectEqual(try await broker.peekAll(queuePath).map(\.state), [.deferred], "peek shows the deferred message")
            try expectEqual(try await broker.peekAll(queuePath.deadLetter).map(\.text), ["dead"], "the dead-letter queue")
            try await expectError(.lockLost, "defer's token is spent") { try await broker.complete(try expectNotNil(received[0].lockToken, "")) }
            try await expectError(.lockLost, "deadLetter's token is spent") { try await broker.complete(try expectNotNil(received[1].lockToken, "")) }
        },

        ConformanceCase(name: "peekLock.renewLock", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(60)))
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            let token = try expectNotNil(message.lockToken, "lock token")
            let original = try expectNotNil(message.lockedUntil, "lockedUntil")
            context.clock.advance(by: .seconds(30))
            let renewed = try await broker.renewLock(token)
            try expect(renewed > original, "renewLock returns a later expiry: \(renewed) after \(original)")
            try expectSameMillisecond(renewed, adding(.seconds(60), to: context.clock.now()), "the renewed expiry is now + lockDuration")
            context.clock.advance(by: .seconds(40))  // 10 s past the original expiry, 20 s before the renewed one
            try await expectNothing(broker, from: queuePath, "past the original expiry the renewed lock holds")
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1), "still locked")
            try await broker.complete(token)
            try await expectCounts(broker, queuePath, EntityCounts(), "completed with the renewed lock")
        },

        ConformanceCase(name: "peekLock.lockExpiresAfterLockDuration", guarantee: "§4.3, lockDuration") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(5)))
            try await broker.sendTexts(["m"], to: queuePath)
            let first = try await receiveOne(broker, from: queuePath)
            let token = try expectNotNil(first.lockToken, "lock token")
            context.clock.advance(by: .seconds(5) - oneMillisecond)
            try await expectNothing(broker, from: queuePath, "1 ms before the lock expires")
            context.clock.advance(by: oneMillisecond)
            try await expectUnchanged(broker, [queuePath], "settling with an expired token") {
                try await expectError(.lockLost, "complete with an expired token") { try await broker.complete(token) }
                try await expectError(.lockLost, "abandon with an expired token") { try await broker.abandon(token) }
                try await expectError(.lockLost, "defer with an expired token") { try await broker.defer(token) }
                try await expectError(.lockLost, "deadLetter with an expired token") { try await broker.deadLetter(token, reason: "x", description: nil) }
                try await expectError(.lockLost, "renewLock with an expired token") { try await broker.renewLock(token) }
            }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "the expired message is visible")
            let second = try await receiveOne(broker, from: queuePath, "when lockDuration has passed")
            try expectEqual(second.sequenceNumber, first.sequenceNumber, "the same message")
            try expectEqual(second.deliveryCount, 2, "deliveryCount")
        },

        ConformanceCase(name: "peekLock.wallClockJumpDoesNotExpireLock", guarantee: "§4 clock") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(60)))
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            context.clock.jumpWallClock(by: .seconds(3600))
            try await expectNothing(broker, from: queuePath, "after the wall clock jumps an hour ahead")
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1), "still locked")
            _ = try await broker.renewLock(try expectNotNil(message.lockToken, "lock token"))
            try await broker.complete(try expectNotNil(message.lockToken, "lock token"))
            try await expectCounts(broker, queuePath, EntityCounts(), "completed")
        },

        ConformanceCase(name: "peekLock.wallClockJumpBackDoesNotKeepLock", guarantee: "§4 clock") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(60)))
            try await broker.sendTexts(["m"], to: queuePath)
            let first = try await receiveOne(broker, from: queuePath)
            context.clock.jumpWallClock(by: .seconds(-3600))
            context.clock.advance(by: .seconds(60))
            let second = try await receiveOne(broker, from: queuePath, "the lock expires by the monotonic clock although the wall clock went back")
            try expectEqual(second.sequenceNumber, first.sequenceNumber, "the same message")
            try await expectError(.lockLost, "the first token") { try await broker.complete(try expectNotNil(first.lockToken, "")) }
        },

        ConformanceCase(name: "peekLock.receiveAndDelete", guarantee: "§4.2") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let numbers = try await broker.sendTexts(["a", "b", "c"], to: queuePath)
            let received = try await broker.receive(from: queuePath, maxCount: 2, maxWaitTime: .zero, mode: .receiveAndDelete)
            try expectEqual(received.map(\.text), ["a", "b"], "received in order")
            try expectEqual(received.map(\.sequenceNumber), Array(numbers.prefix(2)), "sequence numbers")
            try expect(received.allSatisfy { $0.lockToken == nil }, "receive-and-delete returns no lock token")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "the two are removed")
            try expectEqual(try await broker.peekAll(queuePath).map(\.text), ["c"], "peek")
            context.clock.advance(by: .seconds(3600))
            try expectEqual(try await broker.receiveNow(from: queuePath).map(\.text), ["c"], "they never come back")
        },

        ConformanceCase(name: "peekLock.completeManyIsAtomic", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["a", "b", "c"], to: queuePath)
            let received = try await broker.receiveNow(from: queuePath)
            let tokens = try received.map { try expectNotNil($0.lockToken, "lock token") }
            try await broker.abandon(tokens[2])
            try await expectUnchanged(broker, [queuePath], "complete([t1, t2, stale])") {
                try await expectError(.lockLost, "complete([t1, t2, stale])") { try await broker.complete([tokens[0], tokens[1], tokens[2]]) }
            }
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, locked: 2), "none of the batch was completed")
            try await broker.complete([tokens[0], tokens[1]])
            try await expectCounts(broker, queuePath, EntityCounts(active: 1), "complete([t1, t2]) completes both")
            try expectEqual(try await broker.peekAll(queuePath).map(\.text), ["c"], "peek")
        },

        ConformanceCase(name: "fencing.staleTokenAfterRedelivery", guarantee: "§4.13") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(10)))
            try await broker.sendTexts(["m"], to: queuePath)
            let first = try await receiveOne(broker, from: queuePath)
            context.clock.advance(by: .seconds(10))
            let second = try await receiveOne(broker, from: queuePath, "redelivery after the lock expired")
            let t1 = try expectNotNil(first.lockToken, "t1")
            let t2 = try expectNotNil(second.lockToken, "t2")
            try expect(t1 != t2, "a fresh token per delivery")
            try await expectUnchanged(broker, [queuePath], "complete(t1)") {
                try await expectError(.lockLost, "complete(t1) after redelivery") { try await broker.complete(t1) }
            }
            try await expectCounts(broker, queuePath, EntityCounts(locked: 1), "still locked by t2")
            try expectEqual(try await broker.peekAll(queuePath).map(\.deliveryCount), [2], "still present, delivered twice")
            try await broker.complete(t2)
            try await expectCounts(broker, queuePath, EntityCounts(), "complete(t2) succeeds")
        },

        ConformanceCase(name: "fencing.staleTokenForEverySettlement", guarantee: "§4.13") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(10)))
            try await broker.sendTexts(["m"], to: queuePath)
            let first = try await receiveOne(broker, from: queuePath)
            context.clock.advance(by: .seconds(10))
            let second = try await receiveOne(broker, from: queuePath)
            let t1 = try expectNotNil(first.lockToken, "t1")
            let t2 = try expectNotNil(second.lockToken, "t2")
            try await expectUnchanged(broker, [queuePath], "settling with t1") {
                try await expectError(.lockLost, "abandon(t1)") { try await broker.abandon(t1) }
                try await expectError(.lockLost, "abandon(t1, delay:)") { try await broker.abandon(t1, delay: .seconds(5)) }
                try await expectError(.lockLost, "renewLock(t1)") { try await broker.renewLock(t1) }
                try await expectError(.lockLost, "deadLetter(t1)") { try await broker.deadLetter(t1, reason: "x", description: "y") }
                try await expectError(.lockLost, "defer(t1)") { try await broker.defer(t1) }
                try await expectError(.lockLost, "complete([t1])") { try await broker.complete([t1]) }
            }
            _ = try await broker.renewLock(t2)
            try await broker.deadLetter(t2, reason: "Bad", description: nil)
            try await expectCounts(broker, queuePath, EntityCounts(deadLettered: 1), "t2 still settles")
        },

        ConformanceCase(name: "fencing.unknownToken", guarantee: "§4.3, §4.13") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            let message = try await receiveOne(broker, from: queuePath)
            let forged = LockToken(entity: queuePath, sequenceNumber: message.sequenceNumber, nonce: UUID())
            let missing = LockToken(entity: queuePath, sequenceNumber: 999, nonce: UUID())
            try await expectUnchanged(broker, [queuePath], "unknown tokens") {
                try await expectError(.lockLost, "complete with a forged nonce") { try await broker.complete(forged) }
                try await expectError(.lockLost, "renewLock with a forged nonce") { try await broker.renewLock(forged) }
                try await expectError(.lockLost, "complete of a sequence number that does not exist") { try await broker.complete(missing) }
            }
            try await broker.complete(try expectNotNil(message.lockToken, "lock token"))
        },
    ]
}
