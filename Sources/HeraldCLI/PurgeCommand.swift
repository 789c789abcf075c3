public import ArgumentParser
import Foundation
import HeraldCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `herald purge`: deletes the messages of a queue or subscription that wait for a receiver.
public struct PurgeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete the messages of a queue or subscription that wait for a receiver.",
        discussion: """
            Deletes the active messages nobody holds now (a scheduled message whose time came
            included), up to the last one sent when the purge begins; locked, deferred and
            still-scheduled messages, and dead letters, stay (`herald deadletter purge` deletes
            dead letters). It asks for confirmation on a terminal; --yes skips the question,
            and is required when standard input is not a terminal.

            Examples:
              herald purge orders
              herald purge events/subscriptions/audit --yes --json
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or subscription (topic/subscriptions/name).")
    var entity: String

    @Flag(name: [.short, .long], help: "Purge without asking.")
    var yes = false

    @OptionGroup var connection: ConnectionOptions

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity)
            try path.checkReceiveSource()
            try await self.connection.withBroker { broker in
                let broker = try manageable(broker)
                if !self.yes {
                    let waiting = try await broker.counts(of: path).active
                    try Self.confirm("Delete the \(waiting) waiting message(s) of \(path)? [y/N] ")
                }
                let purged = try await broker.purge(path)
                if self.connection.json { return try CommandOutput.printJSON(["purged": purged]) }
                CommandOutput.print("purged \(purged) message(s) of \(path)")
            }
        }
    }

    /// Asks `question` on the terminal; throws unless the answer is yes, or when standard input is
    /// not a terminal (a script must say --yes).
    static func confirm(_ question: String) throws {
        guard isatty(STDIN_FILENO) == 1 else {
            throw CommandFailure("purging deletes messages: confirm with --yes (standard input is not a terminal)", code: "confirmationRequired")
        }
        CommandOutput.current.standardError(question)
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard answer == "y" || answer == "yes" else { throw CommandFailure("not purged", code: "cancelled") }
    }
}
