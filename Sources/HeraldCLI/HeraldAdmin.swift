public import ArgumentParser
import Synchronization

/// The admin commands as one group, to run them from code: tests, or a program embedding the CLI.
///
/// The `herald` executable registers each command itself; this group holds the same commands, so
/// `HeraldAdmin.main(arguments: ["stats", "--data", path])` behaves as `herald stats --data path`.
public struct HeraldAdmin: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Manage a Herald broker: entities, messages, dead letters and counts.",
        discussion: """
            Every command works on a server (--server URL --key KEY, or $HERALD_URL and
            $HERALD_KEY) or directly on a data directory (--data PATH, default ./herald-data,
            while no server runs on it). --json prints machine-readable JSON, and a failure as
            {"error": code, "message": text} on standard error.
            """,
        subcommands: [
            QueueCommand.self, TopicCommand.self, SubscriptionCommand.self, SendCommand.self, ReceiveCommand.self, PeekCommand.self,
            DeadLetterCommand.self, SessionCommand.self, MessageCommand.self, PurgeCommand.self, CancelScheduledCommand.self, TailCommand.self,
            ExportCommand.self, ImportCommand.self, StatsCommand.self,
        ]
    )

    /// Creates the group; ArgumentParser calls this.
    public init() {}

    /// Parses `arguments` (without the program name), runs the command they name, and returns
    /// the exit status the process would have; output goes to ``CommandOutput/current``.
    public static func main(arguments: [String]) async -> Int32 {
        await Self.run(Self.self, arguments: arguments)
    }

    /// Parses `arguments` as a command of `root`, runs it, and returns the exit status: 0, or
    /// what ``report(_:arguments:root:)`` says of the failure.
    public static func run(_ root: any ParsableCommand.Type, arguments: [String]) async -> Int32 {
        do {
            var command = try root.parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            return 0
        } catch {
            return Self.report(error, arguments: arguments, root: root)
        }
    }

    /// Reports `error`, which ended the command `arguments` name (without the program name),
    /// as ArgumentParser does; with `--json` among the arguments, a failure is a JSON object
    /// `{"error": code, "message": text}` on standard error instead (the code `usage` for an
    /// argument error). Returns the exit status.
    ///
    /// - Parameter root: The root command `arguments` were parsed with, whose usage a message shows.
    public static func report<Root: ParsableCommand>(_ error: any Error, arguments: [String], root: Root.Type) -> Int32 {
        let status = Root.exitCode(for: error)
        if arguments.contains("--json"), status != .success, !(error is ExitCode) {
            let failure = ReportedFailure(error) ?? ReportedFailure(unreported: Root.message(for: error), status: status.rawValue)
            return failure.print(json: true).rawValue
        }
        let message = Root.fullMessage(for: error)
        if !message.isEmpty {
            if status == .success { CommandOutput.print(message) } else { CommandOutput.printError(message) }
        }
        return status.rawValue
    }

    /// What an in-process run printed and returned.
    public struct Captured: Sendable {
        /// The exit status the process would have had.
        public var status: Int32
        /// What it wrote to standard output.
        public var stdout: String
        /// What it wrote to standard error.
        public var stderr: String
    }

    /// Runs the command `arguments` name, as ``main(arguments:)`` does, capturing its output
    /// (for tests and for programs that embed the admin commands).
    public static func captured(_ arguments: [String]) async -> Captured {
        let stdout = Mutex("")
        let stderr = Mutex("")
        let output = CommandOutput(
            standardOutput: { text in stdout.withLock { $0 += text } },
            standardError: { text in stderr.withLock { $0 += text } }
        )
        let status = await CommandOutput.$current.withValue(output) { await Self.main(arguments: arguments) }
        return Captured(status: status, stdout: stdout.withLock { $0 }, stderr: stderr.withLock { $0 })
    }
}
