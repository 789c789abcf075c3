import Foundation
import HeraldAMQP
import HeraldCore
import HeraldWire
import NIOCore

extension ServiceBusLinks {
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

    mutating func transfer(
        _ transfer: AMQPTransfer, payload: [UInt8], channel: UInt16, now: Date, credential: (String) -> AMQPCredential?
    ) -> [Action] {
        let results: [AMQPSessionLinks.TransferResult]
        let before = self.sessions[channel]!.bufferedBytes
        defer { self.bufferedBytes += (self.sessions[channel]?.bufferedBytes ?? before) - before }
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
        // Each link holds at most one message, but a client with many links could hold many.
        if self.bufferedBytes + self.sessions[channel]!.bufferedBytes - before > self.maxBufferedBytes {
            return [
                .fail(
                    AMQPError(
                        condition: AMQPCondition.resourceLimitExceeded,
                        description: "unfinished deliveries hold more than \(self.maxBufferedBytes) bytes on this connection"))
            ]
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
        let kind = self.kinds[channel]?[delivery.handle]
        switch kind {
        case .tokenRequests, .managementRequests:
            // A request is taken as it arrives; its answer says how it went.
            if !delivery.settled {
                actions.append(
                    .send(Self.frame(channel, .disposition(AMQPDisposition(role: .receiver, first: delivery.deliveryId, settled: true, state: .accepted)))))
            }
        default: break
        }
        switch kind {
        case .tokenRequests:
            let request = try? AMQPMessage(from: ByteBuffer(bytes: delivery.bytes))
            var outcome = request.map { ClaimsBasedSecurity.putToken($0, now: now, credential: credential) }
            if !self.verifiesTokens, let request {
                outcome = ClaimsBasedSecurity.Outcome(
                    response: ClaimsBasedSecurity.response(to: request.properties?.messageId ?? .null, status: 202, "Accepted"),
                    grant: ClaimsGrants.Grant(path: "", rights: [.manage], keyEntity: nil, expiry: .distantFuture))
            }
            if let grant = outcome?.grant { self.addGrant(grant, now: now) }
            let answer = outcome?.response ?? ClaimsBasedSecurity.response(to: .null, status: 400, "the request is not an AMQP message")
            if let answers = self.handle(of: .tokenAnswers, channel: channel) {
                actions += self.answer(answer, channel: channel, handle: answers)
            }
        case .managementRequests(let entity):
            actions += self.managementRequest(delivery.bytes, entity: entity, channel: channel, now: now)
        case .sender(let name):
            do {
                let messages = try Self.messages(in: delivery)
                actions.append(.store(messages, entity: name, channel: channel, handle: delivery.handle, deliveryId: delivery.deliveryId))
            } catch {
                actions += self.stored(channel: channel, handle: delivery.handle, deliveryId: delivery.deliveryId, .failure(error))
            }
        case .tokenAnswers, .managementAnswers, .receiver, .acceptingSession, nil:
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
            return try chunks.map { chunk throws(AMQPError) in try Self.message(encoded: chunk) }
        default:
            throw AMQPError(condition: AMQPCondition.notImplemented, description: "message format \(delivery.messageFormat) is not served")
        }
    }

    /// The Herald message of one encoded AMQP message (a batch's section, a scheduled message).
    static func message(encoded bytes: [UInt8]) throws(AMQPError) -> Message {
        let amqp: AMQPMessage
        do { amqp = try AMQPMessage(from: ByteBuffer(bytes: bytes)) } catch {
            throw AMQPError(condition: AMQPCondition.decodeError, description: "a batched message is not an AMQP message: \(error)")
        }
        return try ServiceBusMessageMapping.message(from: amqp)
    }

    /// Grants a receiving link more credit once half of it is used.
    private mutating func renewCredit(channel: UInt16, handle: UInt32) -> [Action] {
        guard let link = self.sessions[channel]?.links[handle], link.role == .receiver, link.linkCredit <= self.credit / 2,
            let flow = self.sessions[channel]!.grant(self.credit, on: handle)
        else { return [] }
        return [.send(Self.frame(channel, .flow(flow)))]
    }
}
