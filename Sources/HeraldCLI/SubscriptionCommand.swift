public import ArgumentParser
import HeraldClient
import HeraldCore

/// `herald subscription`: create, delete, list and inspect the subscriptions of a topic, and
/// manage their rules.
public struct SubscriptionCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "subscription",
        abstract: "Create, delete, list and inspect the subscriptions of a topic.",
        discussion: """
            A subscription receives a copy of every later message of its topic that any of its
            rules matches. It is created with one rule, $Default, holding the filter given;
            every condition of a filter must hold, and no condition matches everything.
            Receive from it as events/subscriptions/audit.

            Examples:
              herald subscription create events audit
              herald subscription create events billing --subject OrderPlaced --property region=eu
              herald subscription list events
              herald subscription show events audit
              herald subscription delete events audit
              herald subscription rule add events audit eu --property region=eu
            """,
        subcommands: [Create.self, Update.self, Delete.self, List.self, Show.self, RuleCommand.self]
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a subscription of a topic.",
            discussion: """
                Properties: key=value for a string, key:int=5, key:double=1.5, key:bool=true.
                Example: herald subscription create events billing --subject OrderPlaced --max-delivery-count 3
                """
        )

        @Argument(help: "The topic.")
        var topic: String

        @Argument(help: "The subscription's name.")
        var name: String

        @OptionGroup var filter: FilterArguments
        @OptionGroup var entity: EntityOptionArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.create(
                .subscription(self.name, of: self.topic), options: self.entity.options, filter: self.filter.filter, connection: self.connection)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change options of an existing subscription; options left out keep their value.",
            discussion: """
                New options apply from now on: to locks taken, deliveries counted and messages sent
                later. Sessions cannot be turned on or off.
                Example: herald subscription update events audit --max-delivery-count 3
                """
        )

        @Argument(help: "The topic.")
        var topic: String

        @Argument(help: "The subscription's name.")
        var name: String

        @OptionGroup var change: EntityOptionChangeArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.update(.subscription(self.name, of: self.topic), change: self.change.change, connection: self.connection)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a subscription with its messages and dead letters.",
            discussion: "Example: herald subscription delete events audit"
        )

        @Argument(help: "The topic.")
        var topic: String

        @Argument(help: "The subscription's name.")
        var name: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.delete(.subscription(self.name, of: self.topic), connection: self.connection)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the subscriptions of a topic with their options and filters.",
            discussion: "Example: herald subscription list events"
        )

        @Argument(help: "The topic.")
        var topic: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.list(.subscription, topic: self.topic, connection: self.connection)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a subscription's options, filter and message counts.",
            discussion: "Example: herald subscription show events audit --json"
        )

        @Argument(help: "The topic.")
        var topic: String

        @Argument(help: "The subscription's name.")
        var name: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.show(.subscription(self.name, of: self.topic), connection: self.connection)
        }
    }
}
