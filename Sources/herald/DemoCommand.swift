import ArgumentParser
import ConferenceDemo
import Foundation

/// `herald demo`: the conference registration of the CQRS Journey on the embedded store, under
/// chaos, ending with a report that checks every guarantee.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the conference-registration demo under chaos and check every guarantee.",
        discussion: """
            Registrants order 1 to 4 seats each. An Order and a SeatsAvailability aggregate (event-sourced), a Payment aggregate and a registration process manager with a reservation timeout take each order to confirmed or expired, and a projection keeps order summaries. With --chaos (the default) the run also sends duplicates within and after the duplicate-detection window, crashes handlers, stalls a handler past its lock, delivers event pairs swapped, and sends a few poison messages.

            The report ends with "all guarantees held" (exit 0) or the list of those that failed (exit 1).
            """
    )

    @Option(help: "Orders to place.")
    var orders: Int = 1000

    @Option(help: "The conference's capacity in seats (default: 80% of the seats the orders ask for).")
    var seats: Int?

    @Flag(inversion: .prefixedNo, help: "Inject duplicates, crashes, lock expiries, reordered events and poison messages.")
    var chaos: Bool = true

    @Option(help: "The seed of the orders, the registrants and the chaos; the same seed makes the same decisions.")
    var seed: UInt64 = 42

    @Option(help: "The database file to create and keep (default: a temporary file, deleted afterwards).")
    var data: String?

    @Option(help: "Seconds a reservation waits for its payment.")
    var timeout: Int = 10

    func validate() throws {
        guard self.orders >= 1 else { throw ValidationError("--orders must be at least 1") }
        if let seats = self.seats, seats < 0 { throw ValidationError("--seats cannot be negative") }
        guard self.timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second") }
        if let data = self.data, FileManager.default.fileExists(atPath: data) {
            throw ValidationError("\(data) exists; --data takes the path of a new database file")
        }
    }

    func run() async throws {
        let options = DemoOptions(
            orders: self.orders, seats: self.seats, chaos: self.chaos, seed: self.seed, dataPath: self.data,
            reservationTimeout: .seconds(self.timeout)
        )
        let report = try await ConferenceDemo.run(options) { line in print(line) }
        print(report.render())
        if !report.allHeld { throw ExitCode.failure }
    }
}
