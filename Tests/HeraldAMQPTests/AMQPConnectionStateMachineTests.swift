import HeraldAMQP
import Testing

/// The server side of a connection, driven without I/O through the exchanges a client makes.
struct AMQPConnectionStateMachineTests {
    typealias Machine = AMQPConnectionStateMachine

    static func machine() -> Machine {
        Machine(configuration: .init(containerId: "herald", maxFrameSize: 65_536, channelMax: 3, idleTimeout: 60_000))
    }

    /// A machine past SASL and `open`, as the Service Bus SDK leaves it.
    static func openMachine() -> Machine {
        var machine = Self.machine()
        _ = machine.receivedHeader(.sasl)
        _ = machine.receivedSASL(.initial(mechanism: "ANONYMOUS", response: [], hostname: "localhost"))
        _ = machine.receivedHeader(.amqp)
        _ = machine.received(.open(AMQPOpen(containerId: "client", maxFrameSize: 1_048_576, channelMax: 65_535)), on: 0)
        return machine
    }

    static func performatives(_ actions: [Machine.Action]) -> [AMQPPerformative] {
        actions.compactMap {
            guard case .sendFrame(let frame) = $0, frame.kind == .amqp, let body = frame.body else { return nil }
            return try? AMQPPerformative(body)
        }
    }

    static func closeError(_ actions: [Machine.Action]) -> String? {
        for case .close(let ending) in Self.performatives(actions) { return ending.error?.condition }
        return nil
    }

    @Test func saslThenOpenAsTheServiceBusSDKDoesIt() throws {
        var machine = Self.machine()
        #expect(machine.expectsProtocolHeader)
        let mechanisms = machine.receivedHeader(.sasl)
        #expect(mechanisms.first == .sendHeader(.sasl))
        guard case .sendFrame(let frame) = mechanisms.last, let body = frame.body else {
            Issue.record("no mechanisms")
            return
        }
        #expect(try AMQPSASLFrame(body) == .mechanisms(["ANONYMOUS", "PLAIN", "MSSBCBS"]))
        #expect(!machine.expectsProtocolHeader)

        let outcome = machine.receivedSASL(.initial(mechanism: "PLAIN", response: Array("\0keyname\0secret".utf8), hostname: nil))
        #expect(outcome.first == .authenticated(mechanism: "PLAIN", user: "keyname"))
        guard case .sendFrame(let outcomeFrame) = outcome.last, let outcomeBody = outcomeFrame.body else {
            Issue.record("no outcome")
            return
        }
        #expect(try AMQPSASLFrame(outcomeBody) == .outcome(code: 0, additionalData: nil))
        #expect(machine.expectsProtocolHeader)

        #expect(machine.receivedHeader(.amqp) == [.sendHeader(.amqp)])
        let opened = machine.received(.open(AMQPOpen(containerId: "servicebus.pysdk-1", maxFrameSize: 1_048_576, idleTimeout: 30_000)), on: 0)
        guard case .open(let open) = Self.performatives(opened).first else {
            Issue.record("no open: \(opened)")
            return
        }
        #expect(open.containerId == "herald" && open.maxFrameSize == 65_536 && open.idleTimeout == 60_000)
        #expect(machine.peerMaxFrameSize == 1_048_576 && machine.peerIdleTimeout == 30_000)
    }

    @Test func aMechanismNotOfferedOrAPlainAMQPHeaderIsRefused() {
        var machine = Self.machine()
        _ = machine.receivedHeader(.sasl)
        let refused = machine.receivedSASL(.initial(mechanism: "EXTERNAL", response: nil, hostname: nil))
        #expect(refused.last == .closeSocket)

        var plain = Self.machine()
        #expect(plain.receivedHeader(.amqp) == [.sendHeader(.sasl), .closeSocket])
    }

    @Test func sessionsBeginAndEndOnTheServersChannels() throws {
        var machine = Self.openMachine()
        let begun = machine.received(.begin(AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 65_536, outgoingWindow: 65_536)), on: 2)
        #expect(
            begun.first == .sessionBegun(channel: 0, peer: AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 65_536, outgoingWindow: 65_536)))
        guard case .begin(let begin) = Self.performatives(begun).first, case .sendFrame(let frame) = begun.last else {
            Issue.record("no begin: \(begun)")
            return
        }
        #expect(begin.remoteChannel == 2)
        #expect(frame.channel == 0)
        #expect(machine.localChannel(ofRemote: 2) == 0 && machine.remoteChannel(of: 0) == 2)

        // Link frames go to the application with the server's channel.
        let attach = AMQPPerformative.attach(AMQPAttach(name: "$cbs", handle: 0, role: .sender, source: nil, target: AMQPTarget(address: "$cbs")))
        #expect(machine.received(attach, on: 2) == [.link(channel: 0, attach, payload: [])])

        let ended = machine.received(.end(AMQPEnding()), on: 2)
        #expect(ended.first == .sessionEnded(channel: 0))
        #expect(Self.performatives(ended) == [.end(AMQPEnding())])
        #expect(machine.sessionCount == 0)
    }

    @Test func protocolViolationsCloseTheConnectionWithAnError() {
        var first = Self.machine()
        _ = first.receivedHeader(.sasl)
        _ = first.receivedSASL(.initial(mechanism: "ANONYMOUS", response: nil, hostname: nil))
        _ = first.receivedHeader(.amqp)
        #expect(
            Self.closeError(first.received(.begin(AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 1, outgoingWindow: 1)), on: 0))
                == AMQPCondition.notAllowed)

        var small = Self.machine()
        _ = small.receivedHeader(.sasl)
        _ = small.receivedSASL(.initial(mechanism: "ANONYMOUS", response: nil, hostname: nil))
        _ = small.receivedHeader(.amqp)
        #expect(Self.closeError(small.received(.open(AMQPOpen(containerId: "c", maxFrameSize: 100)), on: 0)) == AMQPCondition.invalidField)

        var orphan = Self.openMachine()
        let attach = AMQPPerformative.attach(AMQPAttach(name: "l", handle: 0, role: .sender, source: nil, target: nil))
        #expect(Self.closeError(orphan.received(attach, on: 5)) == AMQPCondition.notAllowed)
        // After its close the server drops all but the peer's close, which closes the socket.
        #expect(orphan.received(attach, on: 5) == [])
        #expect(orphan.received(.close(AMQPEnding()), on: 0) == [.closeSocket])

        var full = Self.openMachine()
        for channel in 0...3 {
            _ = full.received(.begin(AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 1, outgoingWindow: 1)), on: UInt16(channel))
        }
        #expect(full.sessionCount == 4)
        #expect(
            Self.closeError(full.received(.begin(AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 1, outgoingWindow: 1)), on: 9))
                == AMQPCondition.notAllowed)

        var framing = Self.openMachine()
        #expect(Self.closeError(framing.failed(AMQPError(condition: AMQPCondition.framingError))) == AMQPCondition.framingError)
    }

    @Test func theClientsCloseIsAnsweredAndShutdownForcesAClose() {
        var machine = Self.openMachine()
        let closed = machine.received(.close(AMQPEnding()), on: 0)
        #expect(Self.performatives(closed) == [.close(AMQPEnding())])
        #expect(closed.last == .closeSocket)

        var open = Self.openMachine()
        #expect(Self.closeError(open.shutDown()) == AMQPCondition.connectionForced)
    }
}
