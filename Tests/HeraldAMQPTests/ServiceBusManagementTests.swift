import Foundation
import HeraldAMQP
import HeraldCore
import HeraldSQLite
import HeraldWire
import Testing

@testable import HeraldAMQPServer

/// `$management` requests as the Service Bus SDKs write them: parsed into operations, their lock
/// tokens looked up on the connection, bad ones refused with the status the SDKs map.
struct ServiceBusManagementTests {
    static func request(_ operation: String, _ body: [(String, AMQPValue)]) -> AMQPMessage {
        var message = AMQPMessage(body: .value(.map(body.map { AMQPMapEntry(.string($0.0), $0.1) })))
        message.applicationProperties = [AMQPMapEntry(.string("operation"), .string("com.microsoft:\(operation)"))]
        return message
    }

    static func operation(_ message: AMQPMessage, locks: [UUID: LockToken] = [:], sessions: [String: SessionLock] = [:]) throws(ServiceBusManagement.Failure)
        -> ServiceBusManagement.Operation
    {
        try ServiceBusManagement.operation(of: message, lock: { locks[$0] }, session: { sessions[$0] })
    }

    @Test func renewLockLooksUpEachTokenAndMarksTheUnknownOnes() throws {
        let known = UUID()
        let token = LockToken(entity: .queue("orders"), sequenceNumber: 4, nonce: UUID())
        let unknown = UUID()
        let operation = try Self.operation(Self.request("renew-lock", [("lock-tokens", .array([.uuid(known), .uuid(unknown)]))]), locks: [known: token])
        #expect(operation == .renewLocks([known, unknown], [token, nil]))
        #expect(operation.right == .listen)
    }

    @Test func updateDispositionReadsTheStatusAndTheDeadLetterReason() throws {
        let lock = UUID()
        let suspended = try Self.operation(
            Self.request(
                "update-disposition",
                [
                    ("disposition-status", .string("suspended")), ("lock-tokens", .array([.uuid(lock)])), ("deadletter-reason", .string("bad")),
                    ("deadletter-description", .string("very bad")),
                ]))
        #expect(suspended == .updateDisposition(.deadLetter(reason: "bad", description: "very bad"), [lock], [nil]))
        let deferred = try Self.operation(
            Self.request("update-disposition", [("disposition-status", .string("defered")), ("lock-tokens", .array([.uuid(lock)]))]))
        #expect(deferred == .updateDisposition(.defer, [lock], [nil]))
    }

    @Test func peekAndReceiveBySequenceNumberAreBounded() throws {
        let peek = try Self.operation(Self.request("peek-message", [("from-sequence-number", .long(7)), ("message-count", .int(1_000_000))]))
        #expect(peek == .peek(from: 7, count: ServiceBusManagement.maxItems, sessionId: nil))
        let inSession = try Self.operation(
            Self.request("peek-message", [("from-sequence-number", .long(1)), ("message-count", .int(5)), ("session-id", .string("A"))]))
        #expect(inSession == .peek(from: 1, count: 5, sessionId: "A"))
        let tooMany = Array(repeating: AMQPValue.long(1), count: ServiceBusManagement.maxItems + 1)
        #expect(throws: ServiceBusManagement.Failure.self) {
            try Self.operation(Self.request("receive-by-sequence-number", [("sequence-numbers", .array(tooMany))]))
        }
        let deferred = try Self.operation(
            Self.request("receive-by-sequence-number", [("sequence-numbers", .array([.long(3)])), ("receiver-settle-mode", .uint(0))]))
        #expect(deferred == .receiveDeferred([3], mode: .receiveAndDelete))
    }

    @Test func sessionOperationsNeedASessionTheConnectionHolds() throws {
        let lock = SessionLock(entity: .queue("orders"), sessionId: "A", nonce: UUID(), lockedUntil: Date())
        let held = try Self.operation(Self.request("get-session-state", [("session-id", .string("A"))]), sessions: ["A": lock])
        #expect(held == .sessionState("A", lock))
        let other = try Self.operation(Self.request("set-session-state", [("session-id", .string("B")), ("session-state", .binary([1, 2]))]))
        #expect(other == .setSessionState("B", nil, Data([1, 2])))
    }

    @Test func receiveBySequenceNumberWithASessionIdIsTheSessions() throws {
        let lock = SessionLock(entity: .queue("orders"), sessionId: "A", nonce: UUID(), lockedUntil: Date())
        let held = try Self.operation(
            Self.request("receive-by-sequence-number", [("sequence-numbers", .array([.long(3), .long(5)])), ("session-id", .string("A"))]),
            sessions: ["A": lock])
        #expect(held == .receiveSessionDeferred([3, 5], mode: .peekLock, "A", lock))
        #expect(held.right == .listen)
        let other = try Self.operation(
            Self.request("receive-by-sequence-number", [("sequence-numbers", .array([.long(3)])), ("session-id", .string("B"))]), sessions: ["A": lock])
        #expect(other == .receiveSessionDeferred([3], mode: .peekLock, "B", nil))
        let plain = try Self.operation(Self.request("receive-by-sequence-number", [("sequence-numbers", .array([.long(3)]))]), sessions: ["A": lock])
        #expect(plain == .receiveDeferred([3], mode: .peekLock))
    }

    @Test func whatHeraldDoesNotServeIsRefusedWithNotImplemented() {
        for operation in ["no-such-operation", "get-rules"] {
            #expect {
                try Self.operation(Self.request(operation, []))
            } throws: { error in
                (error as? ServiceBusManagement.Failure)?.status == 501 && (error as? ServiceBusManagement.Failure)?.condition == AMQPCondition.notImplemented
            }
        }
        var notAMap = Self.request("renew-lock", [])
        notAMap.body = .value(.string("lock"))
        #expect(throws: ServiceBusManagement.Failure(status: 400, condition: AMQPCondition.decodeError, description: "a $management request's body is a map")) {
            try Self.operation(notAMap)
        }
    }

    /// `cancel-scheduled-message` on a topic's `$management` cancels by the topic's sequence
    /// numbers (what its `schedule-message` answered): every subscription's copy goes.
    @Test func cancelScheduledOnATopicCancelsEveryCopy() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createTopic("events")
            try await broker.createSubscription("one", topic: "events")
            try await broker.createSubscription("two", topic: "events")
            let number = try await broker.schedule(Message(text: "later"), at: Date().addingTimeInterval(3600), to: .topic("events"))
            let topic = ServiceBusEntity(name: "events", subscription: nil, isDeadLetter: false)
            func cancel() async -> AMQPValue? {
                let call = ServiceBusLinks.ManagementCall(
                    channel: 0, answerHandle: nil, correlation: .string("c"), entity: topic, operation: .cancelScheduled([number]))
                let answer = await ServiceBusManagement.perform(call, broker: broker).response
                return answer.applicationProperties?.first { $0.key == .string("statusCode") }?.value
            }
            #expect(await cancel() == .int(200))
            for subscription in ["one", "two"] {
                #expect(try await broker.counts(of: .subscription(subscription, of: "events")) == EntityCounts(), "\(subscription)'s copy is gone")
            }
            #expect(await cancel() == .int(404), "cancelled already: message not found")
        }
    }

    @Test func answersCarryTheStatusTheSDKsRead() {
        let answer = ServiceBusManagement.failure(to: .string("request-1"), HeraldError(.lockLost, "gone"))
        let properties = Dictionary(uniqueKeysWithValues: (answer.applicationProperties ?? []).compactMap { entry in entry.key.text.map { ($0, entry.value) } })
        #expect(properties["statusCode"] == .int(410))
        #expect(properties["errorCondition"] == .symbol("com.microsoft:message-lock-lost"))
        #expect(answer.properties?.correlationId == .string("request-1"))
    }
}
