import Foundation
import HeraldAMQP
import HeraldCore
import NIOCore

/// The links of one AMQP connection as Service Bus clients use them, without I/O: the `$cbs` pair
/// (tokens in, answers out), senders to queues and topics, receivers from queues, subscriptions
/// and dead-letter queues, and entities' `$management` nodes. It answers attaches, grants and
/// spends credit, verifies tokens, keeps the locks of the deliveries it sent, and turns frames
/// into ``Action``s; the connection carries them out and reports each outcome back
/// (``stored(channel:handle:deliveryId:_:)``, ``received(_:_:now:)``, ``settled(_:_:now:)``,
/// ``answered(_:_:now:)``).
struct ServiceBusLinks {
    /// What a link of the connection is for.
    enum Kind: Hashable {
        /// The client's requests to `$cbs` (the server receives).
        case tokenRequests
        /// The server's answers from `$cbs` (the server sends).
        case tokenAnswers
        /// Messages for the queue or topic `name` (the server receives).
        case sender(name: String)
        /// Messages from an entity, or from the session `session` of it, to the client (the server sends).
        case receiver(entity: EntityPath, mode: ReceiveMode, session: String?)
        /// A session receiver waiting for its session to be accepted; the attach is answered then.
        case acceptingSession(entity: EntityPath, mode: ReceiveMode)
        /// The client's requests to an entity's `$management` node (the server receives).
        case managementRequests(ServiceBusEntity)
        /// The server's answers from an entity's `$management` node (the server sends).
        case managementAnswers(ServiceBusEntity)
    }

    /// What the connection must do.
    enum Action: Hashable {
        /// Write this frame.
        case send(AMQPFrame)
        /// Store `messages` in the queue or topic `entity`, then report the outcome of the delivery.
        case store([Message], entity: String, channel: UInt16, handle: UInt32, deliveryId: UInt32)
        /// Receive for a receiver link, then report what came with ``received(_:_:now:)``.
        case receive(ReceiveRequest)
        /// Stop the receive running for a link (drained or gone); what it brings goes back unlocked.
        case cancelReceive(channel: UInt16, handle: UInt32)
        /// Settle a delivery's lock, then report with ``settled(_:_:now:)``.
        case settle(Settlement)
        /// Run a `$management` operation, then report its answer with ``answered(_:_:now:)``.
        case manage(ManagementCall)
        /// Accept a session for a session receiver, then report with ``sessionAccepted(_:_:now:)``.
        case acceptSession(SessionRequest)
        /// Give up a session lock the client no longer uses.
        case releaseSession(SessionLock)
        /// Close the connection with this error.
        case fail(AMQPError)
    }

    /// A session receiver's attach, waiting for the broker to lock a session for it.
    struct SessionRequest: Hashable {
        var channel: UInt16
        var handle: UInt32
        var attach: AMQPAttach
        var entity: EntityPath
        /// The session asked for; `nil` for the next available one.
        var sessionId: String?
        var maxWaitTime: Duration
    }

    /// A session the connection's client holds, by entity and session id.
    struct SessionKey: Hashable {
        var entity: EntityPath
        var sessionId: String
    }

    /// A receive the connection runs for a receiver link.
    struct ReceiveRequest: Hashable {
        var channel: UInt16
        var handle: UInt32
        var entity: EntityPath
        var mode: ReceiveMode
        /// The session to receive from, for a session receiver.
        var session: SessionLock?
        var maxCount: Int
        /// Whether the receive may wait for messages (not while the client drains the link).
        var waits: Bool
    }

    /// A lock a delivery or a `receive-by-sequence-number` gave the client.
    struct HeldLock: Hashable {
        var token: LockToken
        /// Until when the client can settle with it: the message's lock, or its session's.
        var lockedUntil: Date
        /// The session and delivery id of the transfer that carried it, if one did.
        var channel: UInt16?
        var deliveryId: UInt32?
        /// The session the message is locked through, if any: its lock lasts as long as the
        /// session lock, renewals included.
        var session: SessionKey?
    }

    /// The settlement of one lock the client asked for.
    struct Settlement: Hashable {
        enum Operation: Hashable {
            case complete
            case abandon
            case `defer`
            case deadLetter(reason: String, description: String?)
            /// Given back unprocessed (`released`): unlocked, the delivery not counted.
            case release
        }

        var lock: UUID
        var token: LockToken
        var operation: Operation
        /// The disposition that asked for it, echoed settled with the outcome; `nil` when the
        /// client settled already.
        var echo: (channel: UInt16, deliveryId: UInt32)? {
            self.echoChannel.flatMap { channel in self.echoDeliveryId.map { (channel, $0) } }
        }
        var echoChannel: UInt16?
        var echoDeliveryId: UInt32?
    }

    /// A `$management` request to run, and where its answer goes.
    struct ManagementCall: Hashable {
        var channel: UInt16
        /// The server's handle of the answers link; `nil` when the client attached none.
        var answerHandle: UInt32?
        var correlation: AMQPValue
        var entity: ServiceBusEntity
        var operation: ServiceBusManagement.Operation
    }

    /// The credit the server grants a link it receives on, renewed when half is used.
    let credit: UInt32
    let maxMessageSize: Int
    let incomingWindow: UInt32
    let handleMax: UInt32
    /// The most bytes of unfinished deliveries the connection buffers, over all its sessions.
    let maxBufferedBytes: Int
    /// The most locks the connection holds for its client; receivers wait while it holds more.
    let maxHeldLocks: Int
    /// The most messages one receive asks for.
    let receiveBatch: Int
    /// The largest frame the peer takes (from its `open`).
    var peerMaxFrameSize: UInt32 = AMQPFrame.minimumMaxFrameSize
    var sessions: [UInt16: AMQPSessionLinks] = [:]
    var kinds: [UInt16: [UInt32: Kind]] = [:]
    private(set) var grants = ClaimsGrants()
    /// Answers waiting for credit on an answers link, by channel and the server's handle.
    var waitingAnswers: [UInt16: [UInt32: [AMQPMessage]]] = [:]
    var nextTag: UInt32 = 0
    var bufferedBytes = 0
    /// The locks the client holds through this connection, by their token's UUID.
    var locks: [UUID: HeldLock] = [:]
    /// The lock of each unsettled delivery the server sent, by channel and delivery id.
    var deliveries: [UInt16: [UInt32: UUID]] = [:]
    /// The receiver links with a receive running.
    var receiving: Set<LinkKey> = []
    /// Whether the connection takes more output; receives wait while it does not (a client that
    /// grants credit and does not read gets no more than the socket's buffers hold).
    var isWritable = true
    /// The sessions the client holds through this connection's session receivers.
    var sessionLocks: [SessionKey: SessionLock] = [:]

    struct LinkKey: Hashable {
        var channel: UInt16
        var handle: UInt32
    }

    /// Whether `$cbs` tokens are verified; without, any token grants every right.
    let verifiesTokens: Bool

    init(
        verifiesTokens: Bool = true, credit: UInt32 = 100, maxMessageSize: Int = 1_048_576, incomingWindow: UInt32 = 5000, handleMax: UInt32 = 255,
        maxBufferedBytes: Int = 8 << 20, maxHeldLocks: Int = 10_000, receiveBatch: Int = 100
    ) {
        self.verifiesTokens = verifiesTokens
        self.credit = credit
        self.maxMessageSize = maxMessageSize
        self.incomingWindow = incomingWindow
        self.handleMax = handleMax
        self.maxBufferedBytes = maxBufferedBytes
        self.maxHeldLocks = maxHeldLocks
        self.receiveBatch = receiveBatch
    }

    mutating func begun(channel: UInt16, peer: AMQPBegin) {
        self.sessions[channel] = AMQPSessionLinks(
            peer: peer, incomingWindow: self.incomingWindow, handleMax: self.handleMax, maxMessageSize: self.maxMessageSize)
        self.kinds[channel] = [:]
    }

    mutating func ended(channel: UInt16) -> [Action] {
        let released =
            (self.kinds[channel] ?? [:]).values.flatMap { self.releasedSession(of: $0) }
            + self.receiving.filter { $0.channel == channel }.map { Action.cancelReceive(channel: $0.channel, handle: $0.handle) }
        self.bufferedBytes -= self.sessions[channel]?.bufferedBytes ?? 0
        self.sessions[channel] = nil
        self.kinds[channel] = nil
        self.waitingAnswers[channel] = nil
        self.deliveries[channel] = nil
        self.receiving = self.receiving.filter { $0.channel != channel }
        return released
    }

    /// The sessions the client still holds (to give up when the connection closes).
    var heldSessions: [SessionLock] { Array(self.sessionLocks.values) }

    /// Forgets the session a session receiver held, and gives it up.
    mutating func releasedSession(of kind: Kind) -> [Action] {
        guard case .receiver(let entity, _, let session?) = kind,
            let lock = self.sessionLocks.removeValue(forKey: SessionKey(entity: entity, sessionId: session))
        else { return [] }
        return [.releaseSession(lock)]
    }

    /// A link frame of the session the server calls `channel`. `credential` finds an access key
    /// by name, for `$cbs` tokens.
    mutating func handle(
        _ performative: AMQPPerformative, channel: UInt16, payload: [UInt8], now: Date, credential: (String) -> AMQPCredential?
    ) -> [Action] {
        guard self.sessions[channel] != nil else { return [] }
        switch performative {
        case .attach(let attach): return self.attach(attach, channel: channel, now: now)
        case .flow(let flow): return self.flow(flow, channel: channel, now: now)
        case .transfer(let transfer): return self.transfer(transfer, payload: payload, channel: channel, now: now, credential: credential)
        case .disposition(let disposition): return self.disposition(disposition, channel: channel)
        case .detach(let detach):
            let before = self.sessions[channel]!.bufferedBytes
            guard let link = self.sessions[channel]!.detach(remote: detach.handle) else { return [] }
            self.bufferedBytes += self.sessions[channel]!.bufferedBytes - before
            var released = self.kinds[channel]?[link.localHandle].map { self.releasedSession(of: $0) } ?? []
            if self.receiving.remove(LinkKey(channel: channel, handle: link.localHandle)) != nil {
                released.append(.cancelReceive(channel: channel, handle: link.localHandle))
            }
            self.kinds[channel]?[link.localHandle] = nil
            self.waitingAnswers[channel]?[link.localHandle] = nil
            return [.send(Self.frame(channel, .detach(AMQPDetach(handle: link.localHandle, closed: true))))] + released
        default:
            return []
        }
    }

    // MARK: Flow

    private mutating func flow(_ flow: AMQPFlow, channel: UInt16, now: Date) -> [Action] {
        var actions: [Action] = []
        switch self.sessions[channel]!.flow(flow) {
        case .credit(let handle, _, let drain):
            actions += self.sendWaitingAnswers(channel: channel, handle: handle)
            if case .receiver = self.kinds[channel]?[handle] {
                let key = LinkKey(channel: channel, handle: handle)
                if drain, self.receiving.contains(key) || self.sessions[channel]!.links[handle]?.linkCredit == 0 {
                    // A running receive stops; what it brings anyway goes back unlocked.
                    if self.receiving.remove(key) != nil { actions.append(.cancelReceive(channel: channel, handle: handle)) }
                    if let drained = self.sessions[channel]!.drained(handle) { actions.append(.send(Self.frame(channel, .flow(drained)))) }
                } else {
                    actions += self.pull(channel: channel, handle: handle, now: now)
                }
            } else if drain, let drained = self.sessions[channel]!.drained(handle) {
                actions.append(.send(Self.frame(channel, .flow(drained))))
            }
        case .session, .receiverState, nil:
            break
        }
        if flow.echo { actions.append(.send(Self.frame(channel, .flow(self.sessions[channel]!.sessionFlow())))) }
        return actions
    }

    // MARK: Answers

    /// Sends the answers waiting on the answers link `handle`, as far as its credit goes.
    mutating func sendWaitingAnswers(channel: UInt16, handle: UInt32) -> [Action] {
        switch self.kinds[channel]?[handle] {
        case .tokenAnswers, .managementAnswers: break
        default: return []
        }
        var actions: [Action] = []
        while let answer = self.waitingAnswers[channel]?[handle]?.first, let deliveryId = self.sessions[channel]!.nextDelivery(on: handle) {
            self.waitingAnswers[channel]![handle]!.removeFirst()
            var payload = ByteBuffer()
            _ = try? payload.writeAMQPMessage(answer)
            self.nextTag &+= 1
            let tag = withUnsafeBytes(of: self.nextTag.bigEndian, Array.init)
            actions += self.transferFrames(channel: channel, handle: handle, deliveryId: deliveryId, tag: tag, payload: payload, settled: true)
        }
        return actions
    }

    /// The frames of one delivery the server sends: one transfer, or several of at most the
    /// peer's frame size, each after the first taking a transfer id but no credit.
    mutating func transferFrames(channel: UInt16, handle: UInt32, deliveryId: UInt32, tag: [UInt8], payload: ByteBuffer, settled: Bool) -> [Action] {
        // Room for the frame header and the transfer performative (a 16-byte tag at most).
        let chunk = max(Int(self.peerMaxFrameSize) - 128, 256)
        var payload = payload
        var frames: [Action] = []
        var first = true
        repeat {
            let slice = payload.readSlice(length: min(chunk, payload.readableBytes))!
            let more = payload.readableBytes > 0
            let transfer =
                first
                ? AMQPTransfer(handle: handle, deliveryId: deliveryId, deliveryTag: tag, messageFormat: 0, settled: settled, more: more)
                : AMQPTransfer(handle: handle, deliveryId: nil, deliveryTag: nil, messageFormat: nil, settled: nil, more: more)
            if !first { self.sessions[channel]!.continueDelivery() }
            first = false
            frames.append(.send(AMQPFrame(channel: channel, body: AMQPPerformative.transfer(transfer).value, payload: slice)))
        } while payload.readableBytes > 0
        return frames
    }

    /// Queues `answer` on the answers link `handle` and sends what its credit allows.
    mutating func answer(_ answer: AMQPMessage, channel: UInt16, handle: UInt32) -> [Action] {
        guard self.kinds[channel]?[handle] != nil else { return [] }
        self.waitingAnswers[channel, default: [:]][handle, default: []].append(answer)
        return self.sendWaitingAnswers(channel: channel, handle: handle)
    }

    /// The server's handle of the link on `channel` that is `kind`.
    func handle(of kind: Kind, channel: UInt16) -> UInt32? {
        self.kinds[channel]?.first(where: { $0.value == kind })?.key
    }

    static func frame(_ channel: UInt16, _ performative: AMQPPerformative) -> AMQPFrame {
        AMQPFrame(channel: channel, body: performative.value)
    }

    mutating func addGrant(_ grant: ClaimsGrants.Grant, now: Date) {
        self.grants.add(grant, now: now)
    }
}
