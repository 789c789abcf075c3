import Foundation
import HeraldPostgresTesting
import HeraldTestSupport
import Testing

/// The README's examples (`Examples/`), run as the programs they are: each must exit 0 and print
/// what its walkthrough says it does.
@Suite(.timeLimit(.minutes(2)))
struct ExamplesTests {
    @Test func firstQueueSendsReceivesAndSeesTheDuplicateOnASecondRun() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }

        let first = try await Self.run("FirstQueue", in: folder)
        #expect(first == "sent order-42: sequence number 1\nreceived PlaceOrder: {\"sku\":\"A1\",\"quantity\":2}\n")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("herald.sqlite").path))

        // The same database again: the queue exists, and order-42 is within its duplicate window.
        let second = try await Self.run("FirstQueue", in: folder)
        #expect(second == "sent order-42: sequence number 1, a duplicate\n")
    }

    @Test func registrationsPlacesTheOrderAndRunsTheProcessOnTheSubscription() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }

        let output = try await Self.run("Registrations", in: folder)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.contains("order o-1: placed for 2 seats"))
        #expect(lines.contains("registration o-1: asked for 2 seats, expires in 15 minutes unless paid"))
        #expect(
            lines.suffix(2) == [
                "handled: 1 command, 1 event",
                "waiting: 1 seat reservation for the seats service, 1 scheduled timeout",
            ])
    }

    @Test func postgresQueueSendsAndReceivesOnTheThrowawayServer() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = try await ThrowawayPostgres.sharedURL()

        let output = try await Self.run("PostgresQueue", in: folder, environment: ["HERALD_POSTGRES_URL": url])
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("sent: sequence number ") == true)
        #expect(lines.contains("received: hello"))
    }

    private static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("herald-example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Runs the example executable `name` in `folder`; returns its standard output once it exited 0.
    private static func run(_ name: String, in folder: URL, environment: [String: String] = [:]) async throws -> String {
        let executable = try #require(HeraldExecutable.url(named: name), "the \(name) example is built with the tests (run `swift build`)")
        let process = try ChildProcess(
            executable, [], currentDirectory: folder, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        let termination = await process.waitForExit(timeout: .seconds(60))
        let stdout = process.standardOutput
        let stderr = process.standardError
        #expect(termination != nil, "\(name) ran longer than 60 s; it printed: \(stdout) \(stderr)")
        #expect(termination == .exited(0), "\(name) ended with \(String(describing: termination)): \(stderr)")
        return stdout
    }
}
