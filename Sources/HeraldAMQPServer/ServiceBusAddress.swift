import Foundation
import HeraldAMQP
import HeraldCore

/// A link address as the Service Bus SDKs write it: the `$cbs` node, an entity's `$management`
/// node, or an entity (a queue, a topic, a subscription, or one's dead-letter queue).
///
/// The SDKs send full URIs even without TLS (`amqps://host:port/orders`), and also bare paths
/// (`orders/Subscriptions/audit/$DeadLetterQueue`); the host is ignored, names are matched
/// without regard to the case of `Subscriptions`, `$DeadLetterQueue` and `$management`.
enum ServiceBusAddress: Hashable, Sendable {
    /// Claims-based security: where clients put their tokens.
    case claimsBasedSecurity
    /// An entity's request-response node.
    case management(ServiceBusEntity)
    /// An entity itself.
    case entity(ServiceBusEntity)

    /// Parses `address`; throws `amqp:not-found` for what Service Bus has and Herald does not
    /// (transfer dead-letter queues), `amqp:invalid-field` for what is no address at all.
    init(parsing address: String) throws(AMQPError) {
        var path = Substring(address)
        if let scheme = path.range(of: "://") {
            path = path[scheme.upperBound...]
            guard let slash = path.firstIndex(of: "/") else { throw Self.invalid(address) }
            path = path[path.index(after: slash)...]
        }
        while path.hasPrefix("/") { path = path.dropFirst() }
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map { String($0) }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else { throw Self.invalid(address) }
        if parts == ["$cbs"] {
            self = .claimsBasedSecurity
            return
        }
        var isManagement = false
        if parts.count > 1, parts.last!.lowercased() == "$management" {
            isManagement = true
            parts.removeLast()
        }
        var deadLetter = false
        if parts.count > 1, parts.last!.lowercased() == "$deadletterqueue" {
            deadLetter = true
            parts.removeLast()
            if parts.count > 1, parts.last!.lowercased() == "$transfer" {
                throw AMQPError(condition: AMQPCondition.notFound, description: "Herald has no transfer dead-letter queues (it does not forward messages)")
            }
        }
        let entity: ServiceBusEntity
        switch parts.count {
        case 1: entity = ServiceBusEntity(name: parts[0], subscription: nil, isDeadLetter: deadLetter)
        case 3 where parts[1].lowercased() == "subscriptions":
            entity = ServiceBusEntity(name: parts[0], subscription: parts[2], isDeadLetter: deadLetter)
        default: throw Self.invalid(address)
        }
        do {
            try EntityName.validate(entity.name)
            if let subscription = entity.subscription { try EntityName.validate(subscription) }
        } catch {
            throw AMQPError(condition: AMQPCondition.invalidField, description: error.message)
        }
        self = isManagement ? .management(entity) : .entity(entity)
    }

    private static func invalid(_ address: String) -> AMQPError {
        AMQPError(condition: AMQPCondition.invalidField, description: "'\(address.prefix(300))' is not a Service Bus address")
    }
}

/// An entity a Service Bus address names. Whether a bare name is a queue or a topic is for the
/// broker to say: Service Bus clients send to both alike.
struct ServiceBusEntity: Hashable, Sendable {
    /// The queue's or topic's name.
    var name: String
    /// The subscription's name, for a subscription of topic `name`.
    var subscription: String?
    /// The entity's dead-letter queue rather than the entity.
    var isDeadLetter: Bool

    /// The entity to receive from: the queue `name`, or the subscription (or their dead-letter queues).
    var receivePath: EntityPath {
        let path: EntityPath = self.subscription.map { .subscription($0, of: self.name) } ?? .queue(self.name)
        return self.isDeadLetter ? path.deadLetter : path
    }
}
