import Foundation
import HeraldCore
import HeraldWire

/// Answers the administration API's requests on the broker: each method and resource becomes
/// the broker operation Service Bus's management API stands for.
struct AdministrationHandler: Sendable {
    /// What a request is answered with: a status and, for most, an Atom document.
    struct Answer: Equatable {
        var status: Int
        var document: String?
    }

    /// The most entries one page of a list holds, whatever `$top` asks for (as Service Bus).
    static let maxPageSize = 100

    let broker: any MessageBroker

    /// Answers `method` on `resource`.
    ///
    /// - Parameters:
    ///   - query: The request's query items (`$skip`, `$top`).
    ///   - isUpdate: Whether the request carries `If-Match` (an update rather than a create).
    ///   - body: The body of a PUT.
    ///   - base: The URL prefix of the answers' ids and links, `https://host:port/`.
    ///   - host: The namespace's name in `GET /$namespaceinfo`.
    func answer(
        method: String, resource: AdministrationResource, query: [String: String], isUpdate: Bool, body: Data, base: String, host: String
    ) async throws(AdministrationFailure) -> Answer {
        do {
            return try await self.dispatch(method: method, resource: resource, query: query, isUpdate: isUpdate, body: body, base: base, host: host)
        } catch let failure as AdministrationFailure {
            throw failure
        } catch let error as HeraldError {
            throw AdministrationFailure(status: WireStatus.status(for: error.code), detail: error.message)
        } catch {
            throw AdministrationFailure(status: 500, detail: "the store failed: \(error)")
        }
    }

    private func dispatch(
        method: String, resource: AdministrationResource, query: [String: String], isUpdate: Bool, body: Data, base: String, host: String
    ) async throws -> Answer {
        switch (method, resource) {
        case ("GET", .namespace):
            return self.entry(.init(title: host, resource: resource, description: .namespace(name: host)), base: base)
        case ("GET", .list(let kind)):
            let page = try Self.page(query)
            let names = try await kind == .queues ? self.broker.listQueues() : self.broker.listTopics()
            let sorted = names.sorted { $0.path.name < $1.path.name }
            var entries: [AdministrationDocuments.Entry] = []
            for description in sorted.dropFirst(page.skip).prefix(page.top) {
                let entity: AdministrationResource = .entity(description.path.name)
                entries.append(.init(title: description.path.name, resource: entity, description: try await self.describe(description)))
            }
            return self.feed(kind == .queues ? "Queues" : "Topics", resource, entries, total: sorted.count, page: page, base: base)
        case ("GET", .entity(let name)):
            let description = try await self.find(name)
            return self.entry(.init(title: name, resource: resource, description: try await self.describe(description)), base: base)
        case ("PUT", .entity(let name)):
            return try await self.put(name, AdministrationDocuments.body(of: body), isUpdate: isUpdate, resource: resource, base: base)
        case ("DELETE", .entity(let name)):
            let description = try await self.find(name)
            if description.path.kind == .queue { try await self.broker.deleteQueue(name) } else { try await self.broker.deleteTopic(name) }
            return Answer(status: 200, document: nil)
        case ("GET", .subscriptions(let topic)):
            let page = try Self.page(query)
            let subscriptions = try await self.broker.listSubscriptions(topic: topic).sorted { $0.path.name < $1.path.name }
            var entries: [AdministrationDocuments.Entry] = []
            for subscription in subscriptions.dropFirst(page.skip).prefix(page.top) {
                let counts = try await self.broker.counts(of: subscription.path)
                entries.append(
                    .init(
                        title: subscription.path.name, resource: .subscription(topic: topic, name: subscription.path.name),
                        description: .subscription(subscription.options, counts)))
            }
            return self.feed("Subscriptions", resource, entries, total: subscriptions.count, page: page, base: base)
        case ("GET", .subscription(let topic, let name)):
            let subscription = try await self.findSubscription(name, of: topic)
            let counts = try await self.broker.counts(of: subscription.path)
            return self.entry(.init(title: name, resource: resource, description: .subscription(subscription.options, counts)), base: base)
        case ("PUT", .subscription(let topic, let name)):
            guard case .subscription(let change, let defaultRule) = try AdministrationDocuments.body(of: body) else {
                throw AdministrationFailure.badRequest("a subscription is created or updated with a SubscriptionDescription")
            }
            let path = EntityPath.subscription(name, of: topic)
            if isUpdate {
                let options = try await self.manageable().updateOptions(of: path, change)
                return self.entry(
                    .init(title: name, resource: resource, description: .subscription(options, try await self.broker.counts(of: path))), base: base)
            }
            let options = try Self.created(change)
            try await self.broker.createSubscription(name, topic: topic, options: options, filter: defaultRule ?? .all)
            return self.entry(.init(title: name, resource: resource, description: .subscription(options, EntityCounts())), base: base, status: 201)
        case ("DELETE", .subscription(let topic, let name)):
            try await self.broker.deleteSubscription(name, topic: topic)
            return Answer(status: 200, document: nil)
        case ("GET", .rules(let topic, let subscription)):
            let page = try Self.page(query)
            let rules = try await self.manageable().rules(of: .subscription(subscription, of: topic))
            let entries = rules.dropFirst(page.skip).prefix(page.top).map { rule in
                AdministrationDocuments.Entry(
                    title: rule.name, resource: .rule(topic: topic, subscription: subscription, name: rule.name), description: .rule(rule))
            }
            return self.feed("Rules", resource, Array(entries), total: rules.count, page: page, base: base)
        case ("GET", .rule(let topic, let subscription, let name)):
            let rules = try await self.manageable().rules(of: .subscription(subscription, of: topic))
            guard let rule = rules.first(where: { $0.name == name }) else {
                throw AdministrationFailure(status: 404, detail: "no rule named '\(name)' on subscription '\(subscription)' of topic '\(topic)'")
            }
            return self.entry(.init(title: name, resource: resource, description: .rule(rule)), base: base)
        case ("PUT", .rule(let topic, let subscription, let name)):
            guard case .rule(let filter) = try AdministrationDocuments.body(of: body) else {
                throw AdministrationFailure.badRequest("a rule is created with a RuleDescription")
            }
            guard !isUpdate else {
                throw AdministrationFailure.notImplemented(
                    "Herald does not change a rule in place (a remove and an add would leave a moment with neither); add the new rule under another name, then delete the old one"
                )
            }
            let rule = SubscriptionRule(name: name, filter: filter)
            try await self.manageable().addRule(rule, to: .subscription(subscription, of: topic))
            return self.entry(.init(title: name, resource: resource, description: .rule(rule)), base: base, status: 201)
        case ("DELETE", .rule(let topic, let subscription, let name)):
            try await self.manageable().removeRule(named: name, from: .subscription(subscription, of: topic))
            return Answer(status: 200, document: nil)
        default:
            throw AdministrationFailure(status: 405, detail: "\(method) is not an operation of \(resource.path)")
        }
    }

    private func put(
        _ name: String, _ body: AdministrationBody, isUpdate: Bool, resource: AdministrationResource, base: String
    ) async throws -> Answer {
        let (change, kind): (EntityOptionsChange, EntityPath.Kind)
        switch body {
        case .queue(let queueChange): (change, kind) = (queueChange, .queue)
        case .topic(let topicChange): (change, kind) = (topicChange, .topic)
        default: throw AdministrationFailure.badRequest("a queue or topic is created or updated with a QueueDescription or a TopicDescription")
        }
        let path: EntityPath = kind == .queue ? .queue(name) : .topic(name)
        if isUpdate {
            let options = try await self.manageable().updateOptions(of: path, change)
            let description = try await self.describe(EntityDescription(path: path, options: options))
            return self.entry(.init(title: name, resource: resource, description: description), base: base)
        }
        let options = try Self.created(change)
        if kind == .queue {
            try await self.broker.createQueue(name, options: options)
            return self.entry(.init(title: name, resource: resource, description: .queue(options, EntityCounts())), base: base, status: 201)
        }
        try await self.broker.createTopic(name, options: options)
        return self.entry(.init(title: name, resource: resource, description: .topic(options, subscriptionCount: 0)), base: base, status: 201)
    }

    /// The options of a new entity: the defaults with the entry's settings, its session requirement
    /// included (which an update cannot change).
    private static func created(_ change: EntityOptionsChange) throws(HeraldError) -> EntityOptions {
        var defaults = EntityOptions()
        defaults.requiresSession = change.requiresSession ?? false
        return try change.applied(to: defaults)
    }

    /// The queue or topic named `name`.
    private func find(_ name: String) async throws -> EntityDescription {
        if let queue = try await self.broker.listQueues().first(where: { $0.path.name == name }) { return queue }
        if let topic = try await self.broker.listTopics().first(where: { $0.path.name == name }) { return topic }
        throw AdministrationFailure(status: 404, detail: "no queue or topic named '\(name)'")
    }

    private func findSubscription(_ name: String, of topic: String) async throws -> SubscriptionDescription {
        guard let subscription = try await self.broker.listSubscriptions(topic: topic).first(where: { $0.path.name == name }) else {
            throw AdministrationFailure(status: 404, detail: "no subscription named '\(name)' of topic '\(topic)'")
        }
        return subscription
    }

    private func describe(_ description: EntityDescription) async throws -> AdministrationDocuments.Description {
        if description.path.kind == .queue {
            return .queue(description.options, try await self.broker.counts(of: description.path))
        }
        let subscriptions = try await self.broker.listSubscriptions(topic: description.path.name)
        return .topic(description.options, subscriptionCount: subscriptions.count)
    }

    private func manageable() throws -> any ManageableBroker {
        guard let broker = self.broker as? any ManageableBroker else {
            throw AdministrationFailure.notImplemented("this store cannot change settings or rules")
        }
        return broker
    }

    private struct Page {
        var skip: Int
        var top: Int
    }

    private static func page(_ query: [String: String]) throws(AdministrationFailure) -> Page {
        func number(_ name: String, default value: Int) throws(AdministrationFailure) -> Int {
            guard let text = query[name] else { return value }
            guard let number = Int(text), number >= 0 else { throw .badRequest("\(name) is a whole number; got \(text.prefix(20))") }
            return number
        }
        return Page(skip: try number("$skip", default: 0), top: min(try number("$top", default: Self.maxPageSize), Self.maxPageSize))
    }

    private func entry(_ entry: AdministrationDocuments.Entry, base: String, status: Int = 200) -> Answer {
        Answer(status: status, document: AdministrationDocuments.entryDocument(entry, base: base))
    }

    private func feed(
        _ title: String, _ resource: AdministrationResource, _ entries: [AdministrationDocuments.Entry], total: Int, page: Page, base: String
    ) -> Answer {
        let end = page.skip + entries.count
        let next = end < total && !entries.isEmpty ? "$skip=\(end)&$top=\(page.top)" : nil
        return Answer(status: 200, document: AdministrationDocuments.feedDocument(title: title, resource: resource, entries: entries, next: next, base: base))
    }
}
