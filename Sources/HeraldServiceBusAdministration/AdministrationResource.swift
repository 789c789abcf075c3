import Foundation

/// What a request path of the administration API names, as the Service Bus SDKs write them:
/// `/orders`, `/$Resources/queues`, `/events/subscriptions/audit/rules/$Default`, `/$namespaceinfo`.
/// The fixed segments are matched without regard to case, as Service Bus does.
enum AdministrationResource: Equatable, Sendable {
    /// `GET /$namespaceinfo`.
    case namespace
    /// `GET /$Resources/queues` or `/$Resources/topics`.
    case list(EntityKind)
    /// A queue or a topic: which one is known from the entity (or, for a PUT, from the body).
    case entity(String)
    /// `GET /{topic}/subscriptions`.
    case subscriptions(topic: String)
    case subscription(topic: String, name: String)
    /// `GET /{topic}/subscriptions/{subscription}/rules`.
    case rules(topic: String, subscription: String)
    case rule(topic: String, subscription: String, name: String)

    /// The two kinds of top-level entity.
    enum EntityKind: String, Sendable {
        case queues, topics
    }

    /// The resource of `path` (without its query); `nil` for a path the API does not have.
    init?(path: String) {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map { String($0).removingPercentEncoding }
        guard !segments.contains(where: { $0 == nil || $0!.isEmpty }) else { return nil }
        let parts = segments.compactMap { $0 }
        func named(_ index: Int, _ name: String) -> Bool { parts[index].lowercased() == name }
        switch parts.count {
        case 1 where named(0, "$namespaceinfo"): self = .namespace
        case 1 where parts[0].hasPrefix("$"): return nil
        case 1: self = .entity(parts[0])
        case 2 where named(0, "$resources"):
            guard let kind = EntityKind(rawValue: parts[1].lowercased()) else { return nil }
            self = .list(kind)
        case 2 where named(1, "subscriptions"): self = .subscriptions(topic: parts[0])
        case 3 where named(1, "subscriptions"): self = .subscription(topic: parts[0], name: parts[2])
        case 4 where named(1, "subscriptions") && named(3, "rules"): self = .rules(topic: parts[0], subscription: parts[2])
        case 5 where named(1, "subscriptions") && named(3, "rules"): self = .rule(topic: parts[0], subscription: parts[2], name: parts[4])
        default: return nil
        }
    }

    /// The queue or topic the resource belongs to; `nil` for the namespace and its lists.
    var entityName: String? {
        switch self {
        case .namespace, .list: nil
        case .entity(let name): name
        case .subscriptions(let topic), .subscription(let topic, _), .rules(let topic, _), .rule(let topic, _, _): topic
        }
    }

    /// The path the answers' `id` and `link` name, as Service Bus writes it.
    var path: String {
        func encoded(_ segment: String) -> String {
            segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
        }
        switch self {
        case .namespace: return "$namespaceinfo"
        case .list(let kind): return "$Resources/\(kind.rawValue)"
        case .entity(let name): return encoded(name)
        case .subscriptions(let topic): return "\(encoded(topic))/Subscriptions"
        case .subscription(let topic, let name): return "\(encoded(topic))/Subscriptions/\(encoded(name))"
        case .rules(let topic, let subscription): return "\(encoded(topic))/Subscriptions/\(encoded(subscription))/Rules"
        case .rule(let topic, let subscription, let name):
            return "\(encoded(topic))/Subscriptions/\(encoded(subscription))/Rules/\(encoded(name))"
        }
    }
}
