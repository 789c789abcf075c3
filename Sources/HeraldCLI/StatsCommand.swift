public import ArgumentParser
import HeraldClient
import HeraldCore
import HeraldWire

/// `herald stats`: message counts of every queue and subscription.
public struct StatsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show the message counts of every queue and subscription.",
        discussion: """
            Counts by state: active (waiting for a receiver), locked (held by a receiver),
            scheduled, deferred, and dead-lettered (in the dead-letter queue).

            Examples:
              herald stats
              herald stats --data /var/lib/herald
              herald stats --server http://localhost:8080 --json | jq '.items[] | select(.counts.deadLettered > 0) | .path'
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @OptionGroup var connection: ConnectionOptions

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            try await self.connection.withBroker { broker in
                let statuses = try await Inventory.all(in: broker)
                if self.connection.json { return try CommandOutput.printJSON(WireEntityList(items: statuses.map(\.wire))) }
                if statuses.isEmpty { return CommandOutput.print("(no queues or subscriptions)") }
                var table = Table([
                    .init("ENTITY"), .init("ACTIVE", alignRight: true), .init("LOCKED", alignRight: true), .init("SCHEDULED", alignRight: true),
                    .init("DEFERRED", alignRight: true), .init("DEAD-LETTERED", alignRight: true),
                ])
                for status in statuses {
                    let counts = status.counts ?? EntityCounts()
                    table.append([
                        status.path.description, "\(counts.active)", "\(counts.locked)", "\(counts.scheduled)", "\(counts.deferred)",
                        "\(counts.deadLettered)",
                    ])
                }
                CommandOutput.print(table.render())
            }
        }
    }
}
