public import ArgumentParser
import HeraldCore
import HeraldWire

/// `herald session list`: the sessions of a session queue or subscription.
public struct SessionCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Inspect the sessions of a session queue or subscription.",
        subcommands: [List.self]
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List sessions: messages, holder, parking by a dead letter, state size.",
            discussion: """
                Examples:
                  herald session list carts
                  herald session list carts --after customer-100 --max-count 50 --json
                """
        )

        @Argument(help: "The session queue or subscription (topic/subscriptions/name).")
        var entity: String

        @Option(help: "List the sessions whose ids come after this one.")
        var after: String?

        @Option(help: "The most sessions to list (1–1000).")
        var maxCount = 100

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                let path = try EntityPath(parsing: self.entity)
                try await self.connection.withBroker { broker in
                    let sessions = try await manageable(broker).sessions(of: path, after: self.after, maxCount: self.maxCount)
                    if self.connection.json { return try CommandOutput.printJSON(SessionList(sessions: sessions.map(WireSessionInfo.init))) }
                    if sessions.isEmpty { return CommandOutput.print("(no sessions)") }
                    var table = Table([
                        .init("SESSION"), .init("MESSAGES", alignRight: true), .init("HELD UNTIL"), .init("PARKED"), .init("STATE", alignRight: true),
                    ])
                    for session in sessions {
                        table.append([
                            session.sessionId, "\(session.messageCount)", session.lockedUntil.map(MessageRendering.time) ?? "-",
                            session.isParked ? "yes" : "no", session.stateSize.map { "\($0) B" } ?? "-",
                        ])
                    }
                    CommandOutput.print(table.render())
                }
            }
        }
    }
}
