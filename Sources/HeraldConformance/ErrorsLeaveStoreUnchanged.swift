import Foundation
import HeraldCore

// GUARANTEES.md §4.3 and §4 limits: a rejected operation changes nothing. Each case fills a queue with
// one message in every state, then checks that entity lists, counts, messages and dead letters
// are the same before and after the failing calls.

extension BrokerConformance {
    static let unchangedCases: [ConformanceCase] = [
        ConformanceCase(name: "unchanged.invalidName", guarantee: "§2") { context in
            let broker = context.broker
            _ = try await populateQueue(broker, clock: context.clock)
            try await broker.createTopic("events")
            try await expectUnchanged(broker, [queuePath], "invalid names") {
                try await expectError(.invalidName, "createQueue(\"a b\")") { try await broker.createQueue("a b") }
                try await expectError(.invalidName, "createTopic(\"-a\")") { try await broker.createTopic("-a") }
                try await expectError(.invalidName, "createSubscription(\"a/b\")") { try await broker.createSubscription("a/b", topic: "events") }
                try await expectError(.invalidName, "send to \"a b\"") { try await broker.send(Message(text: "m"), to: .queue("a b")) }
                try await expectError(.invalidName, "receive from \"\"") { try await broker.receiveNow(from: .queue("")) }
                try await expectError(.invalidName, "deleteQueue(\"a/b\")") { try await broker.deleteQueue("a/b") }
            }
            try expectEqual(try await broker.listSubscriptions(topic: "events"), [], "no subscription was created")
        },

        ConformanceCase(name: "unchanged.unknownEntity", guarantee: "§2") { context in
            let broker = context.broker
            _ = try await populateQueue(broker, clock: context.clock)
            try await expectUnchanged(broker, [queuePath], "unknown entities") {
                try await expectError(.entityNotFound, "send to an unknown queue") { try await broker.send(Message(text: "m"), to: .queue("nowhere")) }
                try await expectError(.entityNotFound, "a batch to an unknown topic") {
                    try await broker.send([Message(text: "m"), Message(text: "n")], to: .topic("nowhere"))
                }
                try await expectError(.entityNotFound, "receive from an unknown queue") { try await broker.receiveNow(from: .queue("nowhere")) }
                try await expectError(.entityNotFound, "deleteQueue of an unknown queue") { try await broker.deleteQueue("nowhere") }
                try await expectError(.entityNotFound, "createSubscription on an unknown topic") { try await broker.createSubscription("s", topic: "nowhere") }
                try await expectError(.entityNotFound, "cancelScheduled in an unknown queue") { try await broker.cancelScheduled([1], in: .queue("nowhere")) }
            }
        },

        ConformanceCase(name: "unchanged.oversizedBody", guarantee: "§4 limits") { context in
            let broker = context.broker
            _ = try await populateQueue(broker, clock: context.clock, options: EntityOptions(maxMessageSize: 64))
            try await expectUnchanged(broker, [queuePath], "an oversized body") {
                try await expectError(.messageTooLarge, "a 65-byte body") { try await broker.send(Message(body: body(size: 65)), to: queuePath) }
                try await expectError(.messageTooLarge, "a batch with one 65-byte body") {
                    try await broker.send([Message(body: body(size: 64)), Message(body: body(size: 65))], to: queuePath)
                }
                try await expectError(.messageTooLarge, "a scheduled 65-byte body") {
                    try await broker.schedule(Message(body: body(size: 65)), at: adding(.seconds(5), to: context.clock.now()), to: queuePath)
                }
            }
        },

        ConformanceCase(name: "unchanged.staleLockToken", guarantee: "§4.3, §4.13") { context in
            let broker = context.broker
            let populated = try await populateQueue(broker, clock: context.clock)
            let stale = populated.completedToken
            let forged = LockToken(entity: queuePath, sequenceNumber: populated.locked.sequenceNumber, nonce: UUID())
            try await expectUnchanged(broker, [queuePath], "stale and forged lock tokens") {
                for (label, token) in [("a completed message's token", stale), ("a forged token of the locked message", forged)] {
                    if token == stale {
                        // Completing again is a retry, which changes nothing either.
                        try expectEqual(try await broker.complete(token), .alreadySettled, "complete with \(label)")
                    } else {
                        try await expectError(.lockLost, "complete with \(label)") { try await broker.complete(token) }
                        try await expectError(.lockLost, "complete([valid, \(label)])") {
                            try await broker.complete([try expectNotNil(populated.locked.lockToken, "lock token"), token])
                        }
                    }
                    try await expectError(.lockLost, "abandon with \(label)") { try await broker.abandon(token) }
                    try await expectError(.lockLost, "defer with \(label)") { try await broker.defer(token) }
                    try await expectError(.lockLost, "deadLetter with \(label)") { try await broker.deadLetter(token, reason: "x", description: nil) }
                    try await expectError(.lockLost, "renewLock with \(label)") { try await broker.renewLock(token) }
                }
            }
        },

        ConformanceCase(name: "unchanged.sessionlessSendToSessionQueue", guarantee: "§4.6") { context in
            let broker = context.broker
            let sessions = EntityPath.queue("sessions")
            _ = try await populateQueue(broker, clock: context.clock)
            try await broker.createQueue(sessions.name, options: EntityOptions(requiresSession: true))
            try await broker.sendTexts(["a1", "a2"], to: sessions, sessionId: "a")
            let session = try await broker.accept(sessions, "a")
            _ = try await broker.receiveNow(from: session, maxCount: 1)
            try await expectUnchanged(broker, [queuePath, sessions], "session-less sends to a session queue") {
                try await expectError(.sessionRequired, "a session-less send") { try await broker.send(Message(text: "m"), to: sessions) }
                try await expectError(.sessionRequired, "a batch with one session-less message") {
                    try await broker.send([Message(text: "ok", sessionId: "a"), Message(text: "m")], to: sessions)
                }
            }
        },
    ]
}
