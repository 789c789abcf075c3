import Foundation
import HeraldAMQP
import HeraldCore
import HeraldWire
import NIOCore
import Testing

@testable import HeraldAMQPServer

/// Receiver links without I/O: credit turns into receives, receives into transfers that carry a
/// fresh lock token each, dispositions into settlements, and settlements into the echoes the
/// Service Bus SDKs wait for.
struct ServiceBusReceivingTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let orders = EntityPath.queue("orders")
    /// The messages of one receive may share a broker token's nonce (their sequence numbers differ).
    static let batchNonce = UUID()

    /// Links with a session on channel 0 and a namespace-wide grant.
    static func links(maxHeldLocks: Int = 10_000) -> ServiceBusLinks {
        var links = ServiceBusLinks(verifiesTokens: false, maxHeldLocks: maxHeldLocks)
        links.begun(channel: 0, peer: AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 1000, outgoingWindow: 1000))
        links.addGrant(ClaimsGrants.Grant(path: "", rights: [.manage], keyEntity: nil, expiry: .distantFuture), now: Self.now)
        return links
    }

    static func attachReceiver(_ links: inout ServiceBusLinks, handle: UInt32 = 0, settled: Bool = false, filter: [AMQPMapEntry]? = nil) -> [ServiceBusLinks
        .Action]
    {
        var attach = AMQPAttach(
            name: "r\(handle)", handle: handle, role: .receiver, source: AMQPSource(address: "amqps://localhost/orders", filter: filter),
            target: AMQPTarget(address: "receiver-link"))
        attach.senderSettleMode = settled ? 1 : 0
        attach.receiverSettleMode = settled ? 0 : 1
        return links.handle(.attach(attach), channel: 0, payload: [], now: Self.now) { _ in nil }
    }

    static func credit(_ links: inout ServiceBusLinks, _ credit: UInt32, handle: UInt32 = 0, drain: Bool = false) -> [ServiceBusLinks.Action] {
        var flow = AMQPFlow(nextIncomingId: 1, incomingWindow: 1000, nextOutgoingId: 1, outgoingWindow: 1000)
        flow.handle = handle
        flow.deliveryCount = 0
        flow.linkCredit = credit
        flow.drain = drain
        return links.handle(.flow(flow), channel: 0, payload: [], now: Self.now) { _ in nil }
    }

    static func message(_ sequenceNumber: Int64, locked: Bool = true) -> ReceivedMessage {
        ReceivedMessage(
            message: Message(messageId: "m\(sequenceNumber)", body: Data("body \(sequenceNumber)".utf8)), entity: Self.orders, sequenceNumber: sequenceNumber,
            enqueuedTime: Self.now, deliveryCount: 1,
            lockToken: locked ? LockToken(entity: Self.orders, sequenceNumber: sequenceNumber, nonce: Self.batchNonce) : nil,
            lockedUntil: locked ? Self.now.addingTimeInterval(30) : nil)
    }

    static func receives(_ actions: [ServiceBusLinks.Action]) -> [ServiceBusLinks.ReceiveRequest] {
        actions.compactMap { if case .receive(let request) = $0 { request } else { nil } }
    }

    static func settlements(_ actions: [ServiceBusLinks.Action]) -> [ServiceBusLinks.Settlement] {
        actions.compactMap { if case .settle(let settlement) = $0 { settlement } else { nil } }
    }

    static func performatives(_ actions: [ServiceBusLinks.Action]) throws -> [(AMQPPerformative, AMQPFrame)] {
        try actions.compactMap { action in
            guard case .send(let frame) = action, let body = frame.body else { return nil }
            return (try AMQPPerformative(body), frame)
        }
    }

    static func transfers(_ actions: [ServiceBusLinks.Action]) throws -> [AMQPTransfer] {
        try self.performatives(actions).compactMap { if case .transfer(let transfer) = $0.0 { transfer } else { nil } }
    }

    static func dispositions(_ actions: [ServiceBusLinks.Action]) throws -> [AMQPDisposition] {
        try self.performatives(actions).compactMap { if case .disposition(let disposition) = $0.0 { disposition } else { nil } }
    }

    @Test func creditStartsAReceiveAndItsMessagesGoOutWithAFreshLockTokenEach() throws {
        var links = Self.links()
        let attached = try Self.performatives(Self.attachReceiver(&links))
        guard case .attach(let reply) = try #require(attached.first?.0) else {
            Issue.record("no attach")
            return
        }
        #expect(reply.role == .sender && reply.initialDeliveryCount == 0 && reply.source?.address == "amqps://localhost/orders")
        let request = try #require(Self.receives(Self.credit(&links, 5)).first)
        #expect(request.entity == Self.orders && request.maxCount == 5 && request.mode == .peekLock && request.waits)
        #expect(Self.receives(Self.credit(&links, 5)).isEmpty, "one receive at a time per link")

        let actions = links.received(request, .success([Self.message(1), Self.message(2)]), now: Self.now)
        let transfers = try Self.transfers(actions)
        #expect(transfers.count == 2)
        #expect(transfers.allSatisfy { $0.settled != true && $0.deliveryTag?.count == 16 }, "unsettled (false, or left out as its default)")
        #expect(Set(transfers.compactMap(\.deliveryTag)).count == 2, "every delivery has its own lock token")
        #expect(links.locks.count == 2)
        #expect(Self.receives(actions).first?.maxCount == 3, "the rest of the credit is asked for")
    }

    @Test func dispositionsSettleAndAreEchoedTheWayTheSDKsWaitFor() throws {
        var links = Self.links()
        _ = Self.attachReceiver(&links)
        let request = try #require(Self.receives(Self.credit(&links, 4)).first)
        let ids = try Self.transfers(links.received(request, .success((1...4).map { Self.message($0) }), now: Self.now)).compactMap(\.deliveryId)
        let deadLetterInfo = [
            AMQPMapEntry(.symbol("DeadLetterReason"), .string("bad")), AMQPMapEntry(.symbol("DeadLetterErrorDescription"), .string("very bad")),
        ]
        let states: [(AMQPDeliveryState, ServiceBusLinks.Settlement.Operation, AMQPDeliveryState)] = [
            (.accepted, .complete, .accepted),
            (
                .modified(deliveryFailed: true, undeliverableHere: false, messageAnnotations: nil), .abandon,
                .modified(deliveryFailed: true, undeliverableHere: false, messageAnnotations: nil)
            ),
            (
                .modified(deliveryFailed: true, undeliverableHere: true, messageAnnotations: nil), .defer,
                .modified(deliveryFailed: true, undeliverableHere: true, messageAnnotations: nil)
            ),
            (
                .rejected(AMQPError(condition: "com.microsoft:dead-letter", info: deadLetterInfo)), .deadLetter(reason: "bad", description: "very bad"),
                .rejected(nil)
            ),
        ]
        for (id, (state, operation, echo)) in zip(ids, states) {
            let asked = links.handle(
                .disposition(AMQPDisposition(role: .receiver, first: id, settled: false, state: state)), channel: 0, payload: [], now: Self.now
            ) { _ in nil }
            let settlement = try #require(Self.settlements(asked).first)
            #expect(settlement.operation == operation)
            #expect(try Self.dispositions(asked).isEmpty, "the echo waits for the broker")
            let echoed = try Self.dispositions(links.settled(settlement, .success(()), now: Self.now))
            #expect(echoed.map(\.first) == [id])
            #expect(echoed.first?.role == .sender && echoed.first?.settled == true && echoed.first?.state == echo)
        }
        #expect(links.locks.isEmpty)
    }

    @Test func aDispositionOfALockTheConnectionDoesNotHoldIsAnsweredLockLost() throws {
        var links = Self.links()
        _ = Self.attachReceiver(&links)
        let answered = try Self.dispositions(
            links.handle(.disposition(AMQPDisposition(role: .receiver, first: 77, settled: false, state: .accepted)), channel: 0, payload: [], now: Self.now) {
                _ in nil
            })
        #expect(answered.first?.state == .rejected(ServiceBusLinks.lockLost))
        // A huge range names no delivery: nothing is walked, nothing answered.
        let range = links.handle(
            .disposition(AMQPDisposition(role: .receiver, first: 0, last: .max, settled: false, state: .accepted)), channel: 0, payload: [], now: Self.now
        ) { _ in nil }
        #expect(range.isEmpty)
    }

    @Test func aFailedSettlementIsEchoedWithItsErrorAndLockLostForgetsTheLock() throws {
        var links = Self.links()
        _ = Self.attachReceiver(&links)
        let request = try #require(Self.receives(Self.credit(&links, 1)).first)
        let id = try #require(try Self.transfers(links.received(request, .success([Self.message(1)]), now: Self.now)).first?.deliveryId)
        let settlement = try #require(
            Self.settlements(
                links.handle(
                    .disposition(AMQPDisposition(role: .receiver, first: id, settled: false, state: .accepted)), channel: 0, payload: [], now: Self.now
                ) { _ in nil }
            ).first)
        let echoed = try Self.dispositions(links.settled(settlement, .failure(ServiceBusLinks.lockLost), now: Self.now))
        #expect(echoed.first?.state == .rejected(ServiceBusLinks.lockLost))
        #expect(links.locks.isEmpty)
    }

    @Test func drainingWhileAReceiveRunsAnswersAtOnceAndGivesBackWhatComesLater() throws {
        var links = Self.links()
        _ = Self.attachReceiver(&links)
        let request = try #require(Self.receives(Self.credit(&links, 2)).first)
        let draining = Self.credit(&links, 2, drain: true)
        #expect(draining.contains(.cancelReceive(channel: 0, handle: 0)), "the running receive stops")
        let drained = try Self.performatives(draining).compactMap { if case .flow(let flow) = $0.0 { flow } else { nil } }
        #expect(drained.first?.drain == true && drained.first?.linkCredit == 0 && drained.first?.deliveryCount == 2)
        let late = links.received(request, .success([Self.message(1)]), now: Self.now)
        #expect(try Self.transfers(late).isEmpty)
        #expect(Self.settlements(late).map(\.operation) == [.release])
        #expect(links.locks.isEmpty)
    }

    @Test func receiveAndDeleteSendsSettledAndKeepsNoLock() throws {
        var links = Self.links()
        _ = Self.attachReceiver(&links, settled: true)
        let request = try #require(Self.receives(Self.credit(&links, 1)).first)
        #expect(request.mode == .receiveAndDelete)
        let transfers = try Self.transfers(links.received(request, .success([Self.message(1, locked: false)]), now: Self.now))
        #expect(transfers.first?.settled == true)
        #expect(links.locks.isEmpty)
    }

    @Test func receivesWaitWhileTheConnectionIsNotWritableOrHoldsTooManyLocks() throws {
        var links = Self.links(maxHeldLocks: 2)
        _ = Self.attachReceiver(&links)
        #expect(links.writabilityChanged(false, now: Self.now).isEmpty)
        #expect(Self.receives(Self.credit(&links, 10)).isEmpty)
        let request = try #require(Self.receives(links.writabilityChanged(true, now: Self.now)).first)
        let after = links.received(request, .success([Self.message(1), Self.message(2)]), now: Self.now)
        #expect(Self.receives(after).isEmpty, "two locks held: the cap")
        let id = try #require(links.deliveries[0]?.keys.min())
        let settlement = try #require(
            Self.settlements(
                links.handle(.disposition(AMQPDisposition(role: .receiver, first: id, settled: true, state: .accepted)), channel: 0, payload: [], now: Self.now)
                { _ in nil }
            ).first)
        #expect(settlement.echo == nil, "a settled disposition wants no echo")
        #expect(Self.receives(links.settled(settlement, .success(()), now: Self.now)).count == 1, "a freed lock lets the receive go on")
    }

    @Test func aSessionReceiverIsAnsweredOnceItsSessionIsLocked() throws {
        var links = Self.links()
        let filter = [AMQPMapEntry(ServiceBusLinks.sessionFilter, .null)]
        let asked = Self.attachReceiver(&links, filter: filter)
        guard case .acceptSession(let request)? = asked.first else {
            Issue.record("no session accept: \(asked)")
            return
        }
        #expect(request.sessionId == nil && request.entity == Self.orders)
        let lock = SessionLock(entity: Self.orders, sessionId: "A", nonce: UUID(), lockedUntil: Self.now)
        let answered = try Self.performatives(links.sessionAccepted(request, .success(lock), now: Self.now))
        guard case .attach(let reply) = try #require(answered.first?.0) else {
            Issue.record("no attach")
            return
        }
        #expect(reply.source?.address == "amqps://localhost/orders")
        #expect(reply.source?.filter == [AMQPMapEntry(ServiceBusLinks.sessionFilter, .string("A"))])
        #expect(reply.properties == [AMQPMapEntry(ServiceBusLinks.lockedUntilProperty, .long(639_355_968_000_000_000))])
        #expect(links.heldSessions == [lock])

        var refused = Self.links()
        guard case .acceptSession(let other)? = Self.attachReceiver(&refused, filter: filter).first else { return }
        let error = AMQPError(condition: "com.microsoft:session-cannot-be-locked")
        let refusal = try Self.performatives(refused.sessionAccepted(other, .failure(error), now: Self.now))
        guard case .attach(let nullAttach) = try #require(refusal.first?.0), case .detach(let detach) = try #require(refusal.last?.0) else {
            Issue.record("no refusal")
            return
        }
        #expect(nullAttach.source == nil && detach.error == error)
        #expect(refused.heldSessions.isEmpty)
    }

    @Test func detachingASessionReceiverGivesItsSessionUp() throws {
        var links = Self.links()
        guard case .acceptSession(let request)? = Self.attachReceiver(&links, filter: [AMQPMapEntry(ServiceBusLinks.sessionFilter, .string("A"))]).first else {
            Issue.record("no session accept")
            return
        }
        #expect(request.sessionId == "A")
        let lock = SessionLock(entity: Self.orders, sessionId: "A", nonce: UUID(), lockedUntil: Self.now)
        _ = links.sessionAccepted(request, .success(lock), now: Self.now)
        let detached = links.handle(.detach(AMQPDetach(handle: 0, closed: true)), channel: 0, payload: [], now: Self.now) { _ in nil }
        #expect(detached.contains(.releaseSession(lock)))
        #expect(!detached.contains(.cancelReceive(channel: 0, handle: 0)), "no receive was running: the link had no credit")
        #expect(links.heldSessions.isEmpty)
    }

    @Test func unfinishedDeliveriesOverTheConnectionsBudgetCloseIt() throws {
        var links = ServiceBusLinks(verifiesTokens: false, maxBufferedBytes: 1000)
        links.begun(channel: 0, peer: AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 1000, outgoingWindow: 1000))
        links.addGrant(ClaimsGrants.Grant(path: "", rights: [.manage], keyEntity: nil, expiry: .distantFuture), now: Self.now)
        var failed = false
        for handle in UInt32(0)..<4 {
            _ = links.handle(
                .attach(AMQPAttach(name: "s\(handle)", handle: handle, role: .sender, source: AMQPSource(address: "c"), target: AMQPTarget(address: "orders"))),
                channel: 0, payload: [], now: Self.now
            ) { _ in nil }
            let transfer = AMQPTransfer(handle: handle, deliveryId: handle, deliveryTag: [UInt8(handle)], settled: false, more: true)
            let actions = links.handle(.transfer(transfer), channel: 0, payload: Array(repeating: 7, count: 400), now: Self.now) { _ in nil }
            if actions.contains(where: { if case .fail(let error) = $0 { error.condition == AMQPCondition.resourceLimitExceeded } else { false } }) {
                failed = true
                #expect(handle == 2, "the third 400-byte partial delivery passes 1,000 bytes")
                break
            }
        }
        #expect(failed)
    }

    @Test func aTransactionCoordinatorIsRefusedAsNotImplemented() throws {
        var links = Self.links()
        let plain = AMQPAttach(name: "txn", handle: 3, role: .sender, source: AMQPSource(address: "c"), target: AMQPTarget(address: "x"))
        guard case .described(let descriptor, .list(var fields)) = AMQPPerformative.attach(plain).value else {
            Issue.record("an attach is a described list")
            return
        }
        // The target field holds a coordinator (part 4, section 4.5.1), as a client declaring transactions sends.
        fields[6] = .described(descriptor: .ulong(0x30), value: .list([.array([.symbol("amqp:local-transactions")])]))
        guard case .attach(let attach) = try AMQPPerformative(.described(descriptor: descriptor, value: .list(fields))) else {
            Issue.record("not an attach")
            return
        }
        #expect(attach.target?.isCoordinator == true)
        let refusal = try Self.performatives(links.handle(.attach(attach), channel: 0, payload: [], now: Self.now) { _ in nil })
        guard case .detach(let detach) = try #require(refusal.last?.0) else {
            Issue.record("not refused")
            return
        }
        #expect(detach.error?.condition == AMQPCondition.notImplemented)
    }

    @Test func anErrorIsEncodedWithAllThreeFieldsForTheSDKsThatReadThemByPosition() throws {
        let rejected = AMQPDisposition(
            role: .receiver, first: 1, settled: true, state: .rejected(AMQPError(condition: AMQPCondition.messageSizeExceeded, description: "too large")))
        guard case .described(_, .list(let fields)) = AMQPPerformative.disposition(rejected).value,
            case .described(_, .list(let state)) = fields[4], case .described(_, .list(let error)) = state[0]
        else {
            Issue.record("not a disposition with a rejected state")
            return
        }
        #expect(error.count == 3, "condition, description and info (null): \(error)")
    }
}
