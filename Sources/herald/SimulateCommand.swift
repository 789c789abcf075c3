import ArgumentParser
import Foundation
import HeraldSimulation

/// `herald simulate`: the deterministic simulator of the embedded store (issue 6).
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic simulator of the SQLite store: random operations, clock jumps and crashes, checked against a model.",
        discussion: """
            Each seed fixes a schedule of sends, receives, settlements, lock and session renewals,
            clock moves and crashes (a storage fault layer drops every write not yet fsynced).
            After every operation the broker's answer is compared with a model, and the whole store
            regularly and after every restart: GUARANTEES.md §4's invariants. A failing seed prints a
            one-line command that replays it.

            Examples:
              herald simulate --seed 7 --steps 20000
              herald simulate --seeds 1..100 --steps 10000 --jobs 2
              herald simulate --seed-count 20 --bug skip-wal-sync      (must fail)
            """
    )

    @Option(help: "Run this one seed.")
    var seed: UInt64?

    @Option(help: "Run a range of seeds, as A..B (inclusive).")
    var seeds: String?

    @Option(help: "Run seeds 1 through N.")
    var seedCount: Int?

    @Option(help: "Operations per seed.")
    var steps: Int = 10_000

    @Option(help: "Seeds run at once (each has its own files; the result of a seed does not depend on it).")
    var jobs: Int = 1

    @Option(help: "Inject a deliberate bug to check it is caught: \(SimulationBug.all.map(\.description).joined(separator: ", ")).")
    var bug: String = "none"

    @Option(help: "Steps between two full comparisons of the store with the model.")
    var auditInterval: Int = 50

    @Option(help: "Where the simulation's files go (a directory per seed, removed afterwards).")
    var directory: String = NSTemporaryDirectory()

    @Flag(help: "Print every operation.")
    var trace = false

    @Flag(help: "Go on with the next seeds after a failure.")
    var keepGoing = false

    func run() async throws {
        guard let bug = SimulationBug(named: self.bug) else {
            throw ValidationError("unknown bug '\(self.bug)'; one of \(SimulationBug.all.map(\.description).joined(separator: ", "))")
        }
        let seeds = try self.seedList()
        let started = ContinuousClock.now
        var totalSteps = 0
        var failures: [SimulationFailure] = []
        var crashes = 0
        var inDoubt = 0
        let options = seeds.map {
            SimulationOptions(seed: $0, steps: self.steps, directory: self.directory, bug: bug, auditInterval: self.auditInterval, trace: self.trace)
        }
        var next = 0
        try await withThrowingTaskGroup(of: Result<SimulationReport, SimulationFailure>.self) { group in
            func startNext() -> Bool {
                guard next < options.count else { return false }
                let option = options[next]
                next += 1
                group.addTask {
                    do {
                        return .success(try await Simulation.run(option))
                    } catch let failure as SimulationFailure {
                        return .failure(failure)
                    }
                }
                return true
            }
            for _ in 0..<max(1, self.jobs) where !startNext() { break }
            while let result = try await group.next() {
                switch result {
                case .success(let report):
                    totalSteps += report.steps
                    crashes += report.crashes
                    inDoubt += report.inDoubt
                    print(report)
                case .failure(let failure):
                    print(failure)
                    failures.append(failure)
                    if !self.keepGoing {
                        group.cancelAll()
                        next = options.count
                    }
                }
                _ = startNext()
            }
        }
        let elapsed = (ContinuousClock.now - started)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(
            "simulated \(seeds.count - failures.count) of \(seeds.count) seeds passing, \(totalSteps) steps, \(crashes) crashes (\(inDoubt) in doubt) in "
                + String(format: "%.1f s (%.0f steps/s)", seconds, Double(totalSteps) / max(seconds, 1e-9))
        )
        if !failures.isEmpty {
            print("FAILED seeds: \(failures.map { String($0.seed) }.joined(separator: " "))")
            throw ExitCode.failure
        }
    }

    private func seedList() throws -> [UInt64] {
        if let seed { return [seed] }
        if let seeds {
            let parts = seeds.components(separatedBy: "..")
            guard parts.count == 2, let low = UInt64(parts[0]), let high = UInt64(parts[1]), low <= high else {
                throw ValidationError("--seeds takes A..B, e.g. 1..100")
            }
            return Array(low...high)
        }
        if let seedCount {
            guard seedCount >= 1 else { throw ValidationError("--seed-count must be at least 1") }
            return Array(1...UInt64(seedCount))
        }
        return [1]
    }
}
