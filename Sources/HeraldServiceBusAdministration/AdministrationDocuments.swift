import Foundation
import HeraldAMQPServer
import HeraldCore

/// Why an administration request is refused: its HTTP status and a detail for people, which the
/// answer carries as Service Bus's `<Error><Code>…</Code><Detail>…</Detail></Error>`.
struct AdministrationFailure: Error, Equatable {
    var status: Int
    var detail: String

    static func badRequest(_ detail: String) -> Self { Self(status: 400, detail: detail) }
    static func notImplemented(_ detail: String) -> Self { Self(status: 501, detail: detail) }
}

/// What a PUT's Atom entry describes.
enum AdministrationBody: Equatable {
    case queue(EntityOptionsChange)
    case topic(EntityOptionsChange)
    /// A subscription, and the filter of its `$Default` rule when the entry gives one.
    case subscription(EntityOptionsChange, defaultRule: SubscriptionFilter?)
    case rule(SubscriptionFilter)
}

/// Reads the Atom entries the Service Bus administration clients send, and writes the entries and
/// feeds they read, in the XML of Service Bus's management API (namespaces
/// `http://www.w3.org/2005/Atom` and `http://schemas.microsoft.com/netservices/2010/10/servicebus/connect`).
///
/// Every setting Herald has is read and written. Settings Herald cannot honour (auto-forwarding,
/// partitioning, auto-delete on idle, express entities, a status other than `Active`, user metadata,
/// SQL filters other than `1=1`/`1=0`, rule actions) are refused rather than ignored; settings that
/// change nothing a client can observe of Herald (batched operations, size quotas, ordering
/// support) are accepted and not kept.
enum AdministrationDocuments {
    static let atomNamespace = "http://www.w3.org/2005/Atom"
    static let serviceBusNamespace = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"
    static let instanceNamespace = "http://www.w3.org/2001/XMLSchema-instance"
    static let countNamespace = "http://schemas.microsoft.com/netservices/2011/06/servicebus"
    static let schemaNamespace = "http://www.w3.org/2001/XMLSchema"
    /// The duplicate detection window of an entry that turns detection on without one, as Service Bus.
    static let defaultDuplicateDetectionWindow: Duration = .seconds(600)

    // MARK: Reading entries

    /// The description an entry (the body of a PUT) holds.
    static func body(of data: Data) throws(AdministrationFailure) -> AdministrationBody {
        let root: XMLTree
        do { root = try XMLTreeParser.parse(data) } catch { throw .badRequest(error.description) }
        guard root.name == "entry", root.namespace == Self.atomNamespace, let content = root.child("content"),
            let description = content.children.first
        else {
            throw .badRequest("the body is an Atom entry whose content holds a QueueDescription, TopicDescription, SubscriptionDescription or RuleDescription")
        }
        switch description.name {
        case "QueueDescription": return .queue(try self.options(of: description))
        case "TopicDescription": return .topic(try self.options(of: description))
        case "SubscriptionDescription":
            let defaultRule = try description.child("DefaultRuleDescription").map { rule throws(AdministrationFailure) in try self.filter(of: rule) }
            return .subscription(try self.options(of: description), defaultRule: defaultRule)
        case "RuleDescription": return .rule(try self.filter(of: description))
        default: throw .badRequest("Herald's administration API does not know a \(description.name.prefix(64))")
        }
    }

    /// The settings of a queue, topic or subscription description, as a change of the defaults (a
    /// create) or of the entity's settings (an update).
    static func options(of description: XMLTree) throws(AdministrationFailure) -> EntityOptionsChange {
        var change = EntityOptionsChange()
        if let text = description.text(of: "LockDuration") { change.lockDuration = try self.duration(text, "LockDuration") }
        if let text = description.text(of: "MaxDeliveryCount") { change.maxDeliveryCount = try self.integer(text, "MaxDeliveryCount") }
        if let text = description.text(of: "DefaultMessageTimeToLive") {
            let ttl = try self.duration(text, "DefaultMessageTimeToLive")
            change.defaultTimeToLive = .some(ttl >= XMLDuration.neverThreshold ? nil : ttl)
        }
        if let text = description.text(of: "DeadLetteringOnMessageExpiration") {
            change.deadLetterOnExpiration = try self.boolean(text, "DeadLetteringOnMessageExpiration")
        }
        if let text = description.text(of: "RequiresDuplicateDetection") {
            if try self.boolean(text, "RequiresDuplicateDetection") {
                let window = try description.text(of: "DuplicateDetectionHistoryTimeWindow").map { text throws(AdministrationFailure) in
                    try self.duration(text, "DuplicateDetectionHistoryTimeWindow")
                }
                change.duplicateDetectionWindow = .some(window ?? Self.defaultDuplicateDetectionWindow)
            } else {
                change.duplicateDetectionWindow = .some(nil)
            }
        }
        if let text = description.text(of: "RequiresSession") { change.requiresSession = try self.boolean(text, "RequiresSession") }
        if let text = description.text(of: "MaxMessageSizeInKilobytes") {
            let kilobytes = try self.integer(text, "MaxMessageSizeInKilobytes")
            guard kilobytes > 0, kilobytes <= EntityOptions.maxMessageSizeRange.upperBound / 1024 else {
                throw .badRequest("MaxMessageSizeInKilobytes is 1 to \(EntityOptions.maxMessageSizeRange.upperBound / 1024) in Herald; got \(kilobytes)")
            }
            change.maxMessageSize = kilobytes * 1024
        }
        try self.refuseUnsupported(description)
        return change
    }

    /// Refuses the settings Herald cannot honour, naming the first.
    private static func refuseUnsupported(_ description: XMLTree) throws(AdministrationFailure) {
        for name in ["ForwardTo", "ForwardDeadLetteredMessagesTo"] {
            if let text = description.text(of: name), !text.isEmpty {
                throw .notImplemented("Herald does not forward messages between entities (\(name))")
            }
        }
        for name in ["EnablePartitioning", "EnableExpress", "EnableSubscriptionPartitioning"] {
            if let text = description.text(of: name), try self.boolean(text, name) {
                throw .notImplemented("Herald has no partitioned or express entities (\(name))")
            }
        }
        if let text = description.text(of: "AutoDeleteOnIdle"), try self.duration(text, "AutoDeleteOnIdle") < XMLDuration.neverThreshold {
            throw .notImplemented("Herald does not delete idle entities (AutoDeleteOnIdle)")
        }
        if let text = description.text(of: "Status"), text != "Active" {
            throw .notImplemented("Herald's entities are always Active; got the status \(text.prefix(32))")
        }
        if let text = description.text(of: "UserMetadata"), !text.isEmpty {
            throw .notImplemented("Herald does not keep user metadata on entities")
        }
    }

    /// The filter of a rule description (a `RuleDescription` or a `DefaultRuleDescription`).
    static func filter(of rule: XMLTree) throws(AdministrationFailure) -> SubscriptionFilter {
        if let action = rule.child("Action"), let type = action.typeAttribute, type != "EmptyRuleAction" {
            throw .notImplemented("\(Self.unsupportedRule): the rule has a \(type.prefix(32))")
        }
        guard let filter = rule.child("Filter") else { return .all }
        switch filter.typeAttribute {
        case "CorrelationFilter"?: return try self.correlationFilter(filter)
        case "SqlFilter"?, "TrueFilter"?, "FalseFilter"?:
            let expression = filter.text(of: "SqlExpression") ?? ""
            if let parameters = filter.child("Parameters"), !parameters.children.isEmpty {
                throw .notImplemented("\(Self.unsupportedRule): the SQL filter has parameters")
            }
            guard let kept = ServiceBusRules.filter(sqlExpression: expression) else {
                throw .notImplemented("\(Self.unsupportedRule): got the SQL filter '\(expression.prefix(100))'")
            }
            return kept
        case let type:
            throw .badRequest("a rule's Filter is a CorrelationFilter or a SqlFilter; got \(type.map { String($0.prefix(32)) } ?? "no type")")
        }
    }

    /// What Herald answers a rule it cannot keep: the AMQP rule operations' words.
    static var unsupportedRule: String { ServiceBusRules.unsupported }

    private static var identifierElements: [(element: String, field: WritableKeyPath<SubscriptionFilter, String?>)] {
        [
            ("CorrelationId", \.correlationId), ("MessageId", \.messageId), ("To", \.to), ("ReplyTo", \.replyTo), ("Label", \.subject),
            ("SessionId", \.sessionId), ("ReplyToSessionId", \.replyToSessionId), ("ContentType", \.contentType),
        ]
    }

    private static func correlationFilter(_ element: XMLTree) throws(AdministrationFailure) -> SubscriptionFilter {
        var filter = SubscriptionFilter()
        for (name, field) in Self.identifierElements {
            guard let text = element.text(of: name) else { continue }
            guard text.utf8.count <= HeraldLimits.maxIdentifierLength else {
                throw .badRequest("a correlation filter's \(name) is at most \(HeraldLimits.maxIdentifierLength) bytes")
            }
            filter[keyPath: field] = text
        }
        for pair in element.child("Properties")?.children ?? [] where pair.name == "KeyValueOfstringanyType" {
            guard let key = pair.text(of: "Key"), !key.isEmpty, let value = pair.child("Value") else {
                throw .badRequest("each correlation filter property has a Key and a Value")
            }
            filter.properties[key] = try self.property(value, key: key)
        }
        return filter
    }

    private static func property(_ value: XMLTree, key: String) throws(AdministrationFailure) -> PropertyValue {
        let text = value.text
        switch value.typeAttribute {
        case "string"?: return .string(text)
        case "int"?, "long"?, "short"?, "byte"?, "unsignedInt"?, "unsignedShort"?, "unsignedByte"?:
            guard let number = Int64(text) else { throw .badRequest("the filter property \(key.prefix(64)) is not an integer") }
            return .int(number)
        case "double"?, "float"?:
            guard let number = Double(text) else { throw .badRequest("the filter property \(key.prefix(64)) is not a number") }
            return .double(number)
        case "boolean"?:
            switch text.lowercased() {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw .badRequest("the filter property \(key.prefix(64)) is not true or false")
            }
        case let type:
            throw .notImplemented(
                "Herald's filter properties are strings, integers, numbers and booleans; \(key.prefix(64)) is \(type.map { String($0.prefix(32)) } ?? "untyped")"
            )
        }
    }

    private static func duration(_ text: String, _ name: String) throws(AdministrationFailure) -> Duration {
        guard let duration = XMLDuration.parse(text) else { throw .badRequest("\(name) is an xs:duration such as PT1M; got \(text.prefix(40))") }
        return duration
    }

    private static func integer(_ text: String, _ name: String) throws(AdministrationFailure) -> Int {
        guard let value = Int(text) else { throw .badRequest("\(name) is an integer; got \(text.prefix(40))") }
        return value
    }

    private static func boolean(_ text: String, _ name: String) throws(AdministrationFailure) -> Bool {
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw .badRequest("\(name) is true or false; got \(text.prefix(40))")
        }
    }
}
