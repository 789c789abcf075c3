import ArgumentParser
import Foundation
import HeraldCore
import HeraldSQLite

/// `herald bench`: throughput and latency of a store: the embedded one, PostgreSQL, or a running server.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput and latency of a store (SQLite by default, PostgreSQL, or a server over HTTP); prints one JSON line per run.",
        discussion: """
            Scenarios (build with -c release to measure):
              send-sequential   one sender, each send awaited before the next
              send-concurrent   --concurrency senders (64), each awaiting its
                                own sends of --batch messages (1); group
                                commit shares the fsyncs
              receive-complete  pre-fill (batches of 100, not timed), then
                                --concurrency drainers (4) each receive up to
                                100 and complete them as one batch; several
                                drainers let group commit merge their commits
              end-to-end        --concurrency senders (64), each sending
                                --batch messages (1) per call, and
                                --receivers receivers (4) at once
              latency           light load: one sender, one receiver waiting
                                in a long poll (5 s); each message is sent
                                once the previous one was received and
                                completed
              handlers          the CQRS path: pre-fill (not timed), then a
                                MessageProcessor of --concurrency workers
                                (64) handles every command: it writes a
                                state document and publishes an event,
                                committed with the inbox record and the
                                completion in one transaction
              all               the six, in this order

            Latency (p50Ms, p99Ms): per send in the send scenarios; in
            receive-complete the receive+complete time of the batch a message
            was in; in end-to-end and latency from the send call to the
            receive that returned the message; in handlers from the receive
            that returned a command to the commit of its handling.

            Every scenario that receives checks that each message was
            received (handlers: left one document and one event) exactly once
            and fails otherwise. With --runs N, each run is printed, then a
            line with "median": true.

            Stores: sqlite (a temporary file, or --data), postgres (--url
            postgres://…; a new schema per run, dropped afterwards), http (a
            running `herald serve` at --url http://host:port, with --key or
            $HERALD_KEY; none for --insecure-local). Each run creates its own
            queue (and topic) and deletes it; handlers leaves its inbox records.
            """
    )

    @Option(help: "The scenario to run.")
    var scenario: BenchScenario = .all

    @Option(help: "Messages per run.")
    var messages: Int = 20_000

    @Option(help: "Body size in bytes.")
    var size: Int = 256

    @Option(help: "The database file to use and keep (--store sqlite); by default a fresh temporary file per run, deleted afterwards.")
    var data: String?

    @Option(help: "Concurrent senders (send-concurrent, end-to-end: 64), drainers (receive-complete: 4) or processor workers (handlers: 64).")
    var concurrency: Int?

    @Option(help: "Concurrent receivers in end-to-end.")
    var receivers: Int = 4

    @Option(help: "Messages per send call in send-concurrent and end-to-end (1 to 100).")
    var batch: Int = 1

    @Option(help: "Runs per scenario; with more than one, a median line follows the runs.")
    var runs: Int = 1

    @Option(help: "The store: sqlite, postgres (on --url), or http (a herald server at --url).")
    var store: BenchStore = .sqlite

    @Option(
        help:
            "The PostgreSQL database (--store postgres: postgres://user@host:port/database; each run uses a new schema and drops it) or the server (--store http: http://host:port)."
    )
    var url: String?

    @Option(help: "The server's API key for --store http (default: $HERALD_KEY; none for a server run with --insecure-local).")
    var key: String?

    func validate() throws {
        guard self.messages >= 1 else { throw ValidationError("--messages must be at least 1") }
        guard EntityOptions.maxMessageSizeRange.contains(self.size) else {
            throw ValidationError("--size must lie in \(EntityOptions.maxMessageSizeRange)")
        }
        if let concurrency = self.concurrency, concurrency < 1 {
            throw ValidationError("--concurrency must be at least 1")
        }
        guard self.receivers >= 1 else { throw ValidationError("--receivers must be at least 1") }
        guard (1...HeraldLimits.maxBatchCount).contains(self.batch) else {
            throw ValidationError("--batch must lie in 1...\(HeraldLimits.maxBatchCount)")
        }
        guard self.runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        switch (self.store, self.url) {
        case (.postgres, nil): throw ValidationError("--store postgres needs --url postgres://user@host:port/database")
        case (.http, nil): throw ValidationError("--store http needs --url http://host:port, the address of a running herald serve")
        case (.http, let url?):
            if let problem = HTTPBenchServer.validate(url: url) { throw ValidationError(problem) }
        case (.sqlite, _?): throw ValidationError("--url goes with --store postgres or --store http")
        default: break
        }
        if self.data != nil && self.store != .sqlite {
            throw ValidationError("--data goes with --store sqlite")
        }
        if self.key != nil && self.store != .http {
            throw ValidationError("--key goes with --store http")
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
                    receivers: self.receivers,
                    batch: self.batch
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
                case .http:
                    guard let url = self.url else { throw ValidationError("--store http needs --url") }
                    let key = self.key ?? ProcessInfo.processInfo.environment["HERALD_KEY"].flatMap { $0.isEmpty ? nil : $0 }
                    // Every sender and every waiting receiver holds a connection.
                    result = try await HTTPBenchServer.with(url: url, key: key, connections: settings.concurrency + settings.receivers) { broker in
                        try await Bench(broker: broker, settings: settings).run(scenario)
                    }
                }
                result.store = self.store.rawValue
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
