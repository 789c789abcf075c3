import Foundation
import HeraldAMQP
import HeraldCore
import HeraldWire

extension ServiceBusLinks {
    /// The filter a session receiver names its session with (null for the next available one).
    static let sessionFilter = AMQPValue.symbol("com.microsoft:session-filter")

    mutating func attach(_ attach: AMQPAttach, channel: UInt16, now: Date) -> [Action] {
        // The peer's sender names its target, its receiver its source.
        let address = attach.role == .sender ? attach.target?.address : attach.source?.address
        let kind: Kind
        do {
            kind = try self.kind(of: try ServiceBusAddress(parsing: address ?? ""), attach: attach, now: now)
        } catch {
            return self.refuse(attach, channel: channel, error)
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

    /// What the link at `address` is for, or why it is refused.
    private func kind(of address: ServiceBusAddress, attach: AMQPAttach, now: Date) throws(AMQPError) -> Kind {
        switch (address, attach.role) {
        case (.claimsBasedSecurity, .sender): return .tokenRequests
        case (.claimsBasedSecurity, .receiver): return .tokenAnswers
        case (.management(let entity), .sender): return .managementRequests(entity)
        case (.management(let entity), .receiver): return .managementAnswers(entity)
        case (.entity(let entity), .sender):
            guard entity.subscription == nil, !entity.isDeadLetter else {
                throw AMQPError(condition: AMQPCondition.notAllowed, description: "messages are sent to a queue or a topic")
            }
            try self.require(.send, on: entity, now: now)
            return .sender(name: entity.name)
        case (.entity(let entity), .receiver):
            if attach.source?.filter?.contains(where: { $0.key == Self.sessionFilter }) == true {
                throw AMQPError(condition: AMQPCondition.notImplemented, description: "Herald's AMQP listener does not serve session receivers yet")
            }
            try self.require(.listen, on: entity, now: now)
            // Service Bus's receive-and-delete: the client takes deliveries settled.
            let mode: ReceiveMode = attach.senderSettleMode == 1 ? .receiveAndDelete : .peekLock
            return .receiver(entity: entity.receivePath, mode: mode)
        }
    }

    func require(_ right: AccessRight, on entity: ServiceBusEntity, now: Date) throws(AMQPError) {
        guard self.grants.allows(right, on: entity, at: now) else {
            throw AMQPError(
                condition: AMQPCondition.unauthorizedAccess,
                description: "no valid token with the \(right.rawValue) right on '\(entity.name)' was put on $cbs")
        }
    }

    /// The answer of a refused link: an attach without source or target, then a detach with the
    /// reason (part 2, section 2.6.3).
    func refuse(_ attach: AMQPAttach, channel: UInt16, _ error: AMQPError) -> [Action] {
        var reply = AMQPAttach(name: attach.name, handle: attach.handle, role: attach.role == .sender ? .receiver : .sender, source: nil, target: nil)
        if reply.role == .sender { reply.initialDeliveryCount = 0 }
        return [
            .send(Self.frame(channel, .attach(reply))),
            .send(Self.frame(channel, .detach(AMQPDetach(handle: attach.handle, closed: true, error: error)))),
        ]
    }
}
