import Foundation
import HeraldAMQP
import HeraldCore
import HeraldWire

extension ServiceBusLinks {
    /// The filter a session receiver names its session with (null for the next available one).
    static let sessionFilter = AMQPValue.symbol("com.microsoft:session-filter")

    mutating func attach(_ attach: AMQPAttach, channel: UInt16, now: Date) -> [Action] {
        if attach.target?.isCoordinator == true {
            return Self.refuse(
                attach, channel: channel,
                AMQPError(condition: AMQPCondition.notImplemented, description: "Herald does not serve AMQP transactions (a transaction coordinator)"))
        }
        // The peer's sender names its target, its receiver its source.
        let address = attach.role == .sender ? attach.target?.address : attach.source?.address
        let kind: Kind
        do {
            kind = try self.kind(of: try ServiceBusAddress(parsing: address ?? ""), attach: attach, now: now)
        } catch {
            return Self.refuse(attach, channel: channel, error)
        }
        let link: AMQPSessionLinks.Link
        switch self.sessions[channel]!.attach(attach) {
        case .success(let attached): link = attached
        case .failure(let error): return Self.refuse(attach, channel: channel, error)
        }
        self.kinds[channel]![link.localHandle] = kind
        if case .acceptingSession(let entity, _) = kind {
            // The attach is answered once the broker has locked a session.
            let filter = attach.source?.filter?.first(where: { $0.key == Self.sessionFilter })?.value
            let timeout = attach.properties?.first(where: { $0.key == Self.timeoutProperty })?.value.unsigned
            return [
                .acceptSession(
                    SessionRequest(
                        channel: channel, handle: link.localHandle, attach: attach, entity: entity, sessionId: filter.flatMap(Self.sessionId),
                        maxWaitTime: .milliseconds(Int64(min(timeout ?? 60_000, 300_000)))))
            ]
        }
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
            try self.require(.listen, on: entity, now: now)
            // Service Bus's receive-and-delete: the client takes deliveries settled.
            let mode: ReceiveMode = attach.senderSettleMode == 1 ? .receiveAndDelete : .peekLock
            if attach.source?.filter?.contains(where: { $0.key == Self.sessionFilter }) == true {
                return .acceptingSession(entity: entity.receivePath, mode: mode)
            }
            return .receiver(entity: entity.receivePath, mode: mode, session: nil)
        }
    }

    /// The session a session filter names: a string, or `nil` (null) for the next available one.
    private static func sessionId(_ filter: AMQPValue) -> String? {
        if case .described(_, let value) = filter { return value.text }
        return filter.text
    }

    /// What the broker's answer to a session receiver's attach gives the client: the attach with
    /// the session it holds and until when (in .NET ticks, as the SDKs read it), or the refusal.
    mutating func sessionAccepted(_ request: SessionRequest, _ outcome: Result<SessionLock, AMQPError>, now: Date) -> [Action] {
        let channel = request.channel
        let handle = request.handle
        guard case .acceptingSession(let entity, let mode) = self.kinds[channel]?[handle] else {
            // The client went away meanwhile.
            if case .success(let lock) = outcome { return [.releaseSession(lock)] }
            return []
        }
        let lock: SessionLock
        switch outcome {
        case .success(let accepted): lock = accepted
        case .failure(let error):
            _ = self.sessions[channel]?.detach(local: handle)
            self.kinds[channel]?[handle] = nil
            return Self.refuse(request.attach, channel: channel, error)
        }
        self.sessionLocks[SessionKey(entity: entity, sessionId: lock.sessionId)] = lock
        self.kinds[channel]?[handle] = .receiver(entity: entity, mode: mode, session: lock.sessionId)
        var source = request.attach.source ?? AMQPSource(address: nil)
        source.filter = (source.filter ?? []).filter { $0.key != Self.sessionFilter } + [AMQPMapEntry(Self.sessionFilter, .string(lock.sessionId))]
        var reply = AMQPAttach(name: request.attach.name, handle: handle, role: .sender, source: source, target: request.attach.target)
        reply.senderSettleMode = request.attach.senderSettleMode
        reply.receiverSettleMode = request.attach.receiverSettleMode
        reply.maxMessageSize = UInt64(self.maxMessageSize)
        reply.initialDeliveryCount = 0
        reply.properties = [AMQPMapEntry(Self.lockedUntilProperty, .long(Self.ticks(lock.lockedUntil)))]
        return [.send(Self.frame(channel, .attach(reply)))] + self.pull(channel: channel, handle: handle, now: now)
    }

    static let timeoutProperty = AMQPValue.symbol("com.microsoft:timeout")
    static let lockedUntilProperty = AMQPValue.symbol("com.microsoft:locked-until-utc")

    /// A time as .NET ticks: 100 ns since 0001-01-01.
    static func ticks(_ date: Date) -> Int64 {
        621_355_968_000_000_000 &+ date.millisecondsSince1970 &* 10_000
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
    static func refuse(_ attach: AMQPAttach, channel: UInt16, _ error: AMQPError) -> [Action] {
        var reply = AMQPAttach(name: attach.name, handle: attach.handle, role: attach.role == .sender ? .receiver : .sender, source: nil, target: nil)
        if reply.role == .sender { reply.initialDeliveryCount = 0 }
        return [
            .send(Self.frame(channel, .attach(reply))),
            .send(Self.frame(channel, .detach(AMQPDetach(handle: attach.handle, closed: true, error: error)))),
        ]
    }
}
