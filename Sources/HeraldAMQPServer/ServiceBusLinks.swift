import Foundation
import HeraldAMQP
import HeraldCore
import HeraldWire
import NIOCore

/// The links of one AMQP connection as Service Bus clients use them, without I/O: the `$cbs` pair
/// (tokens in, answers out) and senders to queues and topics. It answers attaches, grants credit,
/// verifies tokens, and turns deliveries into messages to store; the connection carries out the
/// ``Action``s and reports each store's outcome back with ``stored(channel:handle:deliveryId:_:)``.
///
/// Receiving, `$management` and sessions are refused with `amqp:not-implemented` for now.
struct ServiceBusLinks {
    /// What a link of the connection is for.
    enum Kind: Hashable {
        /// The client's requests to `$cbs` (the server receives).
        case tokenRequests
        /// The server's answers from `$cbs` (the server sends).
        case tokenAnswers
        /// Messages for the queue or topic `name` (the server receives).
        case sender(name: String)
    }

    /// What the connection must do.
    enum Action: Hashable {
        /// Write this frame.
        case send(AMQPFrame)
        /// Store `messages` in the queue or topic `entity`, then report the outcome of the delivery.
        case store([Message], entity: String, channel: UInt16, handle: UInt32, deliveryId: UInt32)
    }

    /// The credit the server grants a link it receives on, renewed when half is used.
    let credit: UInt32
    let maxMessageSize: Int
    let incomingWindow: UInt32
    let handleMax: UInt32
    private var sessions: [UInt16: AMQPSessionLinks] = [:]
    private var kinds: [UInt16: [UInt32: Kind]] = [:]
    private(set) var grants = ClaimsGrants()
    /// Answers waiting for credit on a `$cbs` answer link, by channel and the server's handle.
    private var waitingAnswers: [UInt16: [UInt32: [AMQPMessage]]] = [:]
    private var nextTag: UInt32 = 0

    /// Whether `$cbs` tokens are verified; without, any token grants every right.
    let verifiesTokens: Bool

    init(verifiesTokens: Bool = true, credit: UInt32 = 100, maxMessageSize: Int = 1_048_576, incomingWindow: UInt32 = 5000, handleMax: UInt32 = 255) {
        self.verifiesTokens = verifiesTokens
        self.credit = credit
        self.maxMessageSize = maxMessageSize
        self.incomingWindow = incomingWindow
        self.handleMax = handleMax
    }

    mutating func begun(channel: UInt16, peer: AMQPBegin) {
        self.sessions[channel] = AMQPSessionLinks(
            peer: peer, incomingWindow: self.incomingWindow, handleMax: self.handleMax, maxMessageSize: self.maxMessageSize)
        self.kinds[channel] = [:]
    }

    mutating func ended(channel: UInt16) {
        self.sessions[channel] = nil
        self.kinds[channel] = nil
        self.waitingAnswers[channel] = nil
    }

    /// A link frame of the session the server calls `channel`. `credential` finds an access key
    /// by name, for `$cbs` tokens.
    mutating func handle(
        _ performative: AMQPPerformative, channel: UInt16, payload: [UInt8], now: Date, credential: (String) -> AMQPCredential?
    ) -> [Action] {
        guard self.sessions[channel] != nil else { return [] }
        switch performative {
        case .attach(let attach): return self.attach(attach, channel: channel, now: now)
        case .flow(let flow): return self.flow(flow, channel: channel)
        case .transfer(let transfer): return self.transfer(transfer, payload: payload, channel: channel, now: now, credential: credential)
        case .detach(let detach):
            guard let link = self.sessions[channel]!.detach(remote: detach.handle) else { return [] }
            self.kinds[channel]?[link.localHandle] = nil
            self.waitingAnswers[channel]?[link.localHandle] = nil
            return [.send(Self.frame(channel, .detach(AMQPDetach(handle: link.localHandle, closed: true))))]
        default:
            // Dispositions of the server's answers: they are sent settled, nothing waits for them.
            return []
        }
    }

    /// The outcome of storing a delivery: the disposition that settles it.
    mutating func stored(channel: UInt16, handle: UInt32, deliveryId: UInt32, _ outcome: Result<Void, AMQPError>) -> [Action] {
        guard self.sessions[channel]?.links[handle] != nil else { return [] }
        let state: AMQPDeliveryState
        switch outcome {
        case .success: state = .accepted
        case .failure(let error): state = .rejected(error)
        }
        return [.send(Self.frame(channel, .disposition(AMQPDisposition(role: .receiver, first: deliveryId, settled: true, state: state))))]
    }

    // MARK: Attach

    private mutating func attach(_ attach: AMQPAttach, channel: UInt16, now: Date) -> [Action] {
        // The peer's sender names its target, its receiver its source.
        let address = attach.role == .sender ? attach.target?.address : attach.source?.address
        let kind: Kind
        do {
            let parsed = try ServiceBusAddress(parsing: address ?? "")
            switch (parsed, attach.role) {
            case (.claimsBasedSecurity, .sender): kind = .tokenRequests
            case (.claimsBasedSecurity, .receiver): kind = .tokenAnswers
            case (.entity(let entity), .sender) where entity.subscription == nil && !entity.isDeadLetter:
                guard self.grants.allows(.send, on: entity, at: now) else {
                    throw AMQPError(
                        condition: AMQPCondition.unauthorizedAccess, description: "no valid token with the send right on '\(entity.name)' was put on $cbs")
                }
                kind = .sender(name: entity.name)
            case (.entity, .sender):
                throw AMQPError(condition: AMQPCondition.notAllowed, description: "messages are sent to a queue or a topic")
            default:
                throw AMQPError(condition: AMQPCondition.notImplemented, description: "Herald's AMQP listener serves $cbs and senders so far")
            }
        } catch let error as AMQPError {
            return self.refuse(attach, channel: channel, error)
        } catch {
            return self.refuse(attach, channel: channel, AMQPError(condition: AMQPCondition.internalError))
        }
        let link: AMQPSessionLinks.Link
        switch self.sessions[channel]!.attach(attach) {
        case .success(let attached): link = attached
        case .failure(let error): return self.refuse(attach, channel: channel, error)
        }
        self.kinds[channel]![link.localHandle] = kind
        var reply = AMQPAttach(name: attach.name, handle: link.localHandle, role: link.role, source: attach.source, target: attach.target)
        reply.senderSettleMode = attach.senderSettleMode
        reply.receiverSettleMode = attach.receiverSettleMode
        reply.maxMessageSize = UInt64(self.maxMessageSize)
        if link.role == .sender { reply.initialDeliveryCount = 0 }
        var actions: [Action] = [.send(Self.frame(channel, .attach(reply)))]
        if link.role == .receiver, let flow = self.sessions[channel]!.grant(self.credit, on: link.localHandle) {
            actions.append(.send(Self.frame(channel, .flow(flow))))
        }
        return actions
    }

    /// The answer of a refused link: an attach without source or target, then a detach with the
    /// reason (part 2, section 2.6.3).
    private func refuse(_ attach: AMQPAttach, channel: UInt16, _ error: AMQPError) -> [Action] {
        let reply = AMQPAttach(name: attach.name, handle: attach.handle, role: attach.role == .sender ? .receiver : .sender, source: nil, target: nil)
        return [
            .send(Self.frame(channel, .attach(reply))),
            .send(Self.frame(channel, .detach(AMQPDetach(handle: attach.handle, closed: true, error: error)))),
        ]
    }

    // MARK: Flow

    private mutating func flow(_ flow: AMQPFlow, channel: UInt16) -> [Action] {
        var actions: [Action] = []
        switch self.sessions[channel]!.flow(flow) {
        case .credit(let handle, _, let drain):
            actions += self.sendWaitingAnswers(channel: channel, handle: handle)
            if drain, let drained = self.sessions[channel]!.drained(handle) { actions.append(.send(Self.frame(channel, .flow(drained)))) }
        case .session, .receiverState, nil:
            break
        }
        if flow.echo { actions.append(.send(Self.frame(channel, .flow(self.sessions[channel]!.sessionFlow())))) }
        return actions
    }

    // MARK: Transfers

    private mutating func transfer(
        _ transfer: AMQPTransfer, payload: [UInt8], channel: UInt16, now: Date, credential: (String) -> AMQPCredential?
    ) -> [Action] {
        let results: [AMQPSessionLinks.TransferResult]
        do {
            results = try self.sessions[channel]!.transfer(transfer, payload: payload)
        } catch let failure as AMQPSessionLinks.LinkFailure {
            _ = self.sessions[channel]!.detach(local: failure.handle)
            self.kinds[channel]?[failure.handle] = nil
            return [.send(Self.frame(channel, .detach(AMQPDetach(handle: failure.handle, closed: true, error: failure.error))))]
        } catch {
            let error = error as? AMQPError ?? AMQPError(condition: AMQPCondition.internalError)
            return [.send(Self.frame(channel, .end(AMQPEnding(error: error))))]
        }
        var actions: [Action] = []
        for result in results {
            switch result {
            case .incomplete, .aborted: break
            case .window(let flow): actions.append(.send(Self.frame(channel, .flow(flow))))
            case .delivery(let delivery): actions += self.delivered(delivery, channel: channel, now: now, credential: credential)
            }
        }
        return actions
    }

    private mutating func delivered(
        _ delivery: AMQPSessionLinks.ReceivedDelivery, channel: UInt16, now: Date, credential: (String) -> AMQPCredential?
    ) -> [Action] {
        var actions = self.renewCredit(channel: channel, handle: delivery.handle)
        switch self.kinds[channel]?[delivery.handle] {
        case .tokenRequests:
            let request = try? AMQPMessage(from: ByteBuffer(bytes: delivery.bytes))
            var outcome = request.map { ClaimsBasedSecurity.putToken($0, now: now, credential: credential) }
            if !self.verifiesTokens, let request {
                outcome = ClaimsBasedSecurity.Outcome(
                    response: ClaimsBasedSecurity.response(to: request.properties?.messageId ?? .null, status: 202, "Accepted"),
                    grant: ClaimsGrants.Grant(path: "", rights: [.manage], keyEntity: nil, expiry: .distantFuture))
            }
            if let grant = outcome?.grant { self.grants.add(grant) }
            if !delivery.settled {
                actions.append(
                    .send(Self.frame(channel, .disposition(AMQPDisposition(role: .receiver, first: delivery.deliveryId, settled: true, state: .accepted)))))
            }
            let answer = outcome?.response ?? ClaimsBasedSecurity.response(to: .null, status: 400, "the request is not an AMQP message")
            if let answers = self.kinds[channel]?.first(where: { $0.value == .tokenAnswers })?.key {
                self.waitingAnswers[channel, default: [:]][answers, default: []].append(answer)
                actions += self.sendWaitingAnswers(channel: channel, handle: answers)
            }
        case .sender(let name):
            do {
                let messages = try Self.messages(in: delivery)
                actions.append(.store(messages, entity: name, channel: channel, handle: delivery.handle, deliveryId: delivery.deliveryId))
            } catch {
                actions += self.stored(channel: channel, handle: delivery.handle, deliveryId: delivery.deliveryId, .failure(error))
            }
        case .tokenAnswers, nil:
            break
        }
        return actions
    }

    /// The messages of a delivery: one, or for Service Bus's batch format the messages in its data sections.
    static func messages(in delivery: AMQPSessionLinks.ReceivedDelivery) throws(AMQPError) -> [Message] {
        let envelope: AMQPMessage
        do { envelope = try AMQPMessage(from: ByteBuffer(bytes: delivery.bytes)) } catch {
            throw AMQPError(condition: AMQPCondition.decodeError, description: "the delivery is not an AMQP message: \(error)")
        }
        switch delivery.messageFormat {
        case 0:
            return [try ServiceBusMessageMapping.message(from: envelope)]
        case 0x8001_3700:
            guard case .data(let chunks) = envelope.body else {
                throw AMQPError(condition: AMQPCondition.decodeError, description: "a batch's body is data sections")
            }
            var messages: [Message] = []
            for chunk in chunks {
                do { messages.append(try ServiceBusMessageMapping.message(from: try AMQPMessage(from: ByteBuffer(bytes: chunk)))) } catch let error as AMQPError
                {
                    throw error
                } catch {
                    throw AMQPError(condition: AMQPCondition.decodeError, description: "a batched message is not an AMQP message: \(error)")
                }
            }
            return messages
        default:
            throw AMQPError(condition: AMQPCondition.notImplemented, description: "message format \(delivery.messageFormat) is not served")
        }
    }

    /// Grants a receiving link more credit once half of it is used.
    private mutating func renewCredit(channel: UInt16, handle: UInt32) -> [Action] {
        guard let link = self.sessions[channel]?.links[handle], link.role == .receiver, link.linkCredit <= self.credit / 2,
            let flow = self.sessions[channel]!.grant(self.credit, on: handle)
        else { return [] }
        return [.send(Self.frame(channel, .flow(flow)))]
    }

    /// Sends the `$cbs` answers waiting on the link `handle`, as far as its credit goes.
    private mutating func sendWaitingAnswers(channel: UInt16, handle: UInt32) -> [Action] {
        guard self.kinds[channel]?[handle] == .tokenAnswers else { return [] }
        var actions: [Action] = []
        while let answer = self.waitingAnswers[channel]?[handle]?.first, let deliveryId = self.sessions[channel]!.nextDelivery(on: handle) {
            self.waitingAnswers[channel]![handle]!.removeFirst()
            var payload = ByteBuffer()
            _ = try? payload.writeAMQPMessage(answer)
            self.nextTag &+= 1
            let tag = withUnsafeBytes(of: self.nextTag.bigEndian, Array.init)
            let transfer = AMQPTransfer(handle: handle, deliveryId: deliveryId, deliveryTag: tag, messageFormat: 0, settled: true)
            actions.append(.send(AMQPFrame(channel: channel, body: AMQPPerformative.transfer(transfer).value, payload: payload)))
        }
        return actions
    }

    private static func frame(_ channel: UInt16, _ performative: AMQPPerformative) -> AMQPFrame {
        AMQPFrame(channel: channel, body: performative.value)
    }
}
