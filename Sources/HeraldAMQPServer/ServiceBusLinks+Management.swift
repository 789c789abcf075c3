import Foundation
import HeraldAMQP
import HeraldCore
import NIOCore

extension ServiceBusLinks {
    /// A request to an entity's `$management` node: parsed, its locks looked up, its right
    /// checked; what cannot run is answered at once.
    mutating func managementRequest(_ bytes: [UInt8], entity: ServiceBusEntity, channel: UInt16, now: Date) -> [Action] {
        let answers = self.handle(of: .managementAnswers(entity), channel: channel)
        guard let request = try? AMQPMessage(from: ByteBuffer(bytes: bytes)) else {
            guard let answers else { return [] }
            return self.answer(
                ServiceBusManagement.failure(to: .null, status: 400, condition: nil, "the request is not an AMQP message"), channel: channel, handle: answers)
        }
        let correlation = request.properties?.messageId ?? .null
        let operation: ServiceBusManagement.Operation
        do {
            self.forgetExpiredLocks(now: now)
            let locks = self.locks
            let sessions = self.sessionLocks
            operation = try ServiceBusManagement.operation(
                of: request, lock: { locks[$0]?.token }, session: { sessions[SessionKey(entity: entity.receivePath, sessionId: $0)] })
            try self.require(operation.right, on: entity, now: now)
        } catch {
            guard let answers else { return [] }
            return self.answer(ServiceBusManagement.failure(to: correlation, error), channel: channel, handle: answers)
        }
        return [.manage(ManagementCall(channel: channel, answerHandle: answers, correlation: correlation, entity: entity, operation: operation))]
    }

    /// The answer of a `$management` operation, and the locks it gave or renewed or settled.
    mutating func answered(_ call: ManagementCall, _ outcome: ServiceBusManagement.Outcome, now: Date) -> [Action] {
        for (lock, held) in outcome.locks { self.locks[lock] = held }
        for (lock, until) in outcome.renewed { self.locks[lock]?.lockedUntil = until }
        if let session = outcome.renewedSession {
            let key = SessionKey(entity: session.entity, sessionId: session.sessionId)
            if self.sessionLocks[key]?.nonce == session.nonce {
                self.sessionLocks[key] = session
                // The session's messages stay locked as long as it: the client can still settle them.
                for (lock, held) in self.locks where held.session == key && held.lockedUntil < session.lockedUntil {
                    self.locks[lock]?.lockedUntil = session.lockedUntil
                }
            }
        }
        for lock in outcome.settled {
            if let held = self.locks.removeValue(forKey: lock), let channel = held.channel, let id = held.deliveryId {
                self.deliveries[channel]?[id] = nil
            }
        }
        guard let handle = call.answerHandle else { return [] }
        return self.answer(outcome.response, channel: call.channel, handle: handle)
    }
}
