public import ArgumentParser
import HeraldCore

/// `herald queue`: create, delete, list and inspect queues.
public struct QueueCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Create, delete, list and inspect queues.",
        discussion: """
            Examples:
              herald queue create orders --lock-duration 30s --max-delivery-count 5
              herald queue create payments --requires-session --duplicate-window 10m
              herald queue list
              herald queue show orders --json
              herald queue delete orders --server http://localhost:8080 --key $KEY
            """,
        subcommands: [Create.self, Update.self, Delete.self, List.self, Show.self]
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a queue.",
            discussion: """
                Durations take a unit: 500ms, 30s, 10m, 2h, 7d.
                Example: herald queue create orders --lock-duration 30s --ttl 1d
                """
        )

        @Argument(help: "The queue's name: 1–128 of A-Z a-z 0-9 . _ -, starting with a letter or digit.")
        var name: String

        @OptionGroup var entity: EntityOptionArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.create(.queue(self.name), options: self.entity.options, connection: self.connection)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change options of an existing queue; options left out keep their value.",
            discussion: """
                New options apply from now on: to locks taken, deliveries counted and messages sent
                later. Sessions cannot be turned on or off.
                Example: herald queue update orders --lock-duration 2m --ttl none
                """
        )

        @Argument(help: "The queue's name.")
        var name: String

        @OptionGroup var change: EntityOptionChangeArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.update(.queue(self.name), change: self.change.change, connection: self.connection)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a queue with its messages and dead letters.",
            discussion: "Example: herald queue delete orders"
        )

        @Argument(help: "The queue's name.")
        var name: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.delete(.queue(self.name), connection: self.connection)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List queues with their options.",
            discussion: "Example: herald queue list --json | jq '.items[].path'"
        )

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.list(.queue, connection: self.connection)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a queue's options and message counts.",
            discussion: "Example: herald queue show orders"
        )

        @Argument(help: "The queue's name.")
        var name: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await EntityActions.show(.queue(self.name), connection: self.connection)
        }
    }
}
