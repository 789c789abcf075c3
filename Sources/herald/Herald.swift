import ArgumentParser
import Foundation
import HeraldCLI

/// The `herald` executable: parsing and wiring only; each command's logic lives in its own file.
@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald: reliable messaging for CQRS and event-sourced systems.",
        subcommands: [
            BenchCommand.self, DemoCommand.self, ServeCommand.self, KeysCommand.self,
            QueueCommand.self, TopicCommand.self, SubscriptionCommand.self, SendCommand.self, ReceiveCommand.self, PeekCommand.self,
            DeadLetterCommand.self, SessionCommand.self, MessageCommand.self, PurgeCommand.self, CancelScheduledCommand.self, TailCommand.self,
            ExportCommand.self, ImportCommand.self, StatsCommand.self, SimulateCommand.self,
        ]
    )

    /// Runs the command the arguments name; reports a failure as ArgumentParser does, or with
    /// `--json` as a JSON error object (``HeraldCLI/HeraldAdmin/report(_:arguments:root:)``).
    static func main() async {
        let status = await HeraldAdmin.run(Self.self, arguments: Array(CommandLine.arguments.dropFirst()))
        if status != 0 { Foundation.exit(status) }
    }
}
