import ArgumentParser
import HeraldClient
import HeraldCore
import HeraldWire

/// The conditions of a subscription filter, as `subscription create` and `subscription rule add`
/// take them; every condition given must hold, and none matches everything.
struct FilterArguments: ParsableArguments {
    @Option(help: "Only messages with this subject.")
    var subject: String?

    @Option(help: "Only messages with this correlation id.")
    var correlationId: String?

    @Option(help: "Only messages with this content type.")
    var contentType: String?

    @Option(help: "Only messages with this message id.")
    var messageId: String?

    @Option(help: "Only messages with this 'to'.")
    var to: String?

    @Option(help: "Only messages with this reply-to.")
    var replyTo: String?

    @Option(help: "Only messages with this session id.")
    var sessionId: String?

    @Option(help: "Only messages with this reply-to session id.")
    var replyToSessionId: String?

    @Option(name: .customLong("property"), help: ArgumentHelp("Only messages with this application property (repeatable).", valueName: "key=value"))
    var properties: [PropertyArgument] = []

    @Flag(help: "Match no message at all (Service Bus's FalseFilter).")
    var matchesNothing = false

    var filter: SubscriptionFilter {
        SubscriptionFilter(
            subject: self.subject, correlationId: self.correlationId, contentType: self.contentType,
            properties: PropertyArgument.properties(self.properties), messageId: self.messageId, to: self.to, replyTo: self.replyTo,
            sessionId: self.sessionId, replyToSessionId: self.replyToSessionId, matchesNothing: self.matchesNothing
        )
    }
}

/// `herald subscription rule`: list, add and remove the rules of a subscription.
struct RuleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rule",
        abstract: "List, add and remove the rules of a subscription.",
        discussion: """
            A subscription receives a message when any of its rules matches it; one without rules
            receives nothing. A change applies to messages sent after it.

            Examples:
              herald subscription rule list events audit
              herald subscription rule add events audit eu --property region=eu
              herald subscription rule remove events audit '$Default'
            """,
        subcommands: [List.self, Add.self, Remove.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a subscription's rules in the order they were added.",
            discussion: "Example: herald subscription rule list events audit --json"
        )

        @Argument(help: "The topic.")
        var topic: String

        @Argument(help: "The subscription's name.")
        var name: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let path = EntityPath.subscription(self.name, of: self.topic)
            let json = self.connection.json
            try await reportingErrors(json: json) {
                try await self.connection.withBroker { broker in
                    let rules = try await manageable(broker).rules(of: path)
                    if json { return try CommandOutput.printJSON(WireRuleList(items: rules.map(WireRule.init))) }
                    if rules.isEmpty { return CommandOutput.print("(none: the subscription receives nothing)") }
                    var table = Table([.init("RULE"), .init("FILTER")])
                    for rule in rules { table.append([rule.name, EntityRendering.describe(rule.filter)]) }
                    CommandOutput.print(table.render())
                }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a rule to a subscription.",
            discussion: """
                Properties: key=value for a string, key:int=5, key:double=1.5, key:bool=true.
                Example: herald subscription rule add events audit placed --subject OrderPlaced
                """
        )

        @Argument(help: "The topic.")
        var topic: String

        @Argument(help: "The subscription's name.")
        var name: String

        @Argument(help: "The rule's name (1–50 characters).")
        var rule: String

        @OptionGroup var filter: FilterArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let path = EntityPath.subscription(self.name, of: self.topic)
            let rule = SubscriptionRule(name: self.rule, filter: self.filter.filter)
            let json = self.connection.json
            try await reportingErrors(json: json) {
                try await self.connection.withBroker { broker in
                    try await manageable(broker).addRule(rule, to: path)
                    if json { return try CommandOutput.printJSON(WireRule(rule)) }
                    CommandOutput.print("added rule \(rule.name) to \(path)")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a rule from a subscription.",
            discussion: "Example: herald subscription rule remove events audit '$Default'"
        )

        @Argument(help: "The topic.")
        var topic: String

        @Argument(help: "The subscription's name.")
        var name: String

        @Argument(help: "The rule's name.")
        var rule: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let path = EntityPath.subscription(self.name, of: self.topic)
            let name = self.rule
            let json = self.connection.json
            try await reportingErrors(json: json) {
                try await self.connection.withBroker { broker in
                    try await manageable(broker).removeRule(named: name, from: path)
                    if json { return try CommandOutput.printJSON(["removed": name]) }
                    CommandOutput.print("removed rule \(name) from \(path)")
                }
            }
        }
    }
}
