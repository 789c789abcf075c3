import Foundation
import HeraldCore

// GUARANTEES.md §4.6 (sessions: exclusive, ordered, with state) and §4.12 (parkSessionOnDeadLetter).

/// A session-enabled queue.
private let sessionQueue = EntityPath.queue("sessions")

/// Creates ``sessionQueue`` with `requiresSession` and the given settings.
private func createSessionQueue(
    _ broker: any MessageBroker, lockDuration: Duration = .seconds(60), maxDeliveryCount: Int = 10, park: Bool = false
) async throws {
    try await broker.createQueue(
        sessionQueue.name,
        options: EntityOptions(lockDuration: lockDuration, maxDeliveryCount: maxDeliveryCount, requiresSession: true, parkSessionOnDeadLetter: park)
    )
}

extension BrokerConformance {
    static let sessionCases: [ConformanceCase] = [
        ConformanceCase(name: "sessions.sendWithoutSessionIdRejected", guarantee: "§4.6, requiresSession") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            try await expectUnchanged(broker, [sessionQueue], "a send without sessionId") {
                try await expectError(.sessionRequired, "a send without sessionId") { try await broker.send(Message(text: "m"), to: sessionQueue) }
                try await expectError(.sessionRequired, "a batch with one message without sessionId") {
                    try await broker.send([Message(text: "ok", sessionId: "a"), Message(text: "m")], to: sessionQueue)
                }
            }
        },

        ConformanceCase(name: "sessions.plainReceiveRejected", guarantee: "§4.6, requiresSession") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            try await expectUnchanged(broker, [sessionQueue], "a receive without a session") {
                try await expectError(.sessionRequired, "receive(from: path) on a session queue") { try await broker.receiveNow(from: sessionQueue) }
            }
        },

        ConformanceCase(name: "sessions.acceptOnNonSessionQueue", guarantee: "§4.6") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            try await broker.sendTexts(["m"], to: queuePath)
            try await expectUnchanged(broker, [queuePath], "acceptSession on a queue without sessions") {
                try await expectError(.sessionNotEnabled, "acceptSession(a) on a queue without sessions") { try await broker.accept(queuePath, "a") }
                try await expectError(.sessionNotEnabled, "acceptSession(nil) on a queue without sessions") { try await broker.accept(queuePath, nil) }
            }
        },

        ConformanceCase(name: "sessions.acceptedSessionInOrder", guarantee: "§4.6") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            for text in ["a1", "b1", "a2", "b2", "a3"] {
                try await broker.send(Message(text: text, sessionId: String(text.prefix(1))), to: sessionQueue)
            }
            let session = try await broker.accept(sessionQueue, "a")
            try expectEqual(session.sessionId, "a", "the accepted session")
            try expectEqual(session.entity, sessionQueue, "the session's entity")
            try expectSameMillisecond(session.lockedUntil, adding(.seconds(60), to: context.clock.now()), "the session lock lasts lockDuration")
            let received = try await broker.receiveNow(from: session)
            try expectEqual(received.map(\.text), ["a1", "a2", "a3"], "the session's messages, in order")
            try expect(zip(received, received.dropFirst()).allSatisfy { $0.sequenceNumber < $1.sequenceNumber }, "in sequence-number order")
            try expect(received.allSatisfy { $0.lockToken != nil && $0.message.sessionId == "a" }, "locked, of session a")
            for message in received { try await broker.complete(try expectNotNil(message.lockToken, "lock token")) }
            try expectEqual(try await broker.receiveNow(from: session), [], "session a is empty")
            try await expectCounts(broker, sessionQueue, EntityCounts(active: 2), "b's messages are untouched")
        },

        ConformanceCase(name: "sessions.heldSessionCannotBeAccepted", guarantee: "§4.6") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            let session = try await broker.accept(sessionQueue, "a")
            try await expectError(.sessionCannotBeLocked, "accepting a held session") { try await broker.accept(sessionQueue, "a") }
            try expectEqual(try await broker.receiveNow(from: session).map(\.text), ["a1"], "the holder still receives")
        },

        ConformanceCase(name: "sessions.acceptNextPicksOldestAvailable", guarantee: "§4.6") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            for (text, session) in [("b1", "b"), ("a1", "a"), ("c1", "c"), ("a2", "a")] {
                try await broker.send(Message(text: text, sessionId: session), to: sessionQueue)
            }
            let held = try await broker.accept(sessionQueue, "b")
            try expectEqual(held.sessionId, "b", "explicitly accepted")
            let next = try await broker.accept(sessionQueue, nil)
            try expectEqual(next.sessionId, "a", "acceptSession(nil) skips the held session b and picks a, whose message is oldest")
            let last = try await broker.accept(sessionQueue, nil)
            try expectEqual(last.sessionId, "c", "then c")
            try await expectError(.noSessionAvailable, "no session left") { try await broker.accept(sessionQueue, nil) }
            try expectEqual(try await broker.receiveNow(from: next).map(\.text), ["a1", "a2"], "a's messages")
        },

        ConformanceCase(name: "sessions.acceptNextOnEmptyQueue", guarantee: "§4.6") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            try await expectError(.noSessionAvailable, "acceptSession(nil) on an empty queue") {
                try await broker.acceptSession(on: sessionQueue, sessionId: nil, maxWaitTime: .zero)
            }
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            let session = try await broker.accept(sessionQueue, nil)
            let message = try await broker.receiveNow(from: session)
            try await broker.complete(try expectNotNil(message.first?.lockToken, "lock token"))
            try await broker.releaseSession(session)
            try await expectError(.noSessionAvailable, "acceptSession(nil) when every session is empty") {
                try await broker.acceptSession(on: sessionQueue, sessionId: nil, maxWaitTime: .zero)
            }
        },

        ConformanceCase(name: "sessions.stateGetSetSurvivesReopen", guarantee: "§4.6", requires: [.durableStorage]) { context in
            var broker = context.broker
            try await createSessionQueue(broker)
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            try await broker.sendTexts(["b1"], to: sessionQueue, sessionId: "b")
            let session = try await broker.accept(sessionQueue, "a")
            try expectEqual(try await broker.sessionState(session), nil, "a new session has no state")
            let state = Data([0x00, 0x7B, 0xFF] + Array("step 3".utf8))
            try await broker.setSessionState(state, for: session)
            try expectEqual(try await broker.sessionState(session), state, "the state set")
            try await broker.releaseSession(session)
            let other = try await broker.accept(sessionQueue, "b")
            try expectEqual(try await broker.sessionState(other), nil, "another session's state")
            try await broker.releaseSession(other)
            broker = try await context.reopen()
            let again = try await broker.accept(sessionQueue, "a")
            try expectEqual(try await broker.sessionState(again), state, "the state after release and reopen")
            try await broker.setSessionState(nil, for: again)
            try expectEqual(try await broker.sessionState(again), nil, "the state cleared")
        },

        ConformanceCase(name: "sessions.renewSessionLock", guarantee: "§4.6") { context in
            let broker = context.broker
            try await createSessionQueue(broker, lockDuration: .seconds(60))
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            let session = try await broker.accept(sessionQueue, "a")
            context.clock.advance(by: .seconds(50))
            let renewed = try await broker.renewSessionLock(session)
            try expect(renewed.lockedUntil > session.lockedUntil, "renewSessionLock extends the lock: \(renewed.lockedUntil) after \(session.lockedUntil)")
            try expectSameMillisecond(renewed.lockedUntil, adding(.seconds(60), to: context.clock.now()), "renewed until now + lockDuration")
            try expectEqual(renewed.sessionId, "a", "the same session")
            context.clock.advance(by: .seconds(20))  // past the original expiry, before the renewed one
            try await expectError(.sessionCannotBeLocked, "the renewed session is still held") { try await broker.accept(sessionQueue, "a") }
            let received = try await broker.receiveNow(from: renewed)
            try expectEqual(received.map(\.text), ["a1"], "the holder receives past the original expiry")
            try await broker.complete(try expectNotNil(received.first?.lockToken, "lock token"))
        },

        ConformanceCase(name: "sessions.expiredSessionLock", guarantee: "§4.6, §4.13") { context in
            let broker = context.broker
            try await createSessionQueue(broker, lockDuration: .seconds(30))
            try await broker.sendTexts(["a1", "a2"], to: sessionQueue, sessionId: "a")
            let session = try await broker.accept(sessionQueue, "a")
            let first = try await broker.receiveNow(from: session, maxCount: 1)
            let token = try expectNotNil(first.first?.lockToken, "lock token")
            context.clock.advance(by: .seconds(30))
            try await expectUnchanged(broker, [sessionQueue], "settling after the session lock expired") {
                try await expectError(.sessionLockLost, "complete after the session lock expired") { try await broker.complete(token) }
                try await expectError(.sessionLockLost, "receive with the expired session lock") { try await broker.receiveNow(from: session) }
            }
            let taken = try await broker.accept(sessionQueue, "a")
            let again = try await broker.receiveNow(from: taken)
            try expectEqual(again.map(\.text), ["a1", "a2"], "the new holder gets the unsettled messages, in order")
            try expectEqual(again.map(\.deliveryCount), [2, 1], "delivery counts")
        },

        ConformanceCase(name: "sessions.oldHolderFailsAfterReaccept", guarantee: "§4.6, §4.13") { context in
            let broker = context.broker
            try await createSessionQueue(broker, lockDuration: .seconds(30))
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            let old = try await broker.accept(sessionQueue, "a")
            let oldToken = try expectNotNil(try await broker.receiveNow(from: old).first?.lockToken, "lock token")
            context.clock.advance(by: .seconds(30))
            let new = try await broker.accept(sessionQueue, "a")
            let newMessage = try await broker.receiveNow(from: new)
            let newToken = try expectNotNil(newMessage.first?.lockToken, "the new holder's token")
            try await expectUnchanged(broker, [sessionQueue], "the old holder settling") {
                try await expectError(oneOf: [.lockLost, .sessionLockLost], "the old holder's complete") { try await broker.complete(oldToken) }
                try await expectError(oneOf: [.lockLost, .sessionLockLost], "the old holder's abandon") { try await broker.abandon(oldToken) }
                try await expectError(.sessionLockLost, "the old holder's receive") { try await broker.receiveNow(from: old) }
                try await expectError(.sessionLockLost, "the old holder's renewSessionLock") { try await broker.renewSessionLock(old) }
                try await expectError(.sessionLockLost, "the old holder's setSessionState") { try await broker.setSessionState(Data("x".utf8), for: old) }
            }
            try expectEqual(try await broker.sessionState(new), nil, "the old holder wrote no state")
            try await broker.complete(newToken)
            try await expectCounts(broker, sessionQueue, EntityCounts(), "the new holder completed it")
        },

        ConformanceCase(name: "sessions.releaseLetsOthersAccept", guarantee: "§4.6") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            try await broker.sendTexts(["a1", "a2"], to: sessionQueue, sessionId: "a")
            let first = try await broker.accept(sessionQueue, "a")
            let received = try await broker.receiveNow(from: first, maxCount: 1)
            let token = try expectNotNil(received.first?.lockToken, "lock token")
            try await broker.releaseSession(first)
            let second = try await broker.accept(sessionQueue, nil)
            try expectEqual(second.sessionId, "a", "a released session can be accepted")
            try await expectError(oneOf: [.lockLost, .sessionLockLost], "the releaser's token") { try await broker.complete(token) }
            let again = try await broker.receiveNow(from: second)
            try expectEqual(again.map(\.text), ["a1", "a2"], "the unsettled message comes again, first")
            try expectEqual(again.first?.deliveryCount, 2, "a1's deliveryCount")
        },

        ConformanceCase(name: "sessions.maxDeliveryCountApplies", guarantee: "§4.4, §4.6") { context in
            let broker = context.broker
            try await createSessionQueue(broker, maxDeliveryCount: 2)
            try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            let session = try await broker.accept(sessionQueue, "a")
            for delivery in 1...2 {
                let message = try await broker.receiveNow(from: session, maxCount: 1)
                try expectEqual(message.map(\.deliveryCount), [delivery], "delivery \(delivery)")
                try await broker.abandon(try expectNotNil(message.first?.lockToken, "lock token"))
            }
            try expectEqual(try await broker.receiveNow(from: session), [], "after maxDeliveryCount deliveries")
            let dead = try await broker.peekAll(sessionQueue.deadLetter)
            try expectEqual(dead.map(\.text), ["a1"], "dead-lettered")
            try expectEqual(dead.first?.deadLetterReason, DeadLetterReason.maxDeliveryCountExceeded, "deadLetterReason")
            try expectEqual(dead.first?.message.sessionId, "a", "the dead letter keeps its sessionId")
            try await expectCounts(broker, sessionQueue, EntityCounts(deadLettered: 1), "counts")
        },

        ConformanceCase(name: "sessions.parkOnDeadLetterAndResume", guarantee: "§4.12, parkSessionOnDeadLetter") { context in
            let broker = context.broker
            try await createSessionQueue(broker, park: true)
            let numbers = try await broker.sendTexts(["m1", "m2", "m3"], to: sessionQueue, sessionId: "s")
            try await broker.sendTexts(["t1"], to: sessionQueue, sessionId: "t")
            let session = try await broker.accept(sessionQueue, "s")
            let m1 = try await broker.receiveNow(from: session, maxCount: 1)
            try expectEqual(m1.map(\.text), ["m1"], "first")
            try await broker.deadLetter(try expectNotNil(m1.first?.lockToken, "lock token"), reason: "Poison", description: "parks s")
            try expectEqual(try await broker.receiveNow(from: session), [], "the parked session yields nothing")
            try await broker.releaseSession(session)
            let next = try await broker.accept(sessionQueue, nil)
            try expectEqual(next.sessionId, "t", "acceptSession(nil) skips the parked session")
            try await broker.releaseSession(next)
            let t = try await broker.accept(sessionQueue, nil)
            try expectEqual(t.sessionId, "t", "again t, never the parked s")
            try await broker.releaseSession(t)

            let dead = try await receiveOne(broker, from: sessionQueue.deadLetter, "the dead letter")
            try expectEqual(dead.text, "m1", "the dead letter")
            try await broker.resubmit(try expectNotNil(dead.lockToken, "the dead letter's token"))
            try expectEqual(try await broker.peekAll(sessionQueue.deadLetter), [], "the dead-letter queue after resubmit")
            let peeked = try await broker.peekAll(sessionQueue).filter { $0.message.sessionId == "s" }
            try expectEqual(peeked.map(\.sequenceNumber), numbers, "original sequence numbers")
            try expectEqual(peeked.first?.deliveryCount, 0, "the resubmitted message's deliveryCount")

            let resumed = try await broker.accept(sessionQueue, "s")
            let received = try await broker.receiveNow(from: resumed)
            try expectEqual(received.map(\.text), ["m1", "m2", "m3"], "the session resumes in its original order")
            try expectEqual(received.map(\.sequenceNumber), numbers, "with the original sequence numbers")
            try expectEqual(received.first?.deliveryCount, 1, "m1 delivered once since resubmit")
        },

        ConformanceCase(name: "sessions.withoutParkDeadLetterDoesNotBlock", guarantee: "§4.12") { context in
            let broker = context.broker
            try await createSessionQueue(broker, park: false)
            try await broker.sendTexts(["m1", "m2"], to: sessionQueue, sessionId: "s")
            let session = try await broker.accept(sessionQueue, "s")
            let m1 = try await broker.receiveNow(from: session, maxCount: 1)
            try await broker.deadLetter(try expectNotNil(m1.first?.lockToken, "lock token"), reason: "Poison", description: nil)
            try expectEqual(try await broker.receiveNow(from: session).map(\.text), ["m2"], "without parking the session goes on")
        },

        ConformanceCase(name: "sessions.deferredReceivedBySequenceNumber", guarantee: "§4.6, §4.7") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            try await broker.sendTexts(["a1", "a2"], to: sessionQueue, sessionId: "a")
            try await broker.sendTexts(["b1"], to: sessionQueue, sessionId: "b")
            let session = try await broker.accept(sessionQueue, "a")
            let received = try await broker.receiveNow(from: session)
            try expectEqual(received.map(\.text), ["a1", "a2"], "the session's messages")
            let firstToken = try expectNotNil(received[0].lockToken, "a1's lock token")
            try await broker.defer(firstToken)
            try await broker.complete(try expectNotNil(received[1].lockToken, "a2's lock token"))
            try expectEqual(try await broker.receiveNow(from: session), [], "a session receive skips the deferred message")
            try await expectCounts(broker, sessionQueue, EntityCounts(active: 1, deferred: 1), "a1 deferred, b1 untouched")
            try await expectError(.sessionRequired, "receiveDeferred from the session entity, without its session") {
                try await broker.receiveDeferred(from: sessionQueue, sequenceNumbers: [received[0].sequenceNumber])
            }

            let deferred = try await broker.receiveDeferred(from: session, sequenceNumbers: [received[0].sequenceNumber])
            try expectEqual(deferred.map(\.sequenceNumber), [received[0].sequenceNumber], "the session's deferred message, by number")
            try expectEqual(deferred[0].text, "a1", "its body")
            try expectEqual(deferred[0].message.sessionId, "a", "its session")
            try expectEqual(deferred[0].state, .deferred, "its state")
            try expectEqual(deferred[0].deliveryCount, 2, "its delivery count: the session receive, then this one")
            let token = try expectNotNil(deferred[0].lockToken, "it is locked")
            try expect(token != firstToken, "with a fresh token")
            try expectSameMillisecond(deferred[0].lockedUntil, session.lockedUntil, "locked for as long as the session lock")
            try await expectCounts(broker, sessionQueue, EntityCounts(active: 1, locked: 1), "a1 locked")
            try await expectError(.messageNotFound, "a deferred message the holder has locked already") {
                try await broker.receiveDeferred(from: session, sequenceNumbers: [received[0].sequenceNumber])
            }
            try await broker.complete(token)
            try await expectCounts(broker, sessionQueue, EntityCounts(active: 1), "a1 completed, b1 untouched")
        },

        ConformanceCase(name: "sessions.deferredOfAnotherSessionOrNotDeferredNotFound", guarantee: "§4.6, §4.7") { context in
            let broker = context.broker
            try await createSessionQueue(broker)
            let a = try await broker.sendTexts(["a1", "a2"], to: sessionQueue, sessionId: "a")
            let b = try await broker.sendTexts(["b1"], to: sessionQueue, sessionId: "b")
            let other = try await broker.accept(sessionQueue, "b")
            try await broker.defer(try expectNotNil(try await broker.receiveNow(from: other).first?.lockToken, "b1's lock token"))
            try await broker.releaseSession(other)
            let session = try await broker.accept(sessionQueue, "a")
            let first = try await broker.receiveNow(from: session, maxCount: 1)
            try expectEqual(first.map(\.text), ["a1"], "a1")
            try await broker.defer(try expectNotNil(first.first?.lockToken, "a1's lock token"))
            try await expectUnchanged(broker, [sessionQueue], "receiveDeferred of numbers that are not the session's deferred messages") {
                try await expectError(.messageNotFound, "another session's deferred message") {
                    try await broker.receiveDeferred(from: session, sequenceNumbers: [b[0]])
                }
                try await expectError(.messageNotFound, "a message of the session that is not deferred") {
                    try await broker.receiveDeferred(from: session, sequenceNumbers: [a[1]])
                }
                try await expectError(.messageNotFound, "an unknown sequence number") {
                    try await broker.receiveDeferred(from: session, sequenceNumbers: [999])
                }
                try await expectError(.messageNotFound, "the session's deferred message beside another session's: none is received") {
                    try await broker.receiveDeferred(from: session, sequenceNumbers: [a[0], b[0]])
                }
                try await expectError(.messageNotFound, "a sequence number asked for twice") {
                    try await broker.receiveDeferred(from: session, sequenceNumbers: [a[0], a[0]])
                }
                try await expectError(.invalidArgument, "no sequence number") { try await broker.receiveDeferred(from: session, sequenceNumbers: []) }
            }
            try await expectCounts(broker, sessionQueue, EntityCounts(active: 1, deferred: 2), "nothing was received")
            let deferred = try await broker.receiveDeferred(from: session, sequenceNumbers: [a[0]])
            try expectEqual(deferred.map(\.text), ["a1"], "the session's own deferred message")
            try expectEqual(try await broker.receiveNow(from: session).map(\.text), ["a2"], "the session goes on in order")
        },

        ConformanceCase(name: "sessions.deferredLockedAsTheSessionsMessages", guarantee: "§4.6, §4.13") { context in
            let broker = context.broker
            try await createSessionQueue(broker, lockDuration: .seconds(30))
            let numbers = try await broker.sendTexts(["a1"], to: sessionQueue, sessionId: "a")
            let first = try await broker.accept(sessionQueue, "a")
            try await broker.defer(try expectNotNil(try await broker.receiveNow(from: first).first?.lockToken, "lock token"))
            // Abandoned: unlocked, still deferred, the delivery counted.
            let abandoned = try await broker.receiveDeferred(from: first, sequenceNumbers: numbers)
            try await broker.abandon(try expectNotNil(abandoned.first?.lockToken, "lock token"))
            try expectEqual(try await broker.receiveNow(from: first), [], "an abandoned deferred message stays deferred")
            // The lock lasts as long as the session's: past the message lock duration once renewed.
            let held = try await broker.receiveDeferred(from: first, sequenceNumbers: numbers)
            try expectEqual(held.map(\.deliveryCount), [3], "each lock counts")
            context.clock.advance(by: .seconds(20))
            let renewed = try await broker.renewSessionLock(first)
            context.clock.advance(by: .seconds(20))  // past the first session lock, before the renewed one
            try expectSameMillisecond(
                try await broker.renewLock(try expectNotNil(held.first?.lockToken, "lock token")), renewed.lockedUntil,
                "renewing the message's lock gives the session's expiry")
            // Released with its session: the holder's token is dead, the message deferred again.
            try await broker.releaseSession(renewed)
            try await expectError(oneOf: [.lockLost, .sessionLockLost], "the releaser's token") {
                try await broker.complete(try expectNotNil(held.first?.lockToken, "lock token"))
            }
            try await expectError(.sessionLockLost, "receiveDeferred with the released session lock") {
                try await broker.receiveDeferred(from: renewed, sequenceNumbers: numbers)
            }
            try await expectCounts(broker, sessionQueue, EntityCounts(deferred: 1), "deferred again once its session is released")
            // Lost with its session: the lock expires with the session lock.
            let second = try await broker.accept(sessionQueue, "a")
            try expectEqual(try await broker.receiveNow(from: second), [], "the next holder does not receive it as a session message")
            let again = try await broker.receiveDeferred(from: second, sequenceNumbers: numbers)
            try expectEqual(again.map(\.deliveryCount), [4], "the next holder receives it by number")
            context.clock.advance(by: .seconds(30))
            try await expectUnchanged(broker, [sessionQueue], "settling after the session lock expired") {
                try await expectError(.sessionLockLost, "complete after the session lock expired") {
                    try await broker.complete(try expectNotNil(again.first?.lockToken, "lock token"))
                }
                try await expectError(.sessionLockLost, "receiveDeferred with the expired session lock") {
                    try await broker.receiveDeferred(from: second, sequenceNumbers: numbers)
                }
            }
            let third = try await broker.accept(sessionQueue, "a")
            let last = try await broker.receiveDeferred(from: third, sequenceNumbers: numbers)
            try expectEqual(last.map(\.text), ["a1"], "the holder after the expiry receives it")
            try await broker.complete(try expectNotNil(last.first?.lockToken, "lock token"))
            try await expectCounts(broker, sessionQueue, EntityCounts(), "completed")
        },

        ConformanceCase(name: "sessions.deferredMaxDeliveryCountApplies", guarantee: "§4.4, §4.6, §4.12") { context in
            let broker = context.broker
            try await createSessionQueue(broker, maxDeliveryCount: 3, park: true)
            let numbers = try await broker.sendTexts(["spent", "fresh", "later"], to: sessionQueue, sessionId: "a")
            let session = try await broker.accept(sessionQueue, "a")
            for message in try await broker.receiveNow(from: session, maxCount: 2) {
                try await broker.defer(try expectNotNil(message.lockToken, "lock token"))
            }
            // "spent" is delivered a second and a third time by number: the maximum.
            for delivery in 2...3 {
                let again = try await broker.receiveDeferred(from: session, sequenceNumbers: [numbers[0]])
                try expectEqual(again.map(\.deliveryCount), [delivery], "delivery \(delivery) of 'spent'")
                try await broker.defer(try expectNotNil(again.first?.lockToken, "lock token"))
            }
            // A fourth lock would exceed maxDeliveryCount: the message goes to the dead-letter queue instead.
            let fourth = try await broker.receiveDeferred(from: session, sequenceNumbers: [numbers[0], numbers[1]])
            try expectEqual(fourth.map(\.sequenceNumber), [numbers[1]], "only the message with deliveries left is received")
            try expectEqual(fourth.map(\.deliveryCount), [2], "its count")
            let dead = try await broker.peekAll(sessionQueue.deadLetter)
            try expectEqual(dead.map(\.sequenceNumber), [numbers[0]], "the dead-letter queue holds it")
            try expectEqual(dead.first?.deadLetterReason, DeadLetterReason.maxDeliveryCountExceeded, "its reason")
            try expectEqual(dead.first?.message.sessionId, "a", "it keeps its session")
            // The dead letter parks the session (parkSessionOnDeadLetter): its next message waits,
            // and its deferred messages are still received by number.
            try expectEqual(try await broker.receiveNow(from: session), [], "the parked session gives no next message")
            try await broker.defer(try expectNotNil(fourth.first?.lockToken, "lock token"))
            let parked = try await broker.receiveDeferred(from: session, sequenceNumbers: [numbers[1]])
            try expectEqual(parked.map(\.text), ["fresh"], "a parked session's deferred message, by number")
            try expectEqual(parked.map(\.deliveryCount), [3], "its last delivery")
            try await broker.complete(try expectNotNil(parked.first?.lockToken, "lock token"))
            try await expectCounts(broker, sessionQueue, EntityCounts(active: 1, deadLettered: 1), "'later' waits for the resubmit")
        },
    ]
}
