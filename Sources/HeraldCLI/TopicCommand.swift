public import ArgumentParser
import HeraldCore

/// `herald topic`: create, delete, list and inspect topics.
public struct TopicCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "topic",
        abstract: "Create, delete, list and inspect topics.",
        discussion: """
            A topic copies each message it receives into every matching subscription
            (see `herald subscription`). Queues and topics share one namespace.

            Examples:
              herald topic create events --duplicate-window 10m
              herald topic list
              herald topic show events
              herald topic delete events
            """,
        subcommands: [Create.self, Update.self, Delete.self, List.self, Show.self]
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a topic.",
            discussion: """
                A topic uses --ttl, --duplicate-window and --max-message-size; the other
                options apply to its subscriptions.
                Example: herald topic create events --ttl 7d
                """
        )

        @Argument(help: "The topic's name: 1–128 of A-Z a-z 0-9 . _ -, starting with a letter or digit.")
        var name: String

        @OptionGroup var entity: EntityOptionArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.create(.topic(self.name), options: self.entity.options, connection: self.connection)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change options of an existing topic; options left out keep their value.",
            discussion: """
                New options apply from now on: to locks taken, deliveries counted and messages sent
                later. Sessions cannot be turned on or off.
                Example: herald topic update events --duplicate-window 10m
                """
        )

        @Argument(help: "The topic's name.")
        var name: String

        @OptionGroup var change: EntityOptionChangeArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.update(.topic(self.name), change: self.change.change, connection: self.connection)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a topic with its subscriptions and their messages.",
            discussion: "Example: herald topic delete events"
        )

        @Argument(help: "The topic's name.")
        var name: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.delete(.topic(self.name), connection: self.connection)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List topics with their options.",
            discussion: "Example: herald topic list --json"
        )

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.list(.topic, connection: self.connection)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a topic's options.",
            discussion: "Example: herald topic show events (its subscriptions: herald subscription list events)"
        )

        @Argument(help: "The topic's name.")
        var name: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.show(.topic(self.name), connection: self.connection)
        }
    }
}
