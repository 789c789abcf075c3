import Foundation
import HeraldAMQP
package import HeraldCore

/// A subscription's rules as the Service Bus SDKs carry them on its `$management` node
/// (`com.microsoft:add-rule`, `remove-rule`, `enumerate-rules`).
///
/// An add-rule request names the rule (`rule-name`) and describes it in a map (`rule-description`)
/// holding a `sql-filter` map (its `expression`) or a `correlation-filter` map, and a
/// `sql-rule-action` (null for none). Herald keeps correlation filters and the SQL filters `1=1`
/// and `1=0` (what the SDKs send for a `TrueRuleFilter` and a `FalseRuleFilter`); any other SQL
/// expression and any rule action are refused with 501. An enumerate-rules answer lists each rule
/// as a described `rule-description` list, as the service answers.
package enum ServiceBusRules {
    typealias Failure = ServiceBusManagement.Failure

    /// The descriptor codes of the described types of an enumerate-rules answer.
    enum Code {
        static let ruleDescription: UInt64 = 0x0000_0137_0000_0004
        static let emptyRuleAction: UInt64 = 0x0000_0137_0000_0005
        static let sqlFilter: UInt64 = 0x0000_0137_0000_0006
        static let trueFilter: UInt64 = 0x0000_0137_0000_0007
        static let falseFilter: UInt64 = 0x0000_0137_0000_0008
        static let correlationFilter: UInt64 = 0x0000_0137_0000_0009
    }

    /// The most rules one enumerate-rules answer holds, whatever `top` the client asks for.
    static let maxTop = 1000

    /// What Herald answers a rule it cannot keep.
    package static let unsupported = "Herald supports correlation filters and the SQL filters 1=1 and 1=0, without rule actions"

    /// The correlation filter's identifier fields, by their map keys.
    private static var identifierKeys: [(key: String, field: WritableKeyPath<SubscriptionFilter, String?>)] {
        [
            ("correlation-id", \.correlationId), ("message-id", \.messageId), ("to", \.to), ("reply-to", \.replyTo), ("label", \.subject),
            ("session-id", \.sessionId), ("reply-to-session-id", \.replyToSessionId), ("content-type", \.contentType),
        ]
    }

    // MARK: Requests

    /// The rule an add-rule request's body asks for.
    static func rule(of body: [String: AMQPValue]) throws(Failure) -> SubscriptionRule {
        let name = try self.ruleName(body)
        guard let description = self.fields(body["rule-description"]) else {
            throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "add-rule takes a rule-description map")
        }
        if let action = description["sql-rule-action"], action != .null {
            throw Failure(status: 501, condition: AMQPCondition.notImplemented, description: "\(self.unsupported): the rule has a sql-rule-action")
        }
        if let sql = self.fields(description["sql-filter"]) {
            return SubscriptionRule(name: name, filter: try self.sqlFilter(sql["expression"]))
        }
        if let correlation = self.fields(description["correlation-filter"]) {
            return SubscriptionRule(name: name, filter: try self.correlationFilter(correlation))
        }
        throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "a rule-description holds a sql-filter or a correlation-filter map")
    }

    /// The rule a remove-rule request names.
    static func ruleName(_ body: [String: AMQPValue]) throws(Failure) -> String {
        guard case .string(let name)? = body["rule-name"] else {
            throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "the request names no rule-name")
        }
        return name
    }

    /// The page an enumerate-rules request asks for: `skip` and `top`, bounded (a subscription has
    /// at most ``HeraldLimits/maxRulesPerSubscription`` rules, an answer at most ``maxTop``).
    static func page(of body: [String: AMQPValue]) -> (skip: Int, top: Int) {
        let skip = min(max(body["skip"]?.signed ?? 0, 0), Int64(HeraldLimits.maxRulesPerSubscription))
        let top = min(max(body["top"]?.signed ?? Int64(self.maxTop), 0), Int64(self.maxTop))
        return (Int(skip), Int(top))
    }

    private static func sqlFilter(_ expression: AMQPValue?) throws(Failure) -> SubscriptionFilter {
        guard case .string(let text)? = expression else {
            throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "a sql-filter has an expression string")
        }
        guard let filter = self.filter(sqlExpression: text) else {
            throw Failure(status: 501, condition: AMQPCondition.notImplemented, description: "\(self.unsupported): got the SQL filter '\(text.prefix(100))'")
        }
        return filter
    }

    /// The filter of a SQL filter expression Herald can keep: `1=1` (every message: what the SDKs
    /// send for a `TrueRuleFilter`), `1=0` or `1>1` (none: a `FalseRuleFilter`); `nil` for any other.
    package static func filter(sqlExpression text: String) -> SubscriptionFilter? {
        switch text.filter({ !$0.isWhitespace }) {
        case "1=1": SubscriptionFilter.all
        case "1=0", "1>1": SubscriptionFilter.none
        default: nil
        }
    }

    private static func correlationFilter(_ fields: [String: AMQPValue]) throws(Failure) -> SubscriptionFilter {
        var filter = SubscriptionFilter()
        for (key, field) in self.identifierKeys {
            switch fields[key] {
            case nil, .null?: continue
            case let value?:
                guard let text = ServiceBusMessageMapping.identifier(value) else {
                    throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "a correlation-filter's \(key) is a string")
                }
                filter[keyPath: field] = text
            }
        }
        switch fields["properties"] {
        case nil, .null?: break
        case .map(let entries)?:
            for entry in entries {
                guard let key = entry.key.text else {
                    throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "a correlation-filter's property names are strings")
                }
                do {
                    filter.properties[key] = try ServiceBusMessageMapping.property(entry.value, key: key, kind: "the filter property")
                } catch {
                    throw Failure(status: 501, condition: error.condition, description: error.description ?? error.condition)
                }
            }
        default:
            throw Failure(status: 400, condition: AMQPCondition.invalidField, description: "a correlation-filter's properties are a map")
        }
        return filter
    }

    private static func fields(_ value: AMQPValue?) -> [String: AMQPValue]? {
        guard case .map(let entries)? = value else { return nil }
        return Dictionary(entries.compactMap { entry in entry.key.text.map { ($0, entry.value) } }) { first, _ in first }
    }

    // MARK: Answers

    /// The enumerate-rules answer's body entries for `rules`: a `rules` list of maps, each holding
    /// the described `rule-description`.
    static func answer(_ rules: [SubscriptionRule]) -> [(String, AMQPValue)] {
        [("rules", .list(rules.map { .map([AMQPMapEntry(.string("rule-description"), self.described($0))]) }))]
    }

    /// A rule as a described `rule-description` list: filter, action (none), name, creation time
    /// (Herald keeps none).
    static func described(_ rule: SubscriptionRule) -> AMQPValue {
        .described(
            descriptor: .ulong(Code.ruleDescription),
            value: .list([self.described(rule.filter), .described(descriptor: .ulong(Code.emptyRuleAction), value: .list([])), .string(rule.name), .null]))
    }

    private static func described(_ filter: SubscriptionFilter) -> AMQPValue {
        if filter.matchesNothing { return .described(descriptor: .ulong(Code.falseFilter), value: .list([])) }
        if filter == .all { return .described(descriptor: .ulong(Code.trueFilter), value: .list([])) }
        let identifiers: [AMQPValue] = self.identifierKeys.map { filter[keyPath: $0.field].map { .string($0) } ?? .null }
        let properties = filter.properties.sorted { $0.key < $1.key }.map { AMQPMapEntry(.string($0.key), ServiceBusMessageMapping.value($0.value)) }
        return .described(descriptor: .ulong(Code.correlationFilter), value: .list(identifiers + [.map(properties)]))
    }
}
