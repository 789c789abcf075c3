/// The server side of an AMQP 1.0 connection, without I/O: the protocol headers, the SASL
/// exchange, `open`, the sessions' `begin` and `end`, and `close`. Links are the application's:
/// their performatives are handed on with the session they belong to.
///
/// Feed it what arrives (``receivedHeader(_:)``, ``receivedSASL(_:)``, ``received(_:on:payload:)``,
/// ``failed(_:)``) and carry out the ``Action`` each call returns, in order.
public struct AMQPConnectionStateMachine: Sendable {
    /// What the server offers and accepts.
    public struct Configuration: Sendable {
        /// The server's container id in its `open`.
        public var containerId: String
        /// The largest frame the server accepts.
        public var maxFrameSize: UInt32
        /// The highest channel (session) number the server accepts.
        public var channelMax: UInt16
        /// The most links one session may have.
        public var handleMax: UInt32
        /// How long the server waits for a frame, in milliseconds; the client then sends empty
        /// frames at least this often. `nil`: no limit.
        public var idleTimeout: UInt32?
        /// The SASL mechanisms offered; a client's choice outside them is refused.
        public var mechanisms: [String]
        /// The session window the server offers.
        public var incomingWindow: UInt32

        /// A configuration.
        public init(
            containerId: String, maxFrameSize: UInt32 = 1_048_576, channelMax: UInt16 = 255, handleMax: UInt32 = 255,
            idleTimeout: UInt32? = 120_000, mechanisms: [String] = ["ANONYMOUS", "PLAIN", "MSSBCBS"], incomingWindow: UInt32 = 5000
        ) {
            self.containerId = containerId
            self.maxFrameSize = maxFrameSize
            self.channelMax = channelMax
            self.handleMax = handleMax
            self.idleTimeout = idleTimeout
            self.mechanisms = mechanisms
            self.incomingWindow = incomingWindow
        }
    }

    /// What the connection must do next.
    public enum Action: Sendable, Hashable {
        /// Send a protocol header.
        case sendHeader(AMQPProtocolHeader)
        /// Send a frame.
        case sendFrame(AMQPFrame)
        /// A link performative (attach, flow, transfer, disposition, detach) for the application,
        /// on the session the server calls `channel` (its own channel number).
        case link(channel: UInt16, AMQPPerformative, payload: [UInt8])
        /// A session began on the server's `channel`, with the peer's `begin` (its windows and ids).
        case sessionBegun(channel: UInt16, peer: AMQPBegin)
        /// A session ended: the application drops its links.
        case sessionEnded(channel: UInt16)
        /// The peer authenticated with this SASL mechanism (and PLAIN's user name, if any).
        case authenticated(mechanism: String, user: String?)
        /// Close the socket (after flushing what was sent).
        case closeSocket
    }

    enum State: Sendable, Hashable {
        case awaitingSASLHeader
        case awaitingSASLInit
        case awaitingAMQPHeader
        case awaitingOpen
        case open
        /// The server sent `close`: it waits for the peer's, then closes the socket.
        case closing
        case closed
    }

    struct Session: Sendable, Hashable {
        var remoteChannel: UInt16
        /// The next transfer id expected from the peer.
        var nextIncomingId: UInt32
        /// The peer's window: how many more transfers the server may send.
        var remoteIncomingWindow: UInt32
    }

    private(set) var state: State = .awaitingSASLHeader
    let configuration: Configuration
    /// The peer's limits, once its `open` came.
    public private(set) var peerMaxFrameSize: UInt32 = AMQPFrame.minimumMaxFrameSize
    public private(set) var peerIdleTimeout: UInt32?
    /// Sessions by the server's channel.
    private var sessions: [UInt16: Session] = [:]
    /// The server's channel of each of the peer's channels.
    private var localChannels: [UInt16: UInt16] = [:]

    /// A connection that has received nothing yet.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether the next bytes are a protocol header rather than a frame.
    public var expectsProtocolHeader: Bool {
        self.state == .awaitingSASLHeader || self.state == .awaitingAMQPHeader
    }

    /// The session the peer calls `channel`, by the server's channel number.
    public func localChannel(ofRemote channel: UInt16) -> UInt16? { self.localChannels[channel] }

    /// The peer's channel number of the server's session `channel`.
    public func remoteChannel(of channel: UInt16) -> UInt16? { self.sessions[channel]?.remoteChannel }

    /// The sessions open now.
    public var sessionCount: Int { self.sessions.count }

    // MARK: Input

    /// A protocol header arrived.
    public mutating func receivedHeader(_ header: AMQPProtocolHeader) -> [Action] {
        switch (self.state, header) {
        case (.awaitingSASLHeader, .sasl):
            self.state = .awaitingSASLInit
            return [.sendHeader(.sasl), .sendFrame(AMQPFrame(kind: .sasl, channel: 0, body: AMQPSASLFrame.mechanisms(self.configuration.mechanisms).value))]
        case (.awaitingAMQPHeader, .amqp):
            self.state = .awaitingOpen
            return [.sendHeader(.amqp)]
        default:
            // Answer with the header the server expects, then close (part 2, section 2.2).
            let expected: AMQPProtocolHeader = self.state == .awaitingAMQPHeader ? .amqp : .sasl
            self.state = .closed
            return [.sendHeader(expected), .closeSocket]
        }
    }

    /// A SASL frame arrived.
    public mutating func receivedSASL(_ frame: AMQPSASLFrame) -> [Action] {
        guard self.state == .awaitingSASLInit, case .initial(let mechanism, let response, _) = frame else {
            self.state = .closed
            return [.sendFrame(Self.saslOutcome(code: 2)), .closeSocket]
        }
        guard self.configuration.mechanisms.contains(mechanism) else {
            self.state = .closed
            return [.sendFrame(Self.saslOutcome(code: 1)), .closeSocket]
        }
        self.state = .awaitingAMQPHeader
        return [.authenticated(mechanism: mechanism, user: Self.plainUser(mechanism, response)), .sendFrame(Self.saslOutcome(code: 0))]
    }

    /// A frame with a performative arrived on the peer's `channel`.
    public mutating func received(_ performative: AMQPPerformative, on channel: UInt16, payload: [UInt8] = []) -> [Action] {
        switch self.state {
        case .awaitingOpen:
            guard case .open(let open) = performative else {
                return self.close(AMQPError(condition: AMQPCondition.notAllowed, description: "the first frame must be open"))
            }
            return self.opened(open)
        case .open:
            return self.whileOpen(performative, on: channel, payload: payload)
        case .closing:
            // Everything but the peer's close is dropped once the server has closed.
            guard case .close = performative else { return [] }
            self.state = .closed
            return [.closeSocket]
        default:
            self.state = .closed
            return [.closeSocket]
        }
    }

    /// Bytes that are not valid frames arrived, or a frame broke a limit: the connection is closed
    /// with `error`.
    public mutating func failed(_ error: AMQPError) -> [Action] {
        switch self.state {
        case .open, .awaitingOpen: return self.close(error)
        case .closed: return []
        default:
            self.state = .closed
            return [.closeSocket]
        }
    }

    /// The server shuts down: it closes the connection with `amqp:connection:forced`.
    public mutating func shutDown() -> [Action] {
        switch self.state {
        case .open, .awaitingOpen: return self.close(AMQPError(condition: AMQPCondition.connectionForced, description: "the server is shutting down"))
        case .closed, .closing: return []
        default:
            self.state = .closed
            return [.closeSocket]
        }
    }

    /// The server ends its session `channel` with `error` (a session-level fault of a link).
    public mutating func endSession(_ channel: UInt16, error: AMQPError?) -> [Action] {
        guard self.state == .open, let session = self.sessions.removeValue(forKey: channel) else { return [] }
        self.localChannels[session.remoteChannel] = nil
        return [.sessionEnded(channel: channel), .sendFrame(AMQPFrame(channel: channel, body: AMQPPerformative.end(AMQPEnding(error: error)).value))]
    }

    // MARK: Steps

    private mutating func opened(_ open: AMQPOpen) -> [Action] {
        guard open.maxFrameSize >= AMQPFrame.minimumMaxFrameSize else {
            return self.close(AMQPError(condition: AMQPCondition.invalidField, description: "max-frame-size must be at least 512"))
        }
        self.peerMaxFrameSize = open.maxFrameSize
        self.peerIdleTimeout = open.idleTimeout.flatMap { $0 == 0 ? nil : $0 }
        self.state = .open
        let reply = AMQPOpen(
            containerId: self.configuration.containerId, hostname: nil, maxFrameSize: self.configuration.maxFrameSize,
            channelMax: self.configuration.channelMax, idleTimeout: self.configuration.idleTimeout)
        return [.sendFrame(AMQPFrame(channel: 0, body: AMQPPerformative.open(reply).value))]
    }

    private mutating func whileOpen(_ performative: AMQPPerformative, on channel: UInt16, payload: [UInt8]) -> [Action] {
        switch performative {
        case .open:
            return self.close(AMQPError(condition: AMQPCondition.notAllowed, description: "the connection is open already"))
        case .close:
            self.state = .closed
            self.sessions = [:]
            self.localChannels = [:]
            return [.sendFrame(AMQPFrame(channel: 0, body: AMQPPerformative.close(AMQPEnding()).value)), .closeSocket]
        case .begin(let begin):
            return self.begin(begin, on: channel)
        case .end:
            guard let local = self.localChannels.removeValue(forKey: channel) else {
                return self.close(AMQPError(condition: AMQPCondition.notAllowed, description: "end on channel \(channel), which has no session"))
            }
            self.sessions[local] = nil
            return [.sessionEnded(channel: local), .sendFrame(AMQPFrame(channel: local, body: AMQPPerformative.end(AMQPEnding()).value))]
        case .attach, .flow, .transfer, .disposition, .detach:
            guard let local = self.localChannels[channel] else {
                return self.close(AMQPError(condition: AMQPCondition.notAllowed, description: "a link frame on channel \(channel), which has no session"))
            }
            if case .transfer(let transfer) = performative {
                // Transfers count against the session's window; frames of one delivery share an id.
                if let deliveryId = transfer.deliveryId, self.sessions[local] != nil {
                    self.sessions[local]!.nextIncomingId = deliveryId &+ 1
                }
            }
            return [.link(channel: local, performative, payload: payload)]
        }
    }

    private mutating func begin(_ begin: AMQPBegin, on channel: UInt16) -> [Action] {
        guard begin.remoteChannel == nil else {
            return self.close(AMQPError(condition: AMQPCondition.notAllowed, description: "a client's begin has no remote-channel"))
        }
        guard channel <= self.configuration.channelMax, self.localChannels[channel] == nil else {
            return self.close(AMQPError(condition: AMQPCondition.notAllowed, description: "channel \(channel) is in use or beyond channel-max"))
        }
        guard let local = (0...self.configuration.channelMax).first(where: { self.sessions[$0] == nil }) else {
            return self.close(AMQPError(condition: AMQPCondition.resourceLimitExceeded, description: "too many sessions"))
        }
        self.sessions[local] = Session(remoteChannel: channel, nextIncomingId: begin.nextOutgoingId, remoteIncomingWindow: begin.incomingWindow)
        self.localChannels[channel] = local
        let reply = AMQPBegin(
            remoteChannel: channel, nextOutgoingId: 1, incomingWindow: self.configuration.incomingWindow, outgoingWindow: .max,
            handleMax: self.configuration.handleMax)
        return [.sessionBegun(channel: local, peer: begin), .sendFrame(AMQPFrame(channel: local, body: AMQPPerformative.begin(reply).value))]
    }

    private mutating func close(_ error: AMQPError) -> [Action] {
        self.state = .closing
        self.sessions = [:]
        self.localChannels = [:]
        return [.sendFrame(AMQPFrame(channel: 0, body: AMQPPerformative.close(AMQPEnding(error: error)).value))]
    }

    private static func saslOutcome(code: UInt8) -> AMQPFrame {
        AMQPFrame(kind: .sasl, channel: 0, body: AMQPSASLFrame.outcome(code: code, additionalData: nil).value)
    }

    /// PLAIN's response is `authzid NUL authcid NUL password`: the user is the authcid.
    private static func plainUser(_ mechanism: String, _ response: [UInt8]?) -> String? {
        guard mechanism == "PLAIN", let response else { return nil }
        let parts = response.split(separator: 0, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        return String(decoding: parts[1], as: UTF8.self)
    }
}
