import Foundation
import HeraldCore

// GUARANTEES.md §2 and §6: a subscription's named rules; a message is copied into the
// subscription when any rule matches it, and a rule change applies to later sends.

private let topic = EntityPath.topic("events")
private let audit = EntityPath.subscription("audit", of: "events")
private let defaultRule = SubscriptionRule.defaultName

/// The message ids `subscription` holds, in order (received and left locked).
private func receivedIds(_ broker: any MessageBroker, _ subscription: EntityPath) async throws -> [String] {
    try await broker.receiveNow(from: subscription).map(\.message.messageId)
}

extension BrokerConformance {
    static let ruleCases: [ConformanceCase] = [
        ConformanceCase(name: "rules.newSubscriptionHasDefaultRule", guarantee: "§2") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            let filter = SubscriptionFilter(subject: "S", properties: ["k": .int(1)])
            try await broker.createSubscription(audit.name, topic: topic.name, options: EntityOptions(), filter: filter)
            try await broker.createSubscription("all", topic: topic.name)
            try expectEqual(try await broker.rules(of: audit), [SubscriptionRule(name: defaultRule, filter: filter)], "one rule $Default with the filter")
            try expectEqual(
                try await broker.rules(of: .subscription("all", of: topic.name)), [SubscriptionRule(name: defaultRule, filter: .all)],
                "one rule $Default matching everything")
            let listed = try await broker.listSubscriptions(topic: topic.name).first { $0.path == audit }
            try expectEqual(listed?.rules, [SubscriptionRule(name: defaultRule, filter: filter)], "the listing's rules")
            try expectEqual(listed?.filter, filter, "the listing's filter is $Default's")
        },

        ConformanceCase(name: "rules.withoutRulesNothingIsCopied", guarantee: "§2") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(audit.name, topic: topic.name)
            try await broker.send(Message(messageId: "before", body: Data()), to: topic)
            try await broker.removeRule(named: defaultRule, from: audit)
            try expectEqual(try await broker.rules(of: audit), [], "no rules left")
            try await broker.send(Message(messageId: "after", body: Data()), to: topic)
            try expectEqual(try await receivedIds(broker, audit), ["before"], "the copy made before the change stays; nothing after it")
            let listed = try await broker.listSubscriptions(topic: topic.name).first { $0.path == audit }
            try expectEqual(listed?.rules, [], "the listing has no rules")
            try expectEqual(listed?.filter, SubscriptionFilter.none, "without $Default the listed filter matches nothing")
        },

        ConformanceCase(name: "rules.correlationRuleTakesOnlyMatching", guarantee: "§2") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(audit.name, topic: topic.name)
            try await broker.removeRule(named: defaultRule, from: audit)
            let filter = SubscriptionFilter(
                correlationId: "c", contentType: "application/json", properties: ["region": .string("eu")], messageId: "match", to: "orders",
                replyTo: "replies", replyToSessionId: "r-1")
            try await broker.addRule(SubscriptionRule(name: "correlation", filter: filter), to: audit)
            let matching = Message(
                messageId: "match", body: Data(), contentType: "application/json", correlationId: "c", replyTo: "replies",
                applicationProperties: ["region": .string("eu"), "other": .int(1)], replyToSessionId: "r-1", to: "orders")
            var differing: [Message] = []
            for change in [
                { (m: inout Message) in m.correlationId = "d" }, { $0.contentType = "text/plain" }, { $0.to = "billing" },
                { $0.replyTo = nil }, { $0.replyToSessionId = "r-2" }, { $0.applicationProperties = [:] },
            ] as [(inout Message) -> Void] {
                var message = matching
                change(&message)
                differing.append(message)
            }
            for message in differing { try await broker.send(message, to: topic) }
            try await broker.send(matching, to: topic)
            var otherId = matching
            otherId.messageId = "other"
            try await broker.send(otherId, to: topic)
            try expectEqual(try await receivedIds(broker, audit), ["match"], "only the message every condition of the filter holds for")
        },

        ConformanceCase(name: "rules.sessionIdRuleOnASessionSubscription", guarantee: "§2") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(
                audit.name, topic: topic.name, options: EntityOptions(requiresSession: true), filter: SubscriptionFilter(sessionId: "s-1"))
            try await broker.send(Message(messageId: "one", body: Data(), sessionId: "s-1"), to: topic)
            try await broker.send(Message(messageId: "two", body: Data(), sessionId: "s-2"), to: topic)
            try await broker.send(Message(messageId: "none", body: Data()), to: topic)
            try await expectCounts(broker, audit, EntityCounts(active: 1), "only session s-1's message; one without a session is not taken, so not refused")
        },

        ConformanceCase(name: "rules.anyRuleMatchesOneCopyEach", guarantee: "§2") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(audit.name, topic: topic.name, options: EntityOptions(), filter: SubscriptionFilter(subject: "A"))
            try await broker.addRule(SubscriptionRule(name: "b", filter: SubscriptionFilter(correlationId: "b")), to: audit)
            try await broker.addRule(SubscriptionRule(name: "nothing", filter: .none), to: audit)
            try expectEqual(try await broker.rules(of: audit).map(\.name), [defaultRule, "b", "nothing"], "the rules in the order they were added")
            for (id, subject, correlationId) in [("a", "A", nil), ("b", "X", "b"), ("both", "A", "b"), ("neither", "X", "x")] as [(String, String, String?)] {
                try await broker.send(Message(messageId: id, body: Data(), subject: subject, correlationId: correlationId), to: topic)
            }
            try expectEqual(try await receivedIds(broker, audit), ["a", "b", "both"], "any rule matching copies the message, once")
        },

        ConformanceCase(name: "rules.changesApplyToLaterSends", guarantee: "§2, §6") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(audit.name, topic: topic.name, options: EntityOptions(), filter: .none)
            try await broker.send(Message(messageId: "early", body: Data(), subject: "A"), to: topic)
            try await broker.addRule(SubscriptionRule(name: "a", filter: SubscriptionFilter(subject: "A")), to: audit)
            try await broker.send(Message(messageId: "middle", body: Data(), subject: "A"), to: topic)
            try await broker.removeRule(named: "a", from: audit)
            try await broker.send(Message(messageId: "late", body: Data(), subject: "A"), to: topic)
            try expectEqual(try await receivedIds(broker, audit), ["middle"], "only the send while the rule was there")
        },

        ConformanceCase(name: "rules.refusalsChangeNothing", guarantee: "§2, §6") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createQueue("orders")
            try await broker.createSubscription(audit.name, topic: topic.name, options: EntityOptions(), filter: SubscriptionFilter(subject: "A"))
            let before = try await broker.rules(of: audit)
            try await expectError(.entityAlreadyExists, "a second rule $Default") {
                try await broker.addRule(SubscriptionRule(name: defaultRule, filter: .all), to: audit)
            }
            try await expectError(.entityNotFound, "removing a rule the subscription lacks") { try await broker.removeRule(named: "absent", from: audit) }
            try await expectError(.entityNotFound, "a missing subscription") {
                try await broker.addRule(SubscriptionRule(name: "r", filter: .all), to: .subscription("absent", of: topic.name))
            }
            try await expectError(.entityNotFound, "rules of a missing subscription") { try await broker.rules(of: .subscription("absent", of: topic.name)) }
            try await expectError(.invalidArgument, "a queue has no rules") { try await broker.rules(of: .queue("orders")) }
            try await expectError(.invalidArgument, "a dead-letter queue has no rules") {
                try await broker.addRule(SubscriptionRule(name: "r", filter: .all), to: audit.deadLetter)
            }
            try await expectError(.identifierTooLong, "a filter value over the identifier limit") {
                try await broker.addRule(
                    SubscriptionRule(name: "long", filter: SubscriptionFilter(to: String(repeating: "t", count: HeraldLimits.maxIdentifierLength + 1))),
                    to: audit)
            }
            try expectEqual(try await broker.rules(of: audit), before, "the refusals changed no rule")
        },

        ConformanceCase(name: "rules.limitsAreExact", guarantee: "§4") { context in
            let broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(audit.name, topic: topic.name)
            let longest = String(repeating: "n", count: HeraldLimits.maxRuleNameLength)
            try await broker.addRule(SubscriptionRule(name: longest, filter: .all), to: audit)
            try await expectError(.invalidName, "a name one character too long") {
                try await broker.addRule(SubscriptionRule(name: longest + "n", filter: .all), to: audit)
            }
            try await expectError(.invalidName, "an empty name") { try await broker.addRule(SubscriptionRule(name: "", filter: .all), to: audit) }
            for index in 2..<HeraldLimits.maxRulesPerSubscription {
                try await broker.addRule(SubscriptionRule(name: "rule-\(index)", filter: SubscriptionFilter(subject: "\(index)")), to: audit)
            }
            try expectEqual(try await broker.rules(of: audit).count, HeraldLimits.maxRulesPerSubscription, "the limit is accepted")
            try await expectError(.invalidArgument, "one rule over the limit") {
                try await broker.addRule(SubscriptionRule(name: "one-more", filter: .all), to: audit)
            }
            try expectEqual(try await broker.rules(of: audit).count, HeraldLimits.maxRulesPerSubscription, "the refusal added nothing")
            try await broker.removeRule(named: "rule-2", from: audit)
            try await broker.addRule(SubscriptionRule(name: "one-more", filter: .all), to: audit)
            try await broker.send(Message(messageId: "m", body: Data()), to: topic)
            try expectEqual(try await receivedIds(broker, audit), ["m"], "many matching rules make one copy")
        },

        ConformanceCase(name: "restart.rulesSurvive", guarantee: "§4.1", requires: [.durableStorage]) { context in
            var broker = try manageable(context.broker)
            try await broker.createTopic(topic.name)
            try await broker.createSubscription(audit.name, topic: topic.name)
            try await broker.removeRule(named: defaultRule, from: audit)
            let rules = [
                SubscriptionRule(name: "placed", filter: SubscriptionFilter(subject: "Placed", to: "orders")),
                SubscriptionRule(name: "nothing", filter: .none),
            ]
            for rule in rules { try await broker.addRule(rule, to: audit) }
            broker = try manageable(try await context.reopen())
            try expectEqual(try await broker.rules(of: audit), rules, "the rules after reopen, in order")
            var placed = Message(messageId: "placed", body: Data(), subject: "Placed")
            placed.to = "orders"
            try await broker.send(placed, to: topic)
            try await broker.send(Message(messageId: "other", body: Data(), subject: "Placed"), to: topic)
            try expectEqual(try await receivedIds(broker, audit), ["placed"], "the rules apply after reopen")
        },
    ]
}
