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

    /// Receives for a receiver link; a receive that may wait does, for a while, so that a link
    /// with credit and nothing to take does not spin.
    static func receive(_ request: ServiceBusLinks.ReceiveRequest, broker: any MessageBroker) async -> Result<[ReceivedMessage], AMQPError> {
        do {
            return .success(
                try await broker.receive(from: request.entity, maxCount: request.maxCount, maxWaitTime: request.waits ? .seconds(5) : .zero, mode: request.mode)
            )
        } catch {
            return .failure(self.amqpError(error))
        }
    }

    /// Settles one lock.
    static func settle(_ settlement: ServiceBusLinks.Settlement, broker: any MessageBroker) async -> Result<Void, AMQPError> {
        do {
            switch settlement.operation {
            case .complete: _ = try await broker.complete(settlement.token)
            case .abandon, .release: _ = try await broker.abandon(settlement.token)
            case .defer: _ = try await broker.defer(settlement.token)
            case .deadLetter(let reason, let description): _ = try await broker.deadLetter(settlement.token, reason: reason, description: description)
            }
            return .success(())
        } catch {
            return .failure(self.amqpError(error))
        }
    }

    /// The AMQP condition of a broker error, as Service Bus clients map conditions to exceptions.
    static func amqpError(_ error: any Error) -> AMQPError {
        guard let error = error as? HeraldError else { return AMQPError(condition: AMQPCondition.internalError, description: "\(error)") }
        let condition: String
        switch error.code {
        case .entityNotFound: condition = AMQPCondition.notFound
        case .lockLost: condition = ServiceBusLinks.lockLost.condition
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
            case .peek(let from, let count):
                let peeked = try await broker.peek(entity.receivePath, fromSequenceNumber: from, maxCount: count)
                guard !peeked.isEmpty else { return Outcome(response: self.success(to: correlation, status: 204)) }
                var items: [AMQPValue] = []
                var bytes = 0
                for message in peeked where bytes < self.maxPeekBytes {
                    let encoded = self.encoded(message)
                    bytes += encoded.count
                    items.append(.map([AMQPMapEntry(.string("message"), .binary(encoded))]))
                }
                return Outcome(response: self.success(to: correlation, [("messages", .list(items))]))
            case .receiveDeferred(let sequenceNumbers, let mode):
                let received = try await broker.receiveDeferred(from: entity.receivePath, sequenceNumbers: sequenceNumbers)
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
                            locks[lock] = ServiceBusLinks.HeldLock(token: token, lockedUntil: message.lockedUntil ?? Date(), channel: nil, deliveryId: nil)
                        }
                    }
                    items.append(.map(entry))
                }
                return Outcome(response: self.success(to: correlation, [("messages", .list(items))]), locks: locks)
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

    /// A message as a `$management` answer carries it: encoded with the broker's annotations.
    private static func encoded(_ message: ReceivedMessage) -> [UInt8] {
        var buffer = ByteBuffer()
        _ = try? buffer.writeAMQPMessage(ServiceBusMessageMapping.amqpMessage(for: message))
        return Array(buffer.readableBytesView)
    }
}
