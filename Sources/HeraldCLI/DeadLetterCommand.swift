public import ArgumentParser
import HeraldCore
import HeraldWire

/// `herald deadletter`: inspect, resubmit and purge the dead-letter queue of a queue or subscription.
public struct DeadLetterCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "deadletter",
        abstract: "Inspect, resubmit, move and purge dead letters.",
        discussion: """
            Every queue and subscription has a dead-letter queue: messages that exceeded
            their max delivery count, expired, or were dead-lettered by a receiver.

            Resubmit, move and purge run as a bulk job in the broker: the selection is frozen
            when the job starts, and the job survives a restart of the broker, acting on each
            dead letter once. They wait for the job to finish unless --no-wait is given.

            Examples:
              herald deadletter list orders --reason Timeout
              herald deadletter summary events/subscriptions/audit
              herald deadletter resubmit orders 17 18
              herald deadletter resubmit orders --all
              herald deadletter move orders --to orders-parking --subject OrderPlaced
              herald deadletter purge orders --body-contains test
              herald deadletter jobs
            """,
        subcommands: [List.self, Summary.self, Resubmit.self, Move.self, Purge.self, Jobs.self, Job.self]
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    /// The dead-letter queue of a queue or subscription path (with or without the `$deadletterqueue` suffix).
    static func deadLetterQueue(of entity: String) throws -> EntityPath {
        let path = try EntityPath(parsing: entity)
        guard path.kind != .topic else {
            throw HeraldError(.invalidArgument, "a topic has no dead-letter queue; its subscriptions do")
        }
        return path.deadLetter
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List dead letters: sequence number, message id, reason, description, deliveries, enqueued time, subject, body.",
            discussion: """
                The body is cut short; `herald message show ENTITY/$deadletterqueue SEQ` shows one whole.
                Examples:
                  herald deadletter list orders --max-count 20
                  herald deadletter list orders --reason Timeout --enqueued-from 2025-03-01
                """
        )

        @Argument(help: "The queue or subscription (topic/subscriptions/name).")
        var entity: String

        @Option(help: "The most dead letters to list (default: all).")
        var maxCount: Int?

        @OptionGroup var filter: DeadLetterFilterArguments
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if let maxCount = self.maxCount, maxCount < 1 { throw ValidationError("--max-count must be at least 1") }
        }

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                let queue = try DeadLetterCommand.deadLetterQueue(of: self.entity)
                try await self.connection.withBroker { broker in
                    let messages = try await DeadLetterQuery.search(queue.origin, matching: self.filter.filter, limit: self.maxCount ?? .max, in: broker)
                    try MessageRendering.printDeadLetters(messages, json: self.connection.json)
                }
            }
        }
    }
}

extension DeadLetterCommand {
    struct Summary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Count dead letters by reason and by subject.",
            discussion: "Example: herald deadletter summary orders --enqueued-from 2025-03-01"
        )

        @Argument(help: "The queue or subscription (topic/subscriptions/name).")
        var entity: String

        @OptionGroup var filter: DeadLetterFilterArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                let queue = try DeadLetterCommand.deadLetterQueue(of: self.entity)
                try await self.connection.withBroker { broker in
                    let summary = try await DeadLetterQuery.summary(queue.origin, matching: self.filter.filter, in: broker)
                    if self.connection.json { return try CommandOutput.printJSON(DeadLetterSummaryResponse(summary)) }
                    CommandOutput.print("\(summary.total) dead letter(s) of \(queue.origin)")
                    for (title, groups) in [("REASON", summary.reasons), ("SUBJECT", summary.subjects)] where !groups.isEmpty {
                        var table = Table([.init(title), .init("COUNT", alignRight: true)])
                        for group in groups { table.append([group.value ?? "-", "\(group.count)"]) }
                        CommandOutput.print("")
                        CommandOutput.print(table.render())
                    }
                }
            }
        }
    }
}
