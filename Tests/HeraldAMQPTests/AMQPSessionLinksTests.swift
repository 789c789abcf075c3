import HeraldAMQP
import Testing

/// A session's links without I/O: attach, credit both ways, transfers in several frames, windows.
struct AMQPSessionLinksTests {
    static func session(window: UInt32 = 100, handleMax: UInt32 = 255, maxMessageSize: Int = 1000) -> AMQPSessionLinks {
        AMQPSessionLinks(
            peer: AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 65_536, outgoingWindow: 65_536), incomingWindow: window,
            handleMax: handleMax, maxMessageSize: maxMessageSize)
    }

    static func senderAttach(_ name: String, handle: UInt32) -> AMQPAttach {
        AMQPAttach(name: name, handle: handle, role: .sender, source: AMQPSource(address: name), target: AMQPTarget(address: "amqps://localhost/orders"))
    }

    @Test func thePeersSenderIsALinkTheServerReceivesOnWithTheCreditItGrants() throws {
        var session = Self.session()
        let link = try session.attach(Self.senderAttach("s", handle: 7)).get()
        #expect(link.role == .receiver && link.remoteHandle == 7 && link.localHandle == 0)
        #expect(session.localHandle(ofRemote: 7) == 0)

        // Without credit a transfer is a link error.
        #expect(throws: AMQPSessionLinks.LinkFailure.self) {
            try session.transfer(AMQPTransfer(handle: 7, deliveryId: 0, deliveryTag: [0], settled: false), payload: [1])
        }
        let granted = session.grant(2, on: 0)
        let flow = try #require(granted)
        #expect(flow.handle == 0 && flow.linkCredit == 2 && flow.deliveryCount == 0)

        // A message in three frames; the id and tag come with the first only.
        #expect(try session.transfer(AMQPTransfer(handle: 7, deliveryId: 1, deliveryTag: [9], settled: false, more: true), payload: [1, 2]) == [.incomplete])
        #expect(try session.transfer(AMQPTransfer(handle: 7, deliveryId: nil, deliveryTag: nil, settled: nil, more: true), payload: [3]) == [.incomplete])
        let results = try session.transfer(AMQPTransfer(handle: 7, deliveryId: nil, deliveryTag: nil, settled: nil), payload: [4])
        guard results.count == 1, case .delivery(let delivery) = results[0] else {
            Issue.record("no delivery: \(results)")
            return
        }
        #expect(delivery.handle == 0 && delivery.deliveryId == 1 && delivery.deliveryTag == [9] && delivery.messageFormat == 0)
        #expect(!delivery.settled && delivery.bytes == [1, 2, 3, 4])
        #expect(session.links[0]?.linkCredit == 1 && session.links[0]?.deliveryCount == 1)
    }

    @Test func thePeersReceiverIsALinkTheServerSendsOnWithTheCreditThePeerGrants() throws {
        var session = Self.session()
        var attach = AMQPAttach(
            name: "r", handle: 1, role: .receiver, source: AMQPSource(address: "amqps://localhost/orders"), target: AMQPTarget(address: "r"))
        attach.receiverSettleMode = 1
        let link = try session.attach(attach).get()
        #expect(link.role == .sender && link.receiverSettleMode == 1)
        #expect(session.nextDelivery(on: 0) == nil, "no credit yet")

        var flow = AMQPFlow(nextIncomingId: 1, incomingWindow: 65_536, nextOutgoingId: 0, outgoingWindow: 65_536)
        flow.handle = 1
        flow.deliveryCount = 0
        flow.linkCredit = 2
        #expect(session.flow(flow) == .credit(handle: 0, credit: 2, drain: false))
        #expect(session.nextDelivery(on: 0) == 1)
        #expect(session.nextDelivery(on: 0) == 2)
        #expect(session.nextDelivery(on: 0) == nil)

        // Credit is relative to the receiver's delivery count: it saw none of the two yet.
        flow.linkCredit = 3
        flow.drain = true
        #expect(session.flow(flow) == .credit(handle: 0, credit: 1, drain: true))
        let drainFlow = session.drained(0)
        let drained = try #require(drainFlow)
        #expect(drained.deliveryCount == 3 && drained.linkCredit == 0 && drained.drain)
        #expect(session.nextDelivery(on: 0) == nil)
    }

    @Test func handlesAreBoundedAndUniqueAndDetachFreesThem() throws {
        var session = Self.session(handleMax: 1)
        _ = try session.attach(Self.senderAttach("a", handle: 0)).get()
        #expect(throws: AMQPError.self) { try session.attach(Self.senderAttach("b", handle: 0)).get() }
        _ = try session.attach(Self.senderAttach("c", handle: 1)).get()
        #expect(throws: AMQPError.self) { try session.attach(Self.senderAttach("d", handle: 2)).get() }
        #expect(session.detach(remote: 0)?.name == "a")
        #expect(try session.attach(Self.senderAttach("e", handle: 0)).get().localHandle == 0)
        #expect(session.detach(local: 1)?.name == "c")
        #expect(session.localHandle(ofRemote: 1) == nil)
    }

    @Test func transfersBreakingTheLimitsAreErrors() throws {
        var session = Self.session(window: 4, maxMessageSize: 3)
        _ = try session.attach(Self.senderAttach("s", handle: 0)).get()
        _ = session.grant(10, on: 0)
        // Unknown handle: a session error.
        #expect(throws: AMQPError.self) { try session.transfer(AMQPTransfer(handle: 5, deliveryId: 0, deliveryTag: [0], settled: true), payload: []) }
        // Too large: a link error, whatever the frames.
        #expect(throws: AMQPSessionLinks.LinkFailure.self) {
            _ = try session.transfer(AMQPTransfer(handle: 0, deliveryId: 0, deliveryTag: [0], settled: true, more: true), payload: [1, 2])
            _ = try session.transfer(AMQPTransfer(handle: 0, deliveryId: nil, deliveryTag: nil, settled: nil), payload: [3, 4])
        }
        // The window is widened once half of it is used.
        var fresh = Self.session(window: 4)
        _ = try fresh.attach(Self.senderAttach("s", handle: 0)).get()
        _ = fresh.grant(10, on: 0)
        _ = try fresh.transfer(AMQPTransfer(handle: 0, deliveryId: 0, deliveryTag: [0], settled: true), payload: [1])
        let results = try fresh.transfer(AMQPTransfer(handle: 0, deliveryId: 1, deliveryTag: [1], settled: true), payload: [1])
        guard case .window(let flow) = results.last else {
            Issue.record("no window update: \(results)")
            return
        }
        #expect(flow.incomingWindow == 4 && flow.nextIncomingId == 2)
        // A transfer that ends an aborted delivery delivers nothing.
        var aborted = AMQPTransfer(handle: 0, deliveryId: 2, deliveryTag: [2], settled: false)
        aborted.aborted = true
        #expect(try fresh.transfer(aborted, payload: []) == [.aborted])
    }
}
