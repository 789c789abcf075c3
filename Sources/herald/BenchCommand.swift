import ArgumentParser
import Foundation
import HeraldCore
import HeraldSQLite

/// `herald bench`: end-to-end throughput and latency of the embedded store.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput and latency of a store (SQLite by default, or PostgreSQL); prints one JSON line per run.",
        discussion: """
            Scenarios (build with -c release to measure):
              send-sequential   one sender, each send awaited before the next
              send-concurrent   --concurrency senders (64), each awaiting its
                                own sends; group commit shares the fsyncs
              receive-complete  pre-fill (batches of 100, not timed), then
                                --concurrency drainers (4) each receive up to
                                100 and complete them as one batch; several
                                drainers let group commit merge their commits
              end-to-end        --concurrency senders (64) and --receivers
                                receivers (4) at once
              all               the four, in this order

            Latency (p50Ms, p99Ms): per send in the send scenarios; in
            receive-complete the receive+complete time of the batch a message
            was in; in end-to-end from the send call to the receive that
            returned the message.

            receive-complete and end-to-end check that every message was
            received exactly once and fail otherwise. With --runs N, each run
            is printed, then a line with "median": true.
            """
    )

    @Option(help: "The scenario to run.")
    var scenario: BenchScenario = .all

    @Option(help: "Messages per run.")
    var messages: Int = 20_000

    @Option(help: "Body size in bytes.")
    var size: Int = 256

    @Option(help: "The database file to use and keep; by default a fresh temporary file per run, deleted afterwards.")
    var data: String?

    @Option(help: "Concurrent senders (send-concurrent: 64, end-to-end: 8) or drainers (receive-complete: 4).")
    var concurrency: Int?

    @Option(help: "Concurrent receivers in end-to-end.")
    var receivers: Int = 4

    @Option(help: "Runs per scenario; with more than one, a median line follows the runs.")
    var runs: Int = 1

    @Option(help: "The store: sqlite, or postgres (on --url).")
    var store: BenchStore = .sqlite

    @Option(help: "The PostgreSQL database URL --store postgres needs (postgres://user@host:port/database); each run uses a new schema and drops it.")
    var url: String?

    func validate() throws {
        guard self.messages >= 1 else { throw ValidationError("--messages must be at least 1") }
        guard EntityOptions.maxMessageSizeRange.contains(self.size) else {
            throw ValidationError("--size must lie in \(EntityOptions.maxMessageSizeRange)")
        }
        if let concurrency = self.concurrency, concurrency < 1 {
            throw ValidationError("--concurrency must be at least 1")
        }
        guard self.receivers >= 1 else { throw ValidationError("--receivers must be at least 1") }
        guard self.runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        switch (self.store, self.url) {
        case (.postgres, nil): throw ValidationError("--store postgres needs --url postgres://user@host:port/database")
        case (.sqlite, _?): throw ValidationError("--url goes with --store postgres")
        default: break
        }
    }

    func run() async throws {
        let scenarios = self.scenario == .all ? BenchScenario.measured : [self.scenario]
        for scenario in scenarios {
            var results: [BenchResult] = []
            for _ in 0..<self.runs {
                let settings = BenchSettings(
                    messages: self.messages,
                    size: self.size,
                    concurrency: self.concurrency ?? scenario.defaultConcurrency,
                    receivers: self.receivers
                )
                var result: BenchResult
                switch self.store {
                case .sqlite:
                    result = try await BenchDatabase.with(path: self.data) { broker in
                        try await Bench(broker: broker, settings: settings).run(scenario)
                    }
                case .postgres:
                    guard let url = self.url else { throw ValidationError("--store postgres needs --url") }
                    result = try await PostgresBenchDatabase.with(url: url) { broker in
                        try await Bench(broker: broker, settings: settings).run(scenario)
                    }
                    result.store = "postgres"
                }
                print(result.jsonLine(), terminator: "\n")
                results.append(result)
            }
            if self.runs > 1 {
                print(BenchResult.median(of: results).jsonLine(median: true), terminator: "\n")
            }
        }
    }
}

extension BenchScenario: ExpressibleByArgument {}

/// Opens the database a bench run uses: the user's file, or a fresh temporary one removed afterwards.
enum BenchDatabase {
    static func with<T>(path: String?, _ body: (any MessageBroker) async throws -> T) async throws -> T {
        let directory: URL?
        let file: String
        if let path {
            directory = nil
            file = path
        } else {
            let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("herald-bench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
            directory = temporary
            file = temporary.appendingPathComponent("herald.sqlite").path
        }
        defer {
            if let directory { try? FileManager.default.removeItem(at: directory) }
        }
        return try await SQLiteBroker.withBroker(path: file, body)
    }
}
