import Foundation
import HeraldAMQP
import HeraldCore
import HeraldWire

/// An entity's `$management` node as Service Bus clients use it: requests are messages whose
/// `operation` application property names what to do and whose body is a map; answers carry
/// `statusCode`, `statusDescription` and on failure `errorCondition`.
enum ServiceBusManagement {
    /// A request the node runs, its lock tokens looked up on the connection.
    enum Operation: Hashable {
        /// Renews the locks; a `nil` is a token the connection does not know.
        case renewLocks([UUID], [LockToken?])
        /// Peeks the entity, or with a session id that session's messages.
        case peek(from: Int64, count: Int, sessionId: String?)
        /// Receives deferred messages of the entity by sequence number.
        case receiveDeferred([Int64], mode: ReceiveMode)
        /// Receives deferred messages of a session by sequence number (a session receiver's
        /// request names its session); a `nil` lock is a session the connection does not hold.
        case receiveSessionDeferred([Int64], mode: ReceiveMode, String, SessionLock?)
        case updateDisposition(Disposition, [UUID], [LockToken?])
        case schedule([Message])
        case cancelScheduled([Int64])
        /// A session's lock, state and list; a `nil` lock is a session the connection does not hold.
        case renewSessionLock(String, SessionLock?)
        case sessionState(String, SessionLock?)
        case setSessionState(String, SessionLock?, Data?)
        case listSessions(skip: Int, top: Int)
        /// A subscription's rules (``ServiceBusRules``).
        case addRule(SubscriptionRule)
        case removeRule(String)
        case enumerateRules(skip: Int, top: Int)

        /// The right the operation needs.
        var right: AccessRight {
            switch self {
            case .schedule, .cancelScheduled: .send
            case .addRule, .removeRule, .enumerateRules: .manage
            default: .listen
            }
        }
    }

    /// What `update-disposition` asks for.
    enum Disposition: Hashable {
        case complete, abandon, `defer`
        case deadLetter(reason: String, description: String?)
    }

    /// Why a request was refused: the answer's status and condition.
    struct Failure: Error, Hashable {
        var status: Int32
        var condition: String?
        var description: String
    }

    /// The most lock tokens, sequence numbers or messages one request may name.
    static let maxItems = 1000
    /// The most bytes of messages one peek answers with.
    static let maxPeekBytes = 4 << 20

    /// The operation `request` asks for; `lock` finds the token of a lock the client names.
    static func operation(of request: AMQPMessage, lock: (UUID) -> LockToken?, session: (String) -> SessionLock?) throws(Failure) -> Operation {
        let name = request.applicationProperties?.first(where: { $0.key.text == "operation" })?.value.text ?? ""
        guard case .value(.map(let entries)) = request.body else {
            throw Failure(status: 400, condition: AMQPCondition.decodeError, description: "a $management request's body is a map")
        }
        let body = Dictionary(entries.compactMap { entry in entry.key.text.map { ($0, entry.value) } }) { first, _ in first }
        switch name {
        case "com.microsoft:renew-lock":
            let locks = try self.uuids(body["lock-tokens"], "lock-tokens")
            return .renewLocks(locks, locks.map(lock))
        case "com.microsoft:peek-message":
            guard let from = body["from-sequence-number"]?.signed, let count = body["message-count"]?.signed, count > 0 else {
                throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "peek-message takes from-sequence-number and message-count")
            }
            return .peek(from: from, count: Int(min(count, Int64(self.maxItems))), sessionId: body["session-id"]?.text)
        case "com.microsoft:receive-by-sequence-number":
            let mode: ReceiveMode = body["receiver-settle-mode"]?.unsigned == 0 ? .receiveAndDelete : .peekLock
            let sequenceNumbers = try self.longs(body["sequence-numbers"], "sequence-numbers")
            // A session receiver names its session: the messages are that session's, locked through it.
            guard let id = body["session-id"]?.text else { return .receiveDeferred(sequenceNumbers, mode: mode) }
            return .receiveSessionDeferred(sequenceNumbers, mode: mode, id, session(id))
        case "com.microsoft:update-disposition":
            let locks = try self.uuids(body["lock-tokens"], "lock-tokens")
            let disposition: Disposition
            switch body["disposition-status"]?.text {
            case "completed": disposition = .complete
            case "abandoned": disposition = .abandon
            case "defered", "deferred": disposition = .defer
            case "suspended":
                let reason = body["deadletter-reason"]?.text ?? ""
                disposition = .deadLetter(reason: reason.isEmpty ? "DeadLetteredByReceiver" : reason, description: body["deadletter-description"]?.text)
            default:
                throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "unknown disposition-status")
            }
            return .updateDisposition(disposition, locks, locks.map(lock))
        case "com.microsoft:schedule-message":
            guard case .some(.list(let items)) = body["messages"] ?? .null, items.count <= self.maxItems else {
                throw Failure(
                    status: 400, condition: AMQPCondition.invalidField, description: "schedule-message takes a list of at most \(self.maxItems) messages")
            }
            var messages: [Message] = []
            for item in items {
                guard case .map(let fields) = item, let encoded = fields.first(where: { $0.key.text == "message" })?.value.bytes else {
                    throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "each scheduled message is a map with its encoded message")
                }
                do {
                    let message = try ServiceBusLinks.message(encoded: encoded)
                    guard message.scheduledEnqueueTime != nil else {
                        throw Failure(
                            status: 400, condition: AMQPCondition.invalidField, description: "a scheduled message names its x-opt-scheduled-enqueue-time")
                    }
                    messages.append(message)
                } catch let error as AMQPError {
                    throw Failure(status: 400, condition: error.condition, description: error.description ?? error.condition)
                } catch let failure as Failure {
                    throw failure
                } catch {
                    throw Failure(status: 400, condition: AMQPCondition.decodeError, description: "\(error)")
                }
            }
            return .schedule(messages)
        case "com.microsoft:cancel-scheduled-message":
            return .cancelScheduled(try self.longs(body["sequence-numbers"], "sequence-numbers"))
        case "com.microsoft:renew-session-lock":
            let id = try self.sessionId(body)
            return .renewSessionLock(id, session(id))
        case "com.microsoft:get-session-state":
            let id = try self.sessionId(body)
            return .sessionState(id, session(id))
        case "com.microsoft:set-session-state":
            let id = try self.sessionId(body)
            let state: Data?
            switch body["session-state"] {
            case .binary(let bytes)?: state = Data(bytes)
            case .null?, nil: state = nil
            default: throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "session-state is binary or null")
            }
            return .setSessionState(id, session(id), state)
        case "com.microsoft:get-message-sessions":
            let skip = max(body["skip"]?.signed ?? 0, 0)
            let top = max(min(body["top"]?.signed ?? 100, Int64(self.maxItems)), 0)
            // Skipping walks the sessions a page at a time: a client's skip is bounded like its top.
            return .listSessions(skip: Int(min(skip, Int64(self.maxItems) * 10)), top: Int(top))
        case "com.microsoft:add-rule":
            return .addRule(try ServiceBusRules.rule(of: body))
        case "com.microsoft:remove-rule":
            return .removeRule(try ServiceBusRules.ruleName(body))
        case "com.microsoft:enumerate-rules":
            let page = ServiceBusRules.page(of: body)
            return .enumerateRules(skip: page.skip, top: page.top)
        default:
            throw Failure(
                status: 501, condition: AMQPCondition.notImplemented,
                description: "Herald does not serve the $management operation '\(name.prefix(100))' (see the README's list of what is not served)")
        }
    }

    private static func sessionId(_ body: [String: AMQPValue]) throws(Failure) -> String {
        guard let id = body["session-id"]?.text else {
            throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "the request names no session-id")
        }
        return id
    }

    private static func items(_ value: AMQPValue?, _ field: String) throws(Failure) -> [AMQPValue] {
        switch value {
        case .array(let items)?, .list(let items)?:
            guard items.count <= self.maxItems else {
                throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "\(field) has more than \(self.maxItems) items")
            }
            return items
        default:
            throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "the request names no \(field)")
        }
    }

    private static func uuids(_ value: AMQPValue?, _ field: String) throws(Failure) -> [UUID] {
        try self.items(value, field).map { item throws(Failure) in
            guard case .uuid(let uuid) = item else {
                throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "\(field) are UUIDs")
            }
            return uuid
        }
    }

    private static func longs(_ value: AMQPValue?, _ field: String) throws(Failure) -> [Int64] {
        try self.items(value, field).map { item throws(Failure) in
            guard let number = item.signed else {
                throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "\(field) are numbers")
            }
            return number
        }
    }

    // MARK: Answers

    /// A successful answer.
    static func success(to correlation: AMQPValue, status: Int32 = 200, _ body: [(String, AMQPValue)] = []) -> AMQPMessage {
        var answer = AMQPMessage(body: .value(.map(body.map { AMQPMapEntry(.string($0.0), $0.1) })))
        var properties = AMQPMessage.Properties()
        properties.correlationId = correlation
        answer.properties = properties
        answer.applicationProperties = [
            AMQPMapEntry(.string("statusCode"), .int(status)), AMQPMapEntry(.string("statusDescription"), .string(status == 204 ? "No Content" : "OK")),
        ]
        return answer
    }

    /// A refusal.
    static func failure(to correlation: AMQPValue, status: Int32, condition: String?, _ description: String) -> AMQPMessage {
        var answer = AMQPMessage(body: .value(.map([])))
        var properties = AMQPMessage.Properties()
        properties.correlationId = correlation
        answer.properties = properties
        answer.applicationProperties =
            [AMQPMapEntry(.string("statusCode"), .int(status)), AMQPMapEntry(.string("statusDescription"), .string(description))]
            + (condition.map { [AMQPMapEntry(.string("errorCondition"), .symbol($0))] } ?? [])
        return answer
    }

    static func failure(to correlation: AMQPValue, _ error: any Error) -> AMQPMessage {
        let failure = self.failure(of: error)
        return self.failure(to: correlation, status: failure.status, condition: failure.condition, failure.description)
    }

    /// The status and condition of an error, as Service Bus clients map them to exceptions.
    static func failure(of error: any Error) -> Failure {
        switch error {
        case let failure as Failure: return failure
        case let error as AMQPError:
            return Failure(status: self.status(of: error.condition), condition: error.condition, description: error.description ?? "")
        default:
            // The broker's codes map to conditions in one place, for links and this node alike.
            let error = ServiceBusBroker.amqpError(error)
            return Failure(status: self.status(of: error.condition), condition: error.condition, description: error.description ?? "")
        }
    }

    /// The HTTP-like status a `$management` answer gives with `condition`.
    private static func status(of condition: String) -> Int32 {
        switch condition {
        case AMQPCondition.unauthorizedAccess: 401
        case AMQPCondition.notFound, ServiceBusBroker.messageNotFound: 404
        case ServiceBusBroker.entityAlreadyExists: 409
        case ServiceBusLinks.lockLost.condition, ServiceBusBroker.sessionLockLost: 410
        case AMQPCondition.resourceLimitExceeded: 503
        case AMQPCondition.internalError: 500
        default: 400
        }
    }
}
