public import Foundation
import HeraldCore

/// A deterministic simulation of the embedded broker (issue 6).
///
/// One seed drives a random schedule of sends, receives, settlements, lock and session
/// renewals, clock moves, and crashes with restart, over the real `SQLiteBroker` whose file goes
/// through a storage fault layer that loses unsynced writes in a crash. After every operation
/// the simulator compares the broker's answer with a reference model, and regularly (and after
/// every restart) compares the whole store with it: the invariants of GUARANTEES.md §4.
///
/// ```swift
/// let report = try await Simulation.run(SimulationOptions(seed: 42, steps: 10_000))
/// print(report)
/// ```
///
/// A failing seed throws a ``SimulationFailure`` that names the seed, the step and the invariant,
/// with a one-line command that replays it.
public enum Simulation {
    /// Runs one seed.
    ///
    /// - Parameter options: the seed, the number of steps and where to put the files.
    /// - Returns: what the run did.
    /// - Throws: ``SimulationFailure`` when an invariant fails; other errors when the simulation
    ///   cannot be set up.
    public static func run(_ options: SimulationOptions) async throws -> SimulationReport {
        let simulator = try await Simulator(options: options)
        return try await simulator.run()
    }
}

/// What a simulation runs.
public struct SimulationOptions: Sendable {
    /// The seed: it fixes every choice of the run.
    public var seed: UInt64
    /// How many operations to run (sends, receives, settlements, clock moves, crashes...).
    public var steps: Int
    /// The directory the run's files go in (a directory per seed is made inside it and removed
    /// at the end).
    public var directory: String
    /// A deliberate bug to inject, to check that the simulation catches it.
    public var bug: SimulationBug
    /// How many steps pass between two full comparisons of the store with the model.
    public var auditInterval: Int
    /// Prints every operation (for replaying a failing seed).
    public var trace: Bool

    /// Creates options.
    ///
    /// - Parameters:
    ///   - seed: the seed of the run.
    ///   - steps: how many operations to run.
    ///   - directory: where the run's files go; the system's temporary directory by default.
    ///   - bug: a deliberate bug to inject; none by default.
    ///   - auditInterval: steps between full comparisons of the store with the model.
    ///   - trace: whether to print every operation.
    public init(
        seed: UInt64, steps: Int, directory: String = NSTemporaryDirectory(), bug: SimulationBug = .none,
        auditInterval: Int = 50, trace: Bool = false
    ) {
        self.seed = seed
        self.steps = steps
        self.directory = directory
        self.bug = bug
        self.auditInterval = auditInterval
        self.trace = trace
    }
}

/// A deliberate bug the simulation can inject into the store, to show that it is caught.
public struct SimulationBug: Hashable, Sendable, CustomStringConvertible {
    private enum Base: String, Hashable, Sendable {
        case none
        case skipWALSync = "skip-wal-sync"
        case skipEveryOtherWALSync = "skip-every-other-wal-sync"
        case completeExpiredLock = "complete-expired-lock"
    }

    private let base: Base

    private init(_ base: Base) { self.base = base }

    /// No bug: the store as built.
    public static let none = SimulationBug(.none)
    /// The store never syncs its WAL before acknowledging (the `fdatasync` is skipped).
    public static let skipWALSync = SimulationBug(.skipWALSync)
    /// The store skips every other WAL sync: a subtler missing fsync.
    public static let skipEveryOtherWALSync = SimulationBug(.skipEveryOtherWALSync)

    /// The store completes a message whose lock has expired (when no later delivery superseded
    /// it), so a receiver that was too slow can remove a message that is visible again.
    public static let completeExpiredLock = SimulationBug(.completeExpiredLock)

    /// Every bug, by name.
    public static let all: [SimulationBug] = [.none, .skipWALSync, .skipEveryOtherWALSync, .completeExpiredLock]

    /// The bug named `name` (as in ``description``), or `nil`.
    public init?(named name: String) {
        guard let base = Base(rawValue: name) else { return nil }
        self.base = base
    }

    /// The bug's name, as `herald simulate --bug` takes it.
    public var description: String { self.base.rawValue }
}

/// What one simulation run did.
public struct SimulationReport: Sendable, CustomStringConvertible {
    /// The seed.
    public var seed: UInt64
    /// Operations run.
    public var steps: Int
    /// Broker calls made (operations plus the audits' reads).
    public var brokerCalls: Int
    /// Crashes (at a chosen point or at an armed I/O event) followed by a restart.
    public var crashes: Int
    /// Crashes that left an operation's fate in doubt (it failed, and may or may not have committed).
    public var inDoubt: Int
    /// Of those, how many had committed.
    public var inDoubtCommitted: Int
    /// Full comparisons of the store with the model.
    public var audits: Int
    /// Writes the fault layer undid in crashes.
    public var undoneWrites: Int64
    /// Writes, truncations and syncs the fault layer saw.
    public var ioEvents: Int64
    /// A fingerprint of the schedule and of every answer: a replay of the seed must reproduce it.
    public var fingerprint: UInt64
    /// Wall time the run took (measured only to report speed; no decision depends on it).
    public var elapsed: Duration

    /// One line of figures.
    public var description: String {
        let seconds = max(self.elapsed.timeInterval, 1e-9)
        return "seed \(self.seed): \(self.steps) steps, \(self.brokerCalls) broker calls, \(self.crashes) crashes "
            + "(\(self.inDoubt) in doubt, \(self.inDoubtCommitted) committed), \(self.audits) audits, "
            + "\(self.undoneWrites) unsynced writes undone, \(self.ioEvents) I/O events, fingerprint \(String(self.fingerprint, radix: 16)), "
            + String(format: "%.2f s, %.0f steps/s", seconds, Double(self.steps) / seconds)
    }
}

/// An invariant that failed, with what it takes to replay it.
public struct SimulationFailure: Error, CustomStringConvertible {
    /// The failing seed.
    public var seed: UInt64
    /// The number of steps the run was asked for.
    public var steps: Int
    /// The step at which the failure was found (1-based).
    public var step: Int
    /// The invariant that failed, e.g. "acknowledged message lost".
    public var invariant: String
    /// What was expected and what was found.
    public var detail: String
    /// The injected bug, if any.
    public var bug: SimulationBug
    /// The last operations before the failure.
    public var recentOperations: [String]

    /// The command that replays the failure.
    public var replayCommand: String {
        "herald simulate --seed \(self.seed) --steps \(self.steps)" + (self.bug == .none ? "" : " --bug \(self.bug)") + " --trace"
    }

    /// The failure, with the seed, the invariant and the replay command.
    public var description: String {
        var text = "SIMULATION FAILED: seed \(self.seed), step \(self.step): \(self.invariant)\n  \(self.detail)\n"
        if !self.recentOperations.isEmpty {
            text += "  last operations:\n" + self.recentOperations.map { "    \($0)" }.joined(separator: "\n") + "\n"
        }
        text += "  replay: \(self.replayCommand)"
        return text
    }
}
