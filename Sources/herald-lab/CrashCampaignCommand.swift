import ArgumentParser
import Foundation
import HeraldPostgresTesting

/// The store a crash campaign runs `herald serve` on.
enum CampaignStore: String, ExpressibleByArgument, Sendable {
    case sqlite
    case postgres
}

/// `herald-lab crash-campaign`: the Jepsen-style crash campaign of ``CrashCampaign`` against real
/// `herald serve` processes, on the embedded store or on PostgreSQL.
struct CrashCampaignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-campaign",
        abstract: "Kill a loaded `herald serve` again and again, then check that no acknowledged message was lost.",
        discussion: """
            Each round starts `herald serve` on the same store, runs concurrent senders and peek-lock \
            receivers over HTTP, and kills the server with SIGKILL after 0.3–2 s; every --pause-every-th \
            round the server is first paused with SIGSTOP for longer than the lock duration. Sends whose \
            outcome is unknown are retried with the same message id (the queue's duplicate detection \
            absorbs them). After the last round the queue is drained and the history checked: lost, \
            duplicated, resurrected and unexpected messages. Exits 1 on any such anomaly.
            """
    )

    @Option(help: "The store: sqlite or postgres.")
    var store: CampaignStore = .sqlite

    @Option(help: "The number of SIGKILL rounds.")
    var rounds: Int = 100

    @Option(help: "The seed of the kill timings (random by default).")
    var seed: UInt64?

    @Option(help: "With --store postgres, the database (else a throwaway server): postgres://user:password@host:port/database.")
    var url: String?

    @Option(help: "Concurrent senders.")
    var senders: Int = 8

    @Option(help: "Concurrent receivers.")
    var receivers: Int = 4

    @Option(help: "Pause the server with SIGSTOP before killing it every this many rounds (0: never).")
    var pauseEvery: Int = 10

    @Option(help: "Also write the report to this file.")
    var report: String?

    func validate() throws {
        guard self.rounds > 0 else { throw ValidationError("--rounds must be positive") }
        guard self.senders > 0, self.receivers > 0 else { throw ValidationError("--senders and --receivers must be positive") }
        guard self.pauseEvery >= 0 else { throw ValidationError("--pause-every must be 0 or more") }
        if self.url != nil && self.store != .postgres { throw ValidationError("--url goes with --store postgres") }
    }

    func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("herald-crash-campaign-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let seed = self.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        var throwaway: ThrowawayPostgres?
        defer { throwaway?.stop() }
        let storeArguments: [String]
        switch self.store {
        case .sqlite:
            storeArguments = ["--data", folder.appendingPathComponent("data").path]
        case .postgres:
            if let url = self.url {
                storeArguments = ["--postgres", url]
            } else {
                let server = try await ThrowawayPostgres.start()
                throwaway = server
                storeArguments = ["--postgres", server.url]
            }
        }
        let campaign = CrashCampaign(
            configuration: .init(
                storeArguments: storeArguments, rounds: self.rounds, seed: seed, senders: self.senders, receivers: self.receivers,
                pauseEvery: self.pauseEvery, folder: folder
            )
        )
        let outcome = try await campaign.run { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let text = self.reportText(outcome, seed: seed, folder: folder)
        FileHandle.standardOutput.write(Data(text.utf8))
        if let report = self.report {
            try text.write(toFile: report, atomically: true, encoding: .utf8)
        }
        guard outcome.report.isValid else { throw ExitCode.failure }
        try? FileManager.default.removeItem(at: folder)
    }

    /// The report: the campaign's parameters, the checker's figures and the verdict.
    private func reportText(_ outcome: CrashCampaign.Outcome, seed: UInt64, folder: URL) -> String {
        let seconds = Double(outcome.elapsed.components.seconds) + Double(outcome.elapsed.components.attoseconds) / 1e18
        var lines = [
            "herald-lab crash-campaign --store \(self.store.rawValue) --rounds \(self.rounds) --seed \(seed) "
                + "--senders \(self.senders) --receivers \(self.receivers) --pause-every \(self.pauseEvery)",
            "rounds: \(self.rounds), SIGKILLs: \(outcome.kills), SIGSTOP pauses past the lock duration: \(outcome.pauses)",
        ]
        lines += outcome.report.lines
        lines.append("time: \(String(format: "%.1f", seconds)) s")
        lines.append(outcome.report.isValid ? "result: OK" : "result: FAILED (server logs kept in \(folder.path))")
        return lines.joined(separator: "\n") + "\n"
    }
}
