import ArgumentParser

/// `herald-lab`: the machinery Herald's own tests drive, kept out of the shipped `herald`: the
/// crash campaign, the crash and PostgreSQL worker processes, and a throwaway PostgreSQL server.
@main
struct HeraldLab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-lab",
        abstract: "Herald's test machinery: crash campaigns, worker processes, a throwaway PostgreSQL.",
        subcommands: [CrashCampaignCommand.self, CrashWorkerCommand.self, PostgresWorkerCommand.self, ThrowawayPostgresCommand.self]
    )
}
