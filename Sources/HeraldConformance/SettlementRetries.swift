import Foundation
import HeraldCore

// A retried settlement learns what happened (SettlementOutcome): the same lock token settling its
// message the same way again within HeraldLimits.settlementMemory answers alreadySettled and
// changes nothing; a lock lost any other way stays lockLost.

/// Sends `texts` to ``queuePath`` and receives them in one peek-lock receive (one nonce).
private func sendAndReceive(_ broker: any MessageBroker, _ texts: [String]) async throws -> [LockToken] {
    try await broker.sendTexts(texts, to: queuePath)
    let received = try await broker.receiveNow(from: queuePath, maxCount: texts.count)
    try expectEqual(received.map(\.text), texts, "set-up receive")
    return try received.map { try expectNotNil($0.lockToken, "lock token") }
}

extension BrokerConformance {
    static let settlementRetryCases: [ConformanceCase] = [
        ConformanceCase(name: "settlementRetries.completeAgainAnswersAlreadySettled", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let token = try await sendAndReceive(broker, ["m"])[0]
            try expectEqual(try await broker.complete(token), .settled, "the first complete")
            try await expectUnchanged(broker, [queuePath], "completing again") {
                try expectEqual(try await broker.complete(token), .alreadySettled, "complete with the same token again")
                try expectEqual(try await broker.complete([token]), .alreadySettled, "a batch complete with the same token again")
                try await expectError(.lockLost, "abandoning a completed message") { try await broker.abandon(token) }
                try await expectError(.lockLost, "dead-lettering a completed message") {
                    try await broker.deadLetter(token, reason: "Bad", description: nil)
                }
                try await expectError(.lockLost, "renewing the lock of a completed message") { try await broker.renewLock(token) }
            }
            try await expectCounts(broker, queuePath, EntityCounts(), "the message is gone")
        },

        ConformanceCase(name: "settlementRetries.rememberedForTheWindowOnly", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let token = try await sendAndReceive(broker, ["m"])[0]
            try await broker.complete(token)
            context.clock.advance(by: HeraldLimits.settlementMemory - oneMillisecond)
            try expectEqual(try await broker.complete(token), .alreadySettled, "1 ms before the window ends")
            context.clock.advance(by: oneMillisecond)
            try await expectError(.lockLost, "once the window has passed") { try await broker.complete(token) }
        },

        ConformanceCase(name: "settlementRetries.eachKindAgainAnswersAlreadySettled", guarantee: "§4.3, §4.7") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let tokens = try await sendAndReceive(broker, ["abandoned", "deferred", "dead"])
            try expectEqual(try await broker.abandon(tokens[0]), .settled, "abandon")
            try expectEqual(try await broker.defer(tokens[1]), .settled, "defer")
            try expectEqual(try await broker.deadLetter(tokens[2], reason: "Bad", description: nil), .settled, "dead-letter")
            try await expectUnchanged(broker, [queuePath], "settling again the same way") {
                try expectEqual(try await broker.abandon(tokens[0]), .alreadySettled, "abandon again")
                try expectEqual(try await broker.abandon(tokens[0], delay: .seconds(5)), .alreadySettled, "abandon again, with a delay")
                try expectEqual(try await broker.defer(tokens[1]), .alreadySettled, "defer again")
                try expectEqual(try await broker.deadLetter(tokens[2], reason: "Other", description: nil), .alreadySettled, "dead-letter again")
            }
            try await expectUnchanged(broker, [queuePath], "settling again another way") {
                try await expectError(.lockLost, "completing an abandoned message") { try await broker.complete(tokens[0]) }
                try await expectError(.lockLost, "completing a deferred message") { try await broker.complete(tokens[1]) }
                try await expectError(.lockLost, "abandoning a deferred message") { try await broker.abandon(tokens[1]) }
                try await expectError(.lockLost, "completing a dead-lettered message") { try await broker.complete(tokens[2]) }
                try await expectError(.lockLost, "completing them in a batch") { try await broker.complete(tokens) }
            }
            // The abandoned message goes to another receiver; the old token's retry changes nothing.
            let again = try await receiveOne(broker, from: queuePath, "the abandoned message again")
            try expectEqual(again.text, "abandoned", "the abandoned message")
            try expectEqual(try await broker.abandon(tokens[0]), .alreadySettled, "abandon with the old token")
            try expectEqual(try await broker.complete(try expectNotNil(again.lockToken, "lock token")), .settled, "the new holder's lock holds")
            // A dead letter's resubmit is a settlement too.
            let deadLetter = try await receiveOne(broker, from: queuePath.deadLetter, "the dead letter")
            let deadLetterToken = try expectNotNil(deadLetter.lockToken, "lock token")
            try expectEqual(try await broker.resubmit(deadLetterToken), .settled, "resubmit")
            try expectEqual(try await broker.resubmit(deadLetterToken), .alreadySettled, "resubmit again")
            try await expectCounts(broker, queuePath, EntityCounts(active: 1, deferred: 1), "the resubmitted and the deferred message")
        },

        ConformanceCase(name: "settlementRetries.lostLockStaysLockLost", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(10)))
            let expired = try await sendAndReceive(broker, ["m"])[0]
            context.clock.advance(by: .seconds(10))
            try await expectError(.lockLost, "completing with an expired lock") { try await broker.complete(expired) }
            try await expectError(.lockLost, "abandoning with an expired lock") { try await broker.abandon(expired) }
            let current = try expectNotNil(try await receiveOne(broker, from: queuePath, "redelivered").lockToken, "lock token")
            try await expectError(.lockLost, "completing with a superseded lock") { try await broker.complete(expired) }
            try expectEqual(try await broker.complete(current), .settled, "the current lock completes")
            try await expectError(.lockLost, "the superseded lock still cannot") { try await broker.complete(expired) }
            try await expectError(.lockLost, "a token never issued") {
                try await broker.complete(LockToken(entity: queuePath, sequenceNumber: current.sequenceNumber, nonce: UUID()))
            }
        },

        ConformanceCase(name: "settlementRetries.onlyTheSettledTokensOfADeliveryAreRemembered", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName, options: EntityOptions(lockDuration: .seconds(10)))
            let tokens = try await sendAndReceive(broker, (0..<10).map { "m\($0)" })
            var settled = tokens
            let unsettled = settled.remove(at: 5)
            try expectEqual(try await broker.complete(settled), .settled, "all but the sixth, in one call")
            try expectEqual(try await broker.complete(settled), .alreadySettled, "the same batch again")
            try expectEqual(try await broker.complete(Array(settled[2..<6])), .alreadySettled, "part of it again")
            try expectEqual(try await broker.complete(settled[8]), .alreadySettled, "its last token alone")
            context.clock.advance(by: .seconds(11))
            try await expectError(.lockLost, "the token between them, whose lock expired") { try await broker.complete(unsettled) }
            try await expectError(.lockLost, "a batch holding it") { try await broker.complete([settled[0], unsettled]) }
        },

        ConformanceCase(name: "settlementRetries.batchCountsEarlierCompletions", guarantee: "§4.3") { context in
            let broker = context.broker
            try await broker.createQueue(queueName)
            let tokens = try await sendAndReceive(broker, ["a", "b", "c"])
            try await broker.complete(tokens[0])
            try expectEqual(try await broker.complete(tokens), .settled, "a batch completing the rest")
            try await expectCounts(broker, queuePath, EntityCounts(), "all three are gone")
            try expectEqual(try await broker.complete(tokens), .alreadySettled, "the whole batch again")
        },

        ConformanceCase(name: "settlementRetries.sessionMessage", guarantee: "§4.3, §4.6") { context in
            let broker = context.broker
            let sessions = EntityPath.queue("sq")
            try await broker.createQueue("sq", options: EntityOptions(requiresSession: true))
            try await broker.send(Message(text: "a1", sessionId: "a"), to: sessions)
            let session = try await broker.accept(sessions, "a")
            let token = try expectNotNil(try await broker.receiveNow(from: session).first?.lockToken, "lock token")
            try expectEqual(try await broker.complete(token), .settled, "complete")
            try expectEqual(try await broker.complete(token), .alreadySettled, "complete again, the session held")
            try await broker.releaseSession(session)
            try expectEqual(try await broker.complete(token), .alreadySettled, "complete again, the session released")
        },

        ConformanceCase(name: "settlementRetries.transactionCompletionsToo", guarantee: "§4.3, §4.8") { context in
            guard let broker = context.broker as? any TransactionalBroker else {
                throw ConformanceFailure("the broker under test is not a TransactionalBroker (GUARANTEES.md §4.8)")
            }
            try await broker.createQueue(queueName)
            let tokens = try await sendAndReceive(broker, ["completed", "deferred"])
            var transaction = BrokerTransaction()
            transaction.complete(tokens[0])
            transaction.defer(tokens[1])
            _ = try await broker.commit(transaction)
            try await expectUnchanged(broker, [queuePath], "the same transaction again") {
                _ = try await broker.commit(transaction)
            }
            try expectEqual(try await broker.complete(tokens[0]), .alreadySettled, "a complete after the transaction's")
            try expectEqual(try await broker.defer(tokens[1]), .alreadySettled, "a defer after the transaction's")
        },

        ConformanceCase(name: "settlementRetries.rememberedAcrossRestart", guarantee: "§4.3, §4.1", requires: [.durableStorage]) { context in
            var broker = context.broker
            try await broker.createQueue(queueName)
            let tokens = try await sendAndReceive(broker, ["completed", "dead"])
            try await broker.complete(tokens[0])
            try await broker.deadLetter(tokens[1], reason: "Bad", description: nil)
            broker = try await context.reopen()
            try expectEqual(try await broker.complete(tokens[0]), .alreadySettled, "complete again after a restart")
            try expectEqual(try await broker.deadLetter(tokens[1], reason: "Bad", description: nil), .alreadySettled, "dead-letter again after a restart")
            try await expectError(.lockLost, "abandon after a restart") { try await broker.abandon(tokens[1]) }
        },
    ]
}
