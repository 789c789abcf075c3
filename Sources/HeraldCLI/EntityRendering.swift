import HeraldClient
import HeraldCore
import HeraldWire

// How entities print: the JSON of the HTTP API's management routes, or aligned text.

extension EntityStatus {
    /// The wire form the server's management routes answer with, so `--json` output and the
    /// HTTP API agree.
    var wire: WireEntityInfo {
        WireEntityInfo(
            kind: self.path.kind.rawValue, path: self.path.description, entity: WireEntity(self.path), options: WireOptions(self.options),
            filter: self.filter.map(WireFilter.init), rules: self.rules?.map(WireRule.init), counts: self.counts.map(WireCounts.init)
        )
    }
}

enum EntityRendering {
    /// Prints `statuses` as a JSON list (`{"items": [...]}`) or as a table of names and options.
    static func printList(_ statuses: [EntityStatus], json: Bool) throws {
        if json { return try CommandOutput.printJSON(WireEntityList(items: statuses.map(\.wire))) }
        if statuses.isEmpty { return CommandOutput.print("(none)") }
        let withFilter = statuses.contains { $0.path.kind == .subscription }
        // Lock, deliveries and sessions concern receivers: a list of topics leaves them out.
        let forReceivers = statuses.contains { $0.path.kind != .topic }
        var columns: [Table.Column] = [.init("NAME")]
        if forReceivers { columns += [.init("LOCK", alignRight: true), .init("MAX DELIVERY", alignRight: true)] }
        columns += [.init("TTL", alignRight: true), .init("DEDUP WINDOW", alignRight: true)]
        if forReceivers { columns.append(.init("SESSIONS")) }
        if withFilter { columns.append(.init("FILTER")) }
        var table = Table(columns)
        for status in statuses {
            let options = status.options
            var row = [status.path.kind == .subscription ? status.path.name : status.path.description]
            if forReceivers { row += [DurationArgument.format(options.lockDuration), "\(options.maxDeliveryCount)"] }
            row += [options.defaultTimeToLive.map(DurationArgument.format) ?? "-", options.duplicateDetectionWindow.map(DurationArgument.format) ?? "-"]
            if forReceivers { row.append(options.requiresSession ? "yes" : "no") }
            if withFilter { row.append(Self.describe(rules: status.subscriptionDescription.rules)) }
            table.append(row)
        }
        CommandOutput.print(table.render())
    }

    /// Prints one entity's options, filter and counts.
    static func printDetails(_ status: EntityStatus, json: Bool) throws {
        if json { return try CommandOutput.printJSON(status.wire) }
        let options = status.options
        var details = Details()
        details.append("Path", status.path.description)
        details.append("Kind", status.path.kind.rawValue)
        if status.path.kind != .topic {
            details.append("Lock duration", DurationArgument.format(options.lockDuration))
            details.append("Max delivery count", "\(options.maxDeliveryCount)")
        }
        details.append("Default TTL", options.defaultTimeToLive.map(DurationArgument.format) ?? "none")
        details.append("Expired messages", options.deadLetterOnExpiration ? "dead-lettered" : "dropped")
        details.append("Duplicate window", options.duplicateDetectionWindow.map(DurationArgument.format) ?? "off")
        details.append("Max message size", "\(options.maxMessageSize) bytes")
        if status.path.kind != .topic {
            details.append("Requires session", options.requiresSession ? "yes" : "no")
            if options.requiresSession {
                details.append("Park session on dead letter", options.parkSessionOnDeadLetter ? "yes" : "no")
            }
        }
        if status.path.kind == .subscription { details.append("Filter", Self.describe(rules: status.subscriptionDescription.rules)) }
        if let counts = status.counts {
            details.append("Active", "\(counts.active)")
            details.append("Locked", "\(counts.locked)")
            details.append("Scheduled", "\(counts.scheduled)")
            details.append("Deferred", "\(counts.deferred)")
            details.append("Dead-lettered", "\(counts.deadLettered)")
        }
        CommandOutput.print(details.render())
    }

    /// `subject=X correlationId=Y …`, `all`, or `none`.
    static func describe(_ filter: SubscriptionFilter) -> String {
        if filter.matchesNothing { return "none" }
        let identifiers: [(String, String?)] = [
            ("subject", filter.subject), ("correlationId", filter.correlationId), ("contentType", filter.contentType),
            ("messageId", filter.messageId), ("to", filter.to), ("replyTo", filter.replyTo), ("sessionId", filter.sessionId),
            ("replyToSessionId", filter.replyToSessionId),
        ]
        var parts = identifiers.compactMap { name, value in value.map { "\(name)=\($0)" } }
        for (key, value) in filter.properties.sorted(by: { $0.key < $1.key }) {
            parts.append(PropertyArgument.format(key: key, value: value))
        }
        return parts.isEmpty ? "all" : parts.joined(separator: " ")
    }

    /// A subscription's rules: the filter alone for the one rule `$Default` it is created with,
    /// else `name: filter` for each rule joined by ` | `, or `none` without rules.
    static func describe(rules: [SubscriptionRule]) -> String {
        if rules.isEmpty { return "none (no rules)" }
        if rules.count == 1, rules[0].name == SubscriptionRule.defaultName { return Self.describe(rules[0].filter) }
        return rules.map { "\($0.name): \(Self.describe($0.filter))" }.joined(separator: " | ")
    }
}
