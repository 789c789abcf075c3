import Foundation
import HeraldAMQP
import HeraldCore
import NIOCore

/// What the AMQP links ask of the broker: stores, receives, settlements and `$management`
/// operations, each turned into the outcome the links report to the client.
enum ServiceBusBroker {
    /// Stores `messages` in the queue `name`, or the topic when there is no such queue (Service
    /// Bus clients send to both alike).
    static func send(_ messages: [Message], to name: String, broker: any MessageBroker) async -> Result<[SendReceipt], AMQPError> {
        do {
            do {
                return .success(try await broker.send(messages, to: .queue(name)))
            } catch let error as HeraldError where error.code == .entityNotFound {
                return .success(try await broker.send(messages, to: .topic(name)))
            }
        } catch {
            return .failure(self.amqpError(error))
        }
    }

    /// The most message bytes one receive takes (at least one message, whatever its size).
    static let maxReceiveBytes = 1 << 20

    /// Receives for a receiver link; a receive that may wait does, for a while, so that a link
    /// with credit and nothing to take does not spin.
    static func receive(_ request: ServiceBusLinks.ReceiveRequest, broker: any MessageBroker) async -> Result<[ReceivedMessage], AMQPError> {
        let wait: Duration = request.waits ? .seconds(5) : .zero
        do {
            guard let session = request.session else {
                return .success(
                    try await broker.receive(
                        from: request.entity, maxCount: request.maxCount, maxBytes: self.maxReceiveBytes, maxWaitTime: wait, mode: request.mode))
            }
            var received = try await broker.receive(from: session, maxCount: request.maxCount, maxWaitTime: wait)
            if request.mode == .receiveAndDelete {
                // A session receive locks; receive-and-delete completes at once.
                for index in received.indices {
                    if let token = received[index].lockToken { _ = try await broker.complete(token) }
                    received[index].lockToken = nil
                    received[index].lockedUntil = nil
                }
            }
            return .success(received)
        } catch {
            return .failure(self.amqpError(error))
        }
    }

    /// Locks a session for a session receiver.
    static func acceptSession(_ request: ServiceBusLinks.SessionRequest, broker: any MessageBroker) async -> Result<SessionLock, AMQPError> {
        do {
            return .success(try await broker.acceptSession(on: request.entity, sessionId: request.sessionId, maxWaitTime: request.maxWaitTime))
        } catch {
            return .failure(self.amqpError(error))
        }
    }

    /// Settles one lock.
    static func settle(_ settlement: ServiceBusLinks.Settlement, broker: any MessageBroker) async -> Result<Void, AMQPError> {
        do {
            switch settlement.operation {
            case .complete: _ = try await broker.complete(settlement.token)
            case .abandon: _ = try await broker.abandon(settlement.token)
            case .release: _ = try await broker.release(settlement.token)
            case .defer: _ = try await broker.defer(settlement.token)
            case .deadLetter(let reason, let description): _ = try await broker.deadLetter(settlement.token, reason: reason, description: description)
            }
            return .success(())
        } catch {
            return .failure(self.amqpError(error))
        }
    }

    /// The AMQP condition of a broker error, as Service Bus clients map conditions to exceptions.
    static let messageNotFound = "com.microsoft:message-not-found"
    static let sessionLockLost = "com.microsoft:session-lock-lost"
    static let entityAlreadyExists = "com.microsoft:entity-already-exists"

    static func amqpError(_ error: any Error) -> AMQPError {
        guard let error = error as? HeraldError else { return AMQPError(condition: AMQPCondition.internalError, description: "\(error)") }
        let condition: String
        switch error.code {
        case .entityNotFound: condition = AMQPCondition.notFound
        case .entityAlreadyExists: condition = Self.entityAlreadyExists
        case .lockLost: condition = ServiceBusLinks.lockLost.condition
        case .messageNotFound: condition = Self.messageNotFound
        case .sessionLockLost: condition = Self.sessionLockLost
        case .sessionCannotBeLocked: condition = "com.microsoft:session-cannot-be-locked"
        // The SDKs read a next-available session receiver that found none as a time-out.
        case .noSessionAvailable: condition = "com.microsoft:timeout"
        case .sessionRequired, .sessionNotEnabled: condition = AMQPCondition.notAllowed
        case .messageTooLarge, .batchTooLarge: condition = AMQPCondition.messageSizeExceeded
        case .invalidArgument, .invalidName, .invalidOption, .propertyTooLarge, .propertiesTooLarge, .identifierTooLong: condition = AMQPCondition.invalidField
        case .insufficientStorage: condition = AMQPCondition.resourceLimitExceeded
        default: condition = AMQPCondition.internalError
        }
        return AMQPError(condition: condition, description: error.message)
    }
}

extension ServiceBusManagement {
    /// An operation's answer and what it changed in the connection's locks.
    struct Outcome {
        var response: AMQPMessage
        /// Locks the operation gave the client.
        var locks: [UUID: ServiceBusLinks.HeldLock] = [:]
        /// Locks it renewed, with their new expiry.
        var renewed: [UUID: Date] = [:]
        /// Locks it settled.
        var settled: [UUID] = []
        /// The session lock it renewed.
        var renewedSession: SessionLock?
    }

    /// Runs `call` against `broker`.
    static func perform(_ call: ServiceBusLinks.ManagementCall, broker: any MessageBroker) async -> Outcome {
        let correlation = call.correlation
        let entity = call.entity
        do {
            switch call.operation {
            case .renewLocks(let locks, let tokens):
                var expirations: [AMQPValue] = []
                var renewed: [UUID: Date] = [:]
                for (lock, token) in zip(locks, tokens) {
                    guard let token else { throw HeraldError(.lockLost, "the lock \(lock) is not held on this connection") }
                    let until = try await broker.renewLock(token)
                    renewed[lock] = until
                    expirations.append(.timestamp(until.millisecondsSince1970))
                }
                return Outcome(response: self.success(to: correlation, [("expirations", .array(expirations))]), renewed: renewed)
            case .peek(let from, let count, let sessionId):
                var peeked = try await broker.peek(entity.receivePath, fromSequenceNumber: from, maxCount: count)
                if let sessionId {
                    // A session's messages among the entity's: a few pages further at most.
                    var page = peeked
                    peeked = page.filter { $0.message.sessionId == sessionId }
                    for _ in 0..<20 where peeked.count < count && page.count == count {
                        page = try await broker.peek(entity.receivePath, fromSequenceNumber: page.last!.sequenceNumber + 1, maxCount: count)
                        peeked += page.filter { $0.message.sessionId == sessionId }
                    }
                    peeked = Array(peeked.prefix(count))
                }
                guard !peeked.isEmpty else { return Outcome(response: self.success(to: correlation, status: 204)) }
                var items: [AMQPValue] = []
                var bytes = 0
                for message in peeked where bytes < self.maxPeekBytes {
                    let encoded = self.encoded(message, peeked: true)
                    bytes += encoded.count
                    items.append(.map([AMQPMapEntry(.string("message"), .binary(encoded))]))
                }
                return Outcome(response: self.success(to: correlation, [("messages", .list(items))]))
            case .receiveDeferred(let sequenceNumbers, let mode):
                let received = try await broker.receiveDeferred(from: entity.receivePath, sequenceNumbers: sequenceNumbers)
                return try await self.deferredAnswer(received, mode: mode, session: nil, to: correlation, broker: broker)
            case .receiveSessionDeferred(let sequenceNumbers, let mode, let id, let session):
                let held = try self.held(session, id)
                let received = try await broker.receiveDeferred(from: held, sequenceNumbers: sequenceNumbers)
                let key = ServiceBusLinks.SessionKey(entity: held.entity, sessionId: held.sessionId)
                return try await self.deferredAnswer(received, mode: mode, session: key, to: correlation, broker: broker)
            case .updateDisposition(let disposition, let locks, let tokens):
                var settled: [UUID] = []
                for (lock, token) in zip(locks, tokens) {
                    guard let token else { throw HeraldError(.lockLost, "the lock \(lock) is not held on this connection") }
                    switch disposition {
                    case .complete: _ = try await broker.complete(token)
                    case .abandon: _ = try await broker.abandon(token)
                    case .defer: _ = try await broker.defer(token)
                    case .deadLetter(let reason, let description): _ = try await broker.deadLetter(token, reason: reason, description: description)
                    }
                    settled.append(lock)
                }
                return Outcome(response: self.success(to: correlation), settled: settled)
            case .schedule(let messages):
                let receipts = try await ServiceBusBroker.send(messages, to: entity.name, broker: broker).get()
                return Outcome(response: self.success(to: correlation, [("sequence-numbers", .array(receipts.map { .long($0.sequenceNumber ?? -1) }))]))
            case .renewSessionLock(let id, let session):
                let renewed = try await broker.renewSessionLock(try self.held(session, id))
                return Outcome(
                    response: self.success(to: correlation, [("expiration", .timestamp(renewed.lockedUntil.millisecondsSince1970))]), renewedSession: renewed)
            case .sessionState(let id, let session):
                let state = try await broker.sessionState(try self.held(session, id))
                return Outcome(response: self.success(to: correlation, [("session-state", state.map { .binary(Array($0)) } ?? .null)]))
            case .setSessionState(let id, let session, let state):
                try await broker.setSessionState(state, for: try self.held(session, id))
                return Outcome(response: self.success(to: correlation))
            case .listSessions(let skip, let top):
                let manageable = try self.manageable(broker)
                var ids: [String] = []
                var after: String?
                var skipped = 0
                while ids.count < top {
                    let page = try await manageable.sessions(of: entity.receivePath, after: after, maxCount: 100)
                    for info in page {
                        if skipped < skip { skipped += 1 } else if ids.count < top { ids.append(info.sessionId) }
                    }
                    guard page.count == 100, let last = page.last else { break }
                    after = last.sessionId
                }
                if ids.isEmpty { return Outcome(response: self.success(to: correlation, status: 204)) }
                return Outcome(response: self.success(to: correlation, [("sessions-ids", .array(ids.map { .string($0) }))]))
            case .addRule(let rule):
                try await self.manageable(broker).addRule(rule, to: entity.receivePath)
                return Outcome(response: self.success(to: correlation))
            case .removeRule(let name):
                try await self.manageable(broker).removeRule(named: name, from: entity.receivePath)
                return Outcome(response: self.success(to: correlation))
            case .enumerateRules(let skip, let top):
                let rules = try await self.manageable(broker).rules(of: entity.receivePath).dropFirst(skip).prefix(top)
                if rules.isEmpty { return Outcome(response: self.success(to: correlation, status: 204)) }
                return Outcome(response: self.success(to: correlation, ServiceBusRules.answer(Array(rules))))
            case .cancelScheduled(let sequenceNumbers):
                do {
                    try await broker.cancelScheduled(sequenceNumbers, in: .queue(entity.name))
                } catch let error as HeraldError where error.code == .entityNotFound {
                    try await broker.cancelScheduled(sequenceNumbers, in: .topic(entity.name))
                }
                return Outcome(response: self.success(to: correlation))
            }
        } catch {
            return Outcome(response: self.failure(to: correlation, error))
        }
    }

    /// The answer of `receive-by-sequence-number`: each message with a fresh lock token the
    /// connection keeps (settled through `update-disposition`, as the SDKs settle what they
    /// received by number), or completed at once in receive-and-delete mode. `session` is the
    /// session the messages are locked through, if any.
    private static func deferredAnswer(
        _ received: [ReceivedMessage], mode: ReceiveMode, session: ServiceBusLinks.SessionKey?, to correlation: AMQPValue, broker: any MessageBroker
    ) async throws -> Outcome {
        var items: [AMQPValue] = []
        var locks: [UUID: ServiceBusLinks.HeldLock] = [:]
        for message in received {
            var entry = [AMQPMapEntry(.string("message"), .binary(self.encoded(message)))]
            if let token = message.lockToken {
                if mode == .receiveAndDelete {
                    _ = try await broker.complete(token)
                } else {
                    let lock = UUID()
                    entry.append(AMQPMapEntry(.string("lock-token"), .uuid(lock)))
                    locks[lock] = ServiceBusLinks.HeldLock(
                        token: token, lockedUntil: message.lockedUntil ?? Date(), channel: nil, deliveryId: nil, session: session)
                }
            }
            items.append(.map(entry))
        }
        return Outcome(response: self.success(to: correlation, [("messages", .list(items))]), locks: locks)
    }

    /// The broker's management operations (sessions, rules), which both of Herald's stores have.
    private static func manageable(_ broker: any MessageBroker) throws(Failure) -> any ManageableBroker {
        guard let manageable = broker as? any ManageableBroker else {
            throw Failure(status: 501, condition: AMQPCondition.notImplemented, description: "this store does not list sessions or manage rules")
        }
        return manageable
    }

    /// The session lock a session operation needs: one the connection holds.
    private static func held(_ session: SessionLock?, _ id: String) throws(Failure) -> SessionLock {
        guard let session else {
            throw Failure(
                status: 410, condition: ServiceBusBroker.sessionLockLost, description: "the session '\(id.prefix(100))' is not held on this connection")
        }
        return session
    }

    /// A message as a `$management` answer carries it: encoded with the broker's annotations.
    private static func encoded(_ message: ReceivedMessage, peeked: Bool = false) -> [UInt8] {
        var buffer = ByteBuffer()
        _ = try? buffer.writeAMQPMessage(ServiceBusMessageMapping.amqpMessage(for: message, peeked: peeked))
        return Array(buffer.readableBytesView)
    }
}
