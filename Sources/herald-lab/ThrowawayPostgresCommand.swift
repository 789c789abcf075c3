import ArgumentParser
import Foundation
import HeraldPostgresTesting
import UnixSignals

/// `herald-lab postgres`: starts a throwaway PostgreSQL server (initdb in a temporary folder, a
/// free port on 127.0.0.1), prints its URL and keeps it running until interrupted, e.g. for
/// `herald bench --store postgres --url URL` or `herald serve --postgres URL`.
struct ThrowawayPostgresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Start a throwaway PostgreSQL server, print its URL, stop it on Ctrl-C or SIGTERM."
    )

    func run() async throws {
        let server = try await ThrowawayPostgres.start()
        defer { server.stop() }
        FileHandle.standardOutput.write(Data("\(server.url)\n".utf8))
        for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { break }
    }
}
