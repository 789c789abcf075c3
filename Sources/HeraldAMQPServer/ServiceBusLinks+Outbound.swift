import Foundation
import HeraldAMQP
import HeraldCore
import NIOCore

extension ServiceBusLinks {
    /// Starts a receive for the receiver link `handle` when it has credit and none runs.
    mutating func pull(channel: UInt16, handle: UInt32, now: Date) -> [Action] {
        let key = LinkKey(channel: channel, handle: handle)
        guard case .receiver(let entity, let mode, let sessionId) = self.kinds[channel]?[handle], !self.receiving.contains(key),
            let link = self.sessions[channel]?.links[handle], link.linkCredit > 0
        else { return [] }
        let session = sessionId.flatMap { self.sessionLocks[SessionKey(entity: entity, sessionId: $0)] }
        guard sessionId == nil || session != nil, self.isWritable else { return [] }
        if mode == .peekLock, self.locks.count >= self.maxHeldLocks {
            self.forgetExpiredLocks(now: now)
            // The client settles (or its locks expire) before it gets more.
            guard self.locks.count < self.maxHeldLocks else { return [] }
        }
        self.receiving.insert(key)
        // A session receive has no byte bound: it takes fewer messages at a time.
        let count = min(Int(link.linkCredit), session == nil ? self.receiveBatch : 16)
        return [
            .receive(ReceiveRequest(channel: channel, handle: handle, entity: entity, mode: mode, session: session, maxCount: count, waits: !link.drain))
        ]
    }

    /// The connection's writability changed; receives that waited for it start.
    mutating func writabilityChanged(_ isWritable: Bool, now: Date) -> [Action] {
        self.isWritable = isWritable
        guard isWritable else { return [] }
        return self.pullAll(now: now)
    }

    /// Starts a receive on every receiver link that has credit and none running.
    mutating func pullAll(now: Date) -> [Action] {
        var actions: [Action] = []
        for (channel, links) in self.kinds {
            for (handle, kind) in links {
                if case .receiver = kind { actions += self.pull(channel: channel, handle: handle, now: now) }
            }
        }
        return actions
    }

    /// What a receive brought: transfers as far as the link's credit goes (the rest is given
    /// back), then the next receive while credit remains.
    mutating func received(_ request: ReceiveRequest, _ outcome: Result<[ReceivedMessage], AMQPError>, now: Date) -> [Action] {
        let channel = request.channel
        let handle = request.handle
        self.receiving.remove(LinkKey(channel: channel, handle: handle))
        let messages: [ReceivedMessage]
        switch outcome {
        case .success(let received): messages = received
        case .failure(let error):
            guard self.sessions[channel]?.detach(local: handle) != nil else { return [] }
            let released = self.kinds[channel]?[handle].map { self.releasedSession(of: $0) } ?? []
            self.kinds[channel]?[handle] = nil
            return [.send(Self.frame(channel, .detach(AMQPDetach(handle: handle, closed: true, error: error))))] + released
        }
        var actions: [Action] = []
        let attached = self.kinds[channel]?[handle] == .receiver(entity: request.entity, mode: request.mode, session: request.session?.sessionId)
        for message in messages {
            guard attached, let deliveryId = self.sessions[channel]?.nextDelivery(on: handle) else {
                if let token = message.lockToken {
                    actions.append(.settle(Settlement(lock: UUID(), token: token, operation: .release)))
                }
                continue
            }
            var payload = ByteBuffer()
            _ = try? payload.writeAMQPMessage(ServiceBusMessageMapping.amqpMessage(for: message))
            // The client's lock token: fresh per delivery (a broker token's nonce may be shared
            // by the messages of one receive; its sequence number tells them apart).
            let lock = UUID()
            if let token = message.lockToken {
                let session = request.session.map { SessionKey(entity: $0.entity, sessionId: $0.sessionId) }
                self.locks[lock] = HeldLock(
                    token: token, lockedUntil: message.lockedUntil ?? now, channel: channel, deliveryId: deliveryId, session: session)
                self.deliveries[channel, default: [:]][deliveryId] = lock
            }
            let tag = ServiceBusMessageMapping.deliveryTag(lock)
            actions += self.transferFrames(
                channel: channel, handle: handle, deliveryId: deliveryId, tag: tag, payload: payload, settled: message.lockToken == nil)
        }
        guard attached, let link = self.sessions[channel]?.links[handle] else { return actions }
        if link.drain, let drained = self.sessions[channel]!.drained(handle) {
            actions.append(.send(Self.frame(channel, .flow(drained))))
        }
        return actions + self.pull(channel: channel, handle: handle, now: now)
    }

    /// The client's disposition of deliveries the server sent: a settlement for each one it
    /// holds a lock of; a single unknown delivery the client waits for is answered lock-lost.
    mutating func disposition(_ disposition: AMQPDisposition, channel: UInt16) -> [Action] {
        guard disposition.role == .receiver else { return [] }
        let first = disposition.first
        let span = (disposition.last ?? first) &- first
        let ids = (self.deliveries[channel] ?? [:]).keys.filter { $0 &- first <= span }.sorted { $0 &- first < $1 &- first }
        if ids.isEmpty {
            guard !disposition.settled, span == 0 else { return [] }
            return [.send(Self.echo(channel: channel, deliveryId: first, .rejected(Self.lockLost)))]
        }
        let operation = Self.operation(of: disposition.state)
        var actions: [Action] = []
        for id in ids {
            guard let lock = self.deliveries[channel]?.removeValue(forKey: id), let held = self.locks[lock] else { continue }
            guard let operation else {
                // `received` (or no state) settles nothing: the lock stays until it expires.
                continue
            }
            actions.append(
                .settle(
                    Settlement(
                        lock: lock, token: held.token, operation: operation, echoChannel: disposition.settled ? nil : channel,
                        echoDeliveryId: disposition.settled ? nil : id)))
        }
        return actions
    }

    /// The outcome of a settlement: the echo the client waits for, and receives that waited for
    /// the client to hold fewer locks.
    mutating func settled(_ settlement: Settlement, _ outcome: Result<Void, AMQPError>, now: Date) -> [Action] {
        let wasFull = self.locks.count >= self.maxHeldLocks
        if case .failure(let error) = outcome, error.condition != Self.lockLost.condition {
            // A store failure leaves the lock with the client, who may try again.
        } else {
            self.locks[settlement.lock] = nil
        }
        var actions: [Action] = []
        if let (channel, deliveryId) = settlement.echo, self.sessions[channel] != nil {
            let state: AMQPDeliveryState
            switch outcome {
            case .failure(let error): state = .rejected(error)
            case .success:
                switch settlement.operation {
                case .complete: state = .accepted
                case .abandon, .release: state = .modified(deliveryFailed: true, undeliverableHere: false, messageAnnotations: nil)
                case .defer: state = .modified(deliveryFailed: true, undeliverableHere: true, messageAnnotations: nil)
                // Service Bus clients read a rejected echo with an error as a failed dead-lettering.
                case .deadLetter: state = .rejected(nil)
                }
            }
            actions.append(.send(Self.echo(channel: channel, deliveryId: deliveryId, state)))
        }
        if wasFull { actions += self.pullAll(now: now) }
        return actions
    }

    /// The error of a settlement whose lock the client no longer holds.
    static let lockLost = AMQPError(
        condition: "com.microsoft:message-lock-lost", description: "the lock expired, was settled, or is not known on this connection")

    /// What the client's delivery state asks for; `nil` for none.
    static func operation(of state: AMQPDeliveryState?) -> Settlement.Operation? {
        switch state {
        case .accepted: return .complete
        case .released: return .release
        case .modified(_, let undeliverableHere, _): return undeliverableHere ? .defer : .abandon
        case .rejected(let error):
            let info = Dictionary((error?.info ?? []).compactMap { entry in entry.key.text.map { ($0, entry.value) } }) { first, _ in first }
            let reason = info["DeadLetterReason"]?.text ?? error?.description ?? "DeadLetteredByReceiver"
            return .deadLetter(reason: reason.isEmpty ? "DeadLetteredByReceiver" : reason, description: info["DeadLetterErrorDescription"]?.text)
        case .received, nil: return nil
        }
    }

    private static func echo(channel: UInt16, deliveryId: UInt32, _ state: AMQPDeliveryState) -> AMQPFrame {
        Self.frame(channel, .disposition(AMQPDisposition(role: .sender, first: deliveryId, settled: true, state: state)))
    }

    /// Drops the locks that expired: the client can no longer settle them.
    mutating func forgetExpiredLocks(now: Date) {
        for (lock, held) in self.locks where held.lockedUntil < now {
            self.locks[lock] = nil
            if let channel = held.channel, let deliveryId = held.deliveryId { self.deliveries[channel]?[deliveryId] = nil }
        }
    }
}
