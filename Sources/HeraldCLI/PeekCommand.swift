public import ArgumentParser
import HeraldCore

/// `herald peek`: reads messages without locking or removing them.
public struct PeekCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "peek",
        abstract: "Show messages of a queue or subscription without receiving them.",
        discussion: """
            Peek reads messages in any state (active, locked, scheduled, deferred) in
            sequence-number order and changes nothing.

            Examples:
              herald peek orders
              herald peek orders --from 120 --max-count 50
              herald peek events/subscriptions/audit --json
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or subscription, or its dead-letter queue (…/$deadletterqueue).")
    var entity: String

    @Option(help: "The first sequence number to show.")
    var from: Int64 = 1

    @Option(help: "The most messages to show (1–1000).")
    var maxCount = 10

    @OptionGroup var connection: ConnectionOptions

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity)
            try await self.connection.withBroker { broker in
                let messages = try await broker.peek(path, fromSequenceNumber: self.from, maxCount: self.maxCount)
                try MessageRendering.printMessages(messages, json: self.connection.json)
            }
        }
    }
}
