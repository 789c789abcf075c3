import Foundation
import HeraldAMQP
import HeraldCore
import HeraldSQLite
import NIOCore
import Testing

@testable import HeraldAMQPServer

/// Deferred messages of a session entity over `$management`, as a Service Bus session receiver
/// asks for them: `receive-by-sequence-number` naming the session the connection's receiver holds,
/// then `update-disposition` (with the session id too) to settle them, against a real store.
@Suite(.timeLimit(.minutes(1)))
struct ServiceBusSessionDeferralTests {
    static let orders = EntityPath.queue("orders")
    static let entity = ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false)

    /// A session-enabled `orders` queue holding `texts` in session `A`, over an in-memory store
    /// that reads `clock`.
    static func withSessionQueue(
        _ clock: ManualBrokerClock, _ texts: [String], _ body: (SQLiteBroker, [Int64]) async throws -> Void
    ) async throws {
        try await SQLiteBroker.withInMemoryBroker(configuration: SQLiteBroker.Configuration(clock: clock)) { broker in
            try await broker.createQueue("orders", options: EntityOptions(lockDuration: .seconds(30), requiresSession: true))
            var numbers: [Int64] = []
            for text in texts {
                numbers.append(try #require(try await broker.send(Message(text: text, sessionId: "A"), to: Self.orders).sequenceNumber))
            }
            try await body(broker, numbers)
        }
    }

    /// Links whose session receiver on `orders` holds session `A`, locked in `broker`.
    static func holdingSessionA(_ broker: SQLiteBroker, now: Date) async throws -> (ServiceBusLinks, SessionLock) {
        var links = ServiceBusReceivingTests.links()
        let actions = ServiceBusReceivingTests.attachReceiver(&links, filter: [AMQPMapEntry(ServiceBusLinks.sessionFilter, .string("A"))])
        guard case .acceptSession(let request)? = actions.first else { throw TestFailure("no session accept: \(actions)") }
        let lock = try await broker.acceptSession(on: request.entity, sessionId: "A", maxWaitTime: .zero)
        _ = links.sessionAccepted(request, .success(lock), now: now)
        return (links, lock)
    }

    /// A `$management` request with its message id, encoded.
    static func request(_ operation: String, _ body: [(String, AMQPValue)]) throws -> [UInt8] {
        var message = ServiceBusManagementTests.request(operation, body)
        var properties = AMQPMessage.Properties()
        properties.messageId = .string(UUID().uuidString)
        message.properties = properties
        var buffer = ByteBuffer()
        _ = try buffer.writeAMQPMessage(message)
        return Array(buffer.readableBytesView)
    }

    /// Runs a `$management` request through the links and `broker` as the connection does.
    static func manage(_ links: inout ServiceBusLinks, _ bytes: [UInt8], broker: any MessageBroker, now: Date) async throws -> AMQPMessage {
        let actions = links.managementRequest(bytes, entity: Self.entity, channel: 0, now: now)
        guard case .manage(let call)? = actions.first else { throw TestFailure("the request was not run: \(actions)") }
        let outcome = await ServiceBusManagement.perform(call, broker: broker)
        _ = links.answered(call, outcome, now: now)
        return outcome.response
    }

    /// The answer's status code and error condition.
    static func status(_ answer: AMQPMessage) -> (code: AMQPValue?, condition: AMQPValue?) {
        let properties = Dictionary((answer.applicationProperties ?? []).compactMap { entry in entry.key.text.map { ($0, entry.value) } }) { first, _ in first }
        return (properties["statusCode"], properties["errorCondition"])
    }

    /// The lock tokens of a `receive-by-sequence-number` answer's messages.
    static func lockTokens(_ answer: AMQPMessage) -> [UUID] {
        guard case .value(.map(let fields)) = answer.body, case .list(let items)? = fields.first(where: { $0.key.text == "messages" })?.value else { return [] }
        return items.compactMap { item in
            guard case .map(let entry) = item, case .uuid(let lock)? = entry.first(where: { $0.key.text == "lock-token" })?.value else { return nil }
            return lock
        }
    }

    @Test func aSessionReceiverReceivesItsDeferredMessageByNumberAndSettlesIt() async throws {
        let clock = ManualBrokerClock()
        try await Self.withSessionQueue(clock, ["a1", "a2"]) { broker, numbers in
            let (held, session) = try await Self.holdingSessionA(broker, now: clock.now())
            var links = held
            let received = try await broker.receive(from: session, maxCount: 2, maxWaitTime: .zero)
            try await broker.defer(try #require(received.first?.lockToken))
            try await broker.defer(try #require(received.last?.lockToken))

            // Refused: without a session id (the entity needs one), and for a session the connection does not hold.
            let plain = try await Self.manage(
                &links, try Self.request("receive-by-sequence-number", [("sequence-numbers", .array([.long(numbers[0])]))]), broker: broker, now: clock.now())
            #expect(Self.status(plain).code == .int(400) && Self.status(plain).condition == .symbol(AMQPCondition.notAllowed))
            let other = try await Self.manage(
                &links,
                try Self.request(
                    "receive-by-sequence-number", [("sequence-numbers", .array([.long(numbers[0])])), ("session-id", .string("B"))]),
                broker: broker, now: clock.now())
            #expect(Self.status(other).code == .int(410) && Self.status(other).condition == .symbol(ServiceBusBroker.sessionLockLost))

            // The session's own: locked through the session, one lock token per message.
            let answer = try await Self.manage(
                &links,
                try Self.request(
                    "receive-by-sequence-number",
                    [
                        ("sequence-numbers", .array([.long(numbers[0]), .long(numbers[1])])), ("receiver-settle-mode", .uint(1)),
                        ("session-id", .string("A")),
                    ]),
                broker: broker, now: clock.now())
            #expect(Self.status(answer).code == .int(200))
            let locks = Self.lockTokens(answer)
            try #require(locks.count == 2)
            #expect(locks.allSatisfy { links.locks[$0]?.session == ServiceBusLinks.SessionKey(entity: Self.orders, sessionId: "A") })

            // Renewing the session renews what the connection keeps of its messages' locks.
            clock.advance(by: .seconds(20))
            let renewal = try await Self.manage(
                &links, try Self.request("renew-session-lock", [("session-id", .string("A"))]), broker: broker, now: clock.now())
            #expect(Self.status(renewal).code == .int(200))
            let renewed = try #require(links.sessionLocks[ServiceBusLinks.SessionKey(entity: Self.orders, sessionId: "A")]?.lockedUntil)
            #expect(locks.allSatisfy { links.locks[$0]?.lockedUntil == renewed })
            clock.advance(by: .seconds(20))  // past the session's first lock, before the renewed one

            // Settled through update-disposition, as the SDKs settle what they received by number.
            for (lock, status) in zip(locks, ["completed", "defered"]) {
                let settled = try await Self.manage(
                    &links,
                    try Self.request(
                        "update-disposition",
                        [("disposition-status", .string(status)), ("lock-tokens", .array([.uuid(lock)])), ("session-id", .string("A"))]),
                    broker: broker, now: clock.now())
                #expect(Self.status(settled).code == .int(200), "\(status)")
                #expect(links.locks[lock] == nil)
            }
            #expect(try await broker.counts(of: Self.orders) == EntityCounts(deferred: 1))
            let again = try #require(try await broker.receiveDeferred(from: session, sequenceNumbers: [numbers[1]]).first)
            #expect(again.message.body == Data("a2".utf8) && again.deliveryCount == 3)
        }
    }

    @Test func whatASessionReceiverGotStaysSettleableAfterItRenewsTheSession() async throws {
        let clock = ManualBrokerClock()
        try await Self.withSessionQueue(clock, ["a1"]) { broker, _ in
            var (links, _) = try await Self.holdingSessionA(broker, now: clock.now())
            let request = try #require(ServiceBusReceivingTests.receives(ServiceBusReceivingTests.credit(&links, 1)).first)
            let sent = links.received(request, await ServiceBusBroker.receive(request, broker: broker), now: clock.now())
            let transfer = try #require(try ServiceBusReceivingTests.transfers(sent).first)
            let key = ServiceBusLinks.SessionKey(entity: Self.orders, sessionId: "A")
            #expect(links.locks.values.map(\.session) == [key], "the delivery's lock is its session's")
            clock.advance(by: .seconds(20))
            _ = try await Self.manage(&links, try Self.request("renew-session-lock", [("session-id", .string("A"))]), broker: broker, now: clock.now())
            clock.advance(by: .seconds(20))  // past the session's first lock, before the renewed one
            // Every `$management` request first forgets the locks the connection holds that expired.
            _ = try await Self.manage(&links, try Self.request("get-session-state", [("session-id", .string("A"))]), broker: broker, now: clock.now())
            let disposition = AMQPDisposition(role: .receiver, first: try #require(transfer.deliveryId), settled: false, state: .accepted)
            let settlement = try #require(
                ServiceBusReceivingTests.settlements(links.handle(.disposition(disposition), channel: 0, payload: [], now: clock.now()) { _ in nil }).first,
                "the client still holds the lock")
            let echo = try ServiceBusReceivingTests.dispositions(
                links.settled(settlement, await ServiceBusBroker.settle(settlement, broker: broker), now: clock.now()))
            #expect(echo.map(\.state) == [.accepted])
            #expect(try await broker.counts(of: Self.orders) == EntityCounts())
        }
    }

    @Test func receiveAndDeleteCompletesTheSessionsDeferredMessagesAtOnce() async throws {
        let clock = ManualBrokerClock()
        try await Self.withSessionQueue(clock, ["a1"]) { broker, numbers in
            let (held, session) = try await Self.holdingSessionA(broker, now: clock.now())
            var links = held
            try await broker.defer(try #require(try await broker.receive(from: session, maxCount: 1, maxWaitTime: .zero).first?.lockToken))
            let answer = try await Self.manage(
                &links,
                try Self.request(
                    "receive-by-sequence-number",
                    [("sequence-numbers", .array([.long(numbers[0])])), ("receiver-settle-mode", .uint(0)), ("session-id", .string("A"))]),
                broker: broker, now: clock.now())
            #expect(Self.status(answer).code == .int(200))
            #expect(Self.lockTokens(answer).isEmpty && links.locks.isEmpty)
            #expect(try await broker.counts(of: Self.orders) == EntityCounts())
        }
    }
}

/// A test's own failure, for a step whose answer has the wrong shape.
private struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
