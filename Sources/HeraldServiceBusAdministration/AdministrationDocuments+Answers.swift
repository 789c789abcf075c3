import Foundation
import HeraldCore

extension AdministrationDocuments {
    /// What an entry describes.
    enum Description {
        case queue(EntityOptions, EntityCounts)
        case topic(EntityOptions, subscriptionCount: Int)
        case subscription(EntityOptions, EntityCounts)
        case rule(SubscriptionRule)
        case namespace(name: String)
    }

    /// One entry of an answer: its title (the entity's name) and what it describes.
    struct Entry {
        var title: String
        var resource: AdministrationResource
        var description: Description
    }

    /// An answer with one entry, as a GET or PUT of an entity gets it.
    static func entryDocument(_ entry: Entry, base: String) -> String {
        var writer = XMLWriter()
        self.write(entry, base: base, into: &writer, declaringNamespace: true)
        return "<?xml version=\"1.0\" encoding=\"utf-8\"?>" + writer.text
    }

    /// An answer with a feed of entries, as a list gets it; `next` is the query of the next page,
    /// when there is one (the SDKs read it from the feed's second link).
    static func feedDocument(title: String, resource: AdministrationResource, entries: [Entry], next: String?, base: String) -> String {
        var writer = XMLWriter()
        writer.element("feed", ["xmlns": Self.atomNamespace]) { writer in
            writer.element("title", ["type": "text"], text: title)
            writer.element("id", text: "\(base)\(resource.path)")
            writer.element("updated", text: Self.timestamp(Date()))
            writer.empty("link", ["rel": "self", "href": "\(base)\(resource.path)"])
            if let next { writer.empty("link", ["rel": "next", "href": "\(base)\(resource.path)?\(next)"]) }
            for entry in entries { self.write(entry, base: base, into: &writer, declaringNamespace: false) }
        }
        return "<?xml version=\"1.0\" encoding=\"utf-8\"?>" + writer.text
    }

    /// The body of an error answer, as Service Bus writes it.
    static func errorDocument(_ failure: AdministrationFailure) -> String {
        var writer = XMLWriter()
        writer.element("Error") { writer in
            writer.element("Code", text: String(failure.status))
            writer.element("Detail", text: failure.detail)
        }
        return writer.text
    }

    private static func write(_ entry: Entry, base: String, into writer: inout XMLWriter, declaringNamespace: Bool) {
        let attributes: KeyValuePairs<String, String> = declaringNamespace ? ["xmlns": Self.atomNamespace] : [:]
        writer.element("entry", attributes) { writer in
            writer.element("id", text: "\(base)\(entry.resource.path)")
            writer.element("title", ["type": "text"], text: entry.title)
            writer.element("updated", text: Self.timestamp(Date()))
            writer.element("author") { $0.element("name", text: "Herald") }
            writer.empty("link", ["rel": "self", "href": "\(base)\(entry.resource.path)"])
            writer.element("content", ["type": "application/xml"]) { writer in
                self.write(entry.description, title: entry.title, into: &writer)
            }
        }
    }

    private static func write(_ description: Description, title: String, into writer: inout XMLWriter) {
        let namespaces: KeyValuePairs<String, String> = ["xmlns": Self.serviceBusNamespace, "xmlns:i": Self.instanceNamespace]
        switch description {
        case .queue(let options, let counts):
            writer.element("QueueDescription", namespaces) { writer in
                writer.element("LockDuration", text: XMLDuration.format(options.lockDuration))
                writer.element("MaxSizeInMegabytes", text: "1024")
                writer.element("RequiresDuplicateDetection", text: String(options.duplicateDetectionWindow != nil))
                writer.element("RequiresSession", text: String(options.requiresSession))
                writer.element("DefaultMessageTimeToLive", text: options.defaultTimeToLive.map(XMLDuration.format) ?? XMLDuration.never)
                writer.element("DeadLetteringOnMessageExpiration", text: String(options.deadLetterOnExpiration))
                writer.element(
                    "DuplicateDetectionHistoryTimeWindow", text: XMLDuration.format(options.duplicateDetectionWindow ?? Self.defaultDuplicateDetectionWindow))
                writer.element("MaxDeliveryCount", text: String(options.maxDeliveryCount))
                writer.element("EnableBatchedOperations", text: "true")
                writer.element("SizeInBytes", text: "0")
                writer.element("MessageCount", text: String(Self.total(counts)))
                writer.element("Status", text: "Active")
                self.write(counts, into: &writer)
                writer.element("AutoDeleteOnIdle", text: XMLDuration.never)
                writer.element("EnablePartitioning", text: "false")
                writer.element("EntityAvailabilityStatus", text: "Available")
                writer.element("EnableExpress", text: "false")
                writer.element("MaxMessageSizeInKilobytes", text: String(Self.kilobytes(options.maxMessageSize)))
            }
        case .topic(let options, let subscriptionCount):
            writer.element("TopicDescription", namespaces) { writer in
                writer.element("DefaultMessageTimeToLive", text: options.defaultTimeToLive.map(XMLDuration.format) ?? XMLDuration.never)
                writer.element("MaxSizeInMegabytes", text: "1024")
                writer.element("RequiresDuplicateDetection", text: String(options.duplicateDetectionWindow != nil))
                writer.element(
                    "DuplicateDetectionHistoryTimeWindow", text: XMLDuration.format(options.duplicateDetectionWindow ?? Self.defaultDuplicateDetectionWindow))
                writer.element("EnableBatchedOperations", text: "true")
                writer.element("SizeInBytes", text: "0")
                writer.element("Status", text: "Active")
                writer.element("SupportOrdering", text: "true")
                writer.element("SubscriptionCount", text: String(subscriptionCount))
                writer.element("AutoDeleteOnIdle", text: XMLDuration.never)
                writer.element("EnablePartitioning", text: "false")
                writer.element("EntityAvailabilityStatus", text: "Available")
                writer.element("EnableExpress", text: "false")
                writer.element("MaxMessageSizeInKilobytes", text: String(Self.kilobytes(options.maxMessageSize)))
            }
        case .subscription(let options, let counts):
            writer.element("SubscriptionDescription", namespaces) { writer in
                writer.element("LockDuration", text: XMLDuration.format(options.lockDuration))
                writer.element("RequiresSession", text: String(options.requiresSession))
                writer.element("DefaultMessageTimeToLive", text: options.defaultTimeToLive.map(XMLDuration.format) ?? XMLDuration.never)
                writer.element("DeadLetteringOnMessageExpiration", text: String(options.deadLetterOnExpiration))
                writer.element("DeadLetteringOnFilterEvaluationExceptions", text: "false")
                writer.element("MessageCount", text: String(Self.total(counts)))
                writer.element("MaxDeliveryCount", text: String(options.maxDeliveryCount))
                writer.element("EnableBatchedOperations", text: "true")
                writer.element("Status", text: "Active")
                self.write(counts, into: &writer)
                writer.element("AutoDeleteOnIdle", text: XMLDuration.never)
                writer.element("EntityAvailabilityStatus", text: "Available")
            }
        case .rule(let rule):
            writer.element("RuleDescription", namespaces) { writer in
                self.write(rule.filter, into: &writer)
                writer.empty("Action", ["i:type": "EmptyRuleAction"])
                writer.element("Name", text: rule.name)
            }
        case .namespace(let name):
            writer.element("NamespaceInfo", namespaces) { writer in
                writer.element("MessagingSKU", text: "Herald")
                writer.element("MessagingUnits", text: "1")
                writer.element("Name", text: name)
                writer.element("NamespaceType", text: "Messaging")
            }
        }
    }

    private static func write(_ filter: SubscriptionFilter, into writer: inout XMLWriter) {
        if filter.matchesNothing {
            writer.element("Filter", ["i:type": "FalseFilter"]) { writer in
                writer.element("SqlExpression", text: "1=0")
                writer.element("CompatibilityLevel", text: "20")
            }
            return
        }
        if filter == .all {
            writer.element("Filter", ["i:type": "TrueFilter"]) { writer in
                writer.element("SqlExpression", text: "1=1")
                writer.element("CompatibilityLevel", text: "20")
            }
            return
        }
        writer.element("Filter", ["i:type": "CorrelationFilter"]) { writer in
            writer.element("CorrelationId", text: filter.correlationId)
            writer.element("MessageId", text: filter.messageId)
            writer.element("To", text: filter.to)
            writer.element("ReplyTo", text: filter.replyTo)
            writer.element("Label", text: filter.subject)
            writer.element("SessionId", text: filter.sessionId)
            writer.element("ReplyToSessionId", text: filter.replyToSessionId)
            writer.element("ContentType", text: filter.contentType)
            writer.element("Properties") { writer in
                for (key, value) in filter.properties.sorted(by: { $0.key < $1.key }) {
                    writer.element("KeyValueOfstringanyType") { writer in
                        writer.element("Key", text: key)
                        let (type, text) = Self.typed(value)
                        writer.element("Value", ["xmlns:d6p1": Self.schemaNamespace, "i:type": "d6p1:\(type)"], text: text)
                    }
                }
            }
        }
    }

    private static func typed(_ value: PropertyValue) -> (type: String, text: String) {
        switch value {
        case .string(let text): ("string", text)
        case .int(let number): (Int32(exactly: number) != nil ? "int" : "long", String(number))
        case .double(let number): ("double", String(number))
        case .bool(let flag): ("boolean", String(flag))
        }
    }

    private static func write(_ counts: EntityCounts, into writer: inout XMLWriter) {
        writer.element("CountDetails", ["xmlns:d2p1": Self.countNamespace]) { writer in
            writer.element("d2p1:ActiveMessageCount", text: String(counts.active + counts.locked))
            writer.element("d2p1:DeadLetterMessageCount", text: String(counts.deadLettered))
            writer.element("d2p1:ScheduledMessageCount", text: String(counts.scheduled))
            writer.element("d2p1:TransferMessageCount", text: "0")
            writer.element("d2p1:TransferDeadLetterMessageCount", text: "0")
        }
    }

    /// What Service Bus counts in `MessageCount`: every message in the entity and its dead-letter queue.
    private static func total(_ counts: EntityCounts) -> Int {
        counts.active + counts.locked + counts.scheduled + counts.deferred + counts.deadLettered
    }

    private static func kilobytes(_ bytes: Int) -> Int { (bytes + 1023) / 1024 }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
