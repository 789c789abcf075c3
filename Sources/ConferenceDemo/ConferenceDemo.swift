import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import Logging
import Synchronization

/// How `herald demo` runs.
public struct DemoOptions: Sendable, Hashable {
    /// Orders to place.
    public var orders: Int
    /// The conference's capacity; `nil`: 80% of the seats the orders ask for, so some orders find none left.
    public var seats: Int?
    /// Whether to inject failures.
    public var chaos: Bool
    /// The seed of the orders, the registrants' choices and the chaos.
    public var seed: UInt64
    /// The database file to create and keep; `nil`: a temporary one, deleted afterwards.
    public var dataPath: String?
    /// How long a reservation waits for its payment.
    public var reservationTimeout: Duration
    /// Orders in flight at once (placed, not yet confirmed or expired).
    public var maxOpenOrders: Int
    /// When to give up waiting for the run to settle.
    public var timeLimit: Duration

    /// Creates options; the defaults are those of `herald demo`.
    public init(
        orders: Int = 1000, seats: Int? = nil, chaos: Bool = true, seed: UInt64 = 42, dataPath: String? = nil,
        reservationTimeout: Duration = .seconds(10), maxOpenOrders: Int = 100, timeLimit: Duration = .seconds(180)
    ) {
        self.orders = orders
        self.seats = seats
        self.chaos = chaos
        self.seed = seed
        self.dataPath = dataPath
        self.reservationTimeout = reservationTimeout
        self.maxOpenOrders = maxOpenOrders
        self.timeLimit = timeLimit
    }
}

/// The error of a demo that could not run.
public struct DemoError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let description: String
}

/// The conference registration of the CQRS Journey on the embedded store, under chaos, with a
/// report that checks every guarantee (`herald demo`).
public enum ConferenceDemo {
    /// Runs the demo in real time and returns its report.
    ///
    /// - Parameters:
    ///   - options: What to run.
    ///   - output: Where progress lines go (about one a second).
    /// - Returns: The report; ``DemoReport/allHeld`` tells whether every guarantee held.
    /// - Throws: ``DemoError`` when the database cannot be set up, or the store's error when it fails.
    public static func run(_ options: DemoOptions, output: @Sendable (String) -> Void) async throws -> DemoReport {
        let started = ContinuousClock.now
        let temporary: URL?
        let path: String
        if let dataPath = options.dataPath {
            guard !FileManager.default.fileExists(atPath: dataPath) else {
                throw DemoError(description: "\(dataPath) exists; --data takes the path of a new database file")
            }
            temporary = nil
            path = dataPath
        } else {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-demo-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            temporary = directory
            path = directory.appendingPathComponent("herald.sqlite").path
        }
        defer { if let temporary { try? FileManager.default.removeItem(at: temporary) } }

        var logger = Logger(label: "herald.demo")
        logger.logLevel = .error
        let clock = SystemBrokerClock()
        return try await SQLiteBroker.withBroker(path: path, configuration: SQLiteBroker.Configuration(clock: clock, logger: logger)) { broker in
            try await Self.run(
                options, broker: broker, clock: clock, logger: logger, path: path, temporary: temporary != nil, started: started,
                output: output
            )
        }
    }

    private static func run(
        _ options: DemoOptions, broker: SQLiteBroker, clock: SystemBrokerClock, logger: Logger, path: String, temporary: Bool,
        started: ContinuousClock.Instant, output: @Sendable (String) -> Void
    ) async throws -> DemoReport {
        let orders = DemoOrder.generate(count: options.orders, seed: options.seed)
        let demand = orders.reduce(0) { $0 + $1.seats }
        let capacity = options.seats ?? demand * 8 / 10
        var chaosSettings = options.chaos ? ChaosSettings(seed: options.seed) : .off
        chaosSettings.maxStalls = max(2, options.orders / 200)
        let chaos = Chaos(settings: chaosSettings)
        let settings = ConferenceSettings(reservationTimeout: options.reservationTimeout, seed: options.seed)
        let system = ConferenceSystem(store: broker, clock: clock, settings: settings, chaos: chaos, logger: logger)
        try await system.createEntities()
        try await system.addSeats(capacity)

        output("Herald demo: the conference registration of the CQRS Journey on the embedded SQLite store")
        output("  database      \(path)\(temporary ? " (temporary, deleted at the end)" : "")")
        output("  orders        \(options.orders) asking for \(demand) seats; capacity \(capacity) seats")
        output("  timeout       a reservation waits \(Format.duration(options.reservationTimeout)) for its payment")
        output(
            options.chaos
                ? "  chaos         on (seed \(options.seed)): duplicate sends, handler crashes, lock expiries, reordered events, poison messages"
                : "  chaos         off"
        )

        let processors = system.makeProcessors(realTime: true)
        let expectedDeadLetters = try await chaos.sendPoison(to: broker)
        let runner = ProjectionRunner(broker: broker, projection: system.projection)
        let runStarted = ContinuousClock.now
        var timedOut = false
        let failure = FirstFailure()

        try await withThrowingTaskGroup(of: Void.self) { group in
            for (source, processor) in processors {
                group.addTask {
                    do {
                        try await processor.run()
                    } catch {
                        // A processor stops only when the store failed: end the run with it.
                        failure.record(DemoError(description: "the processor of \(source) stopped: \(error)"))
                    }
                }
            }
            defer { for (_, processor) in processors { processor.stop() } }

            var next = 0
            var lastHousekeeping = ContinuousClock.now
            var lastProgress = ContinuousClock.now
            while true {
                if let error = failure.error { throw error }
                var progress = system.projection.progress
                while next < orders.count && next - progress.confirmed - progress.expired < options.maxOpenOrders {
                    try await system.register(orderId: orders[next].orderId, seats: orders[next].seats)
                    next += 1
                    progress = system.projection.progress
                }
                let now = ContinuousClock.now
                if now - lastHousekeeping >= .milliseconds(100) {
                    lastHousekeeping = now
                    do {
                        try await runner.catchUp()
                    } catch let error as HeraldError where error.code == .storeFailed || error.code == .storeClosed {
                        throw error
                    } catch {
                        try await system.projection.reset()
                    }
                    try await chaos.tick(store: broker, now: clock.now())
                }
                if now - lastProgress >= .seconds(1) {
                    lastProgress = now
                    output(Self.progressLine(elapsed: now - runStarted, placed: next, total: orders.count, system: system, processors: processors))
                }
                progress = system.projection.progress
                if next == orders.count && progress.confirmed + progress.expired >= orders.count && chaos.pendingResends == 0 {
                    var idle = true
                    for entity in ConferenceEntities.receivable {
                        var counts = try await broker.counts(of: entity)
                        counts.deadLettered = 0
                        if counts != EntityCounts() { idle = false }
                    }
                    if idle { break }
                }
                if now - started > options.timeLimit {
                    timedOut = true
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            for (_, processor) in processors { processor.stop() }
            try await group.waitForAll()
        }
        let wallTime = ContinuousClock.now - runStarted
        try await runner.catchUp()
        output(Self.progressLine(elapsed: wallTime, placed: orders.count, total: orders.count, system: system, processors: processors))

        let audit = try await DemoAudit.collect(system: system, orders: orders, processors: processors, expectedDeadLetters: expectedDeadLetters)
        var guarantees = GuaranteeChecker.check(audit)
        if timedOut {
            guarantees.append(
                Guarantee(name: "the run settled in time", held: false, detail: "still busy after \(Format.duration(options.timeLimit))")
            )
        }
        return DemoReport(audit: audit, guarantees: guarantees, capacity: capacity, demand: demand, wallTime: wallTime, options: options)
    }

    private static func progressLine(
        elapsed: Duration, placed: Int, total: Int, system: ConferenceSystem, processors: [(source: EntityPath, processor: MessageProcessor)]
    ) -> String {
        let progress = system.projection.progress
        var handled = 0
        var retries = 0
        var duplicates = 0
        for (_, processor) in processors {
            let stats = processor.statistics
            handled += stats.handled
            retries += stats.retries
            duplicates += stats.duplicatesSuppressed
        }
        let seconds = max(elapsed.timeInterval, 0.001)
        let open = placed - progress.confirmed - progress.expired
        return "[\(Format.pad(String(format: "%.1f", seconds), 5))s] placed \(Format.pad(placed, 5))/\(total)"
            + "  confirmed \(Format.pad(progress.confirmed, 5))  expired \(Format.pad(progress.expired, 4))  open \(Format.pad(open, 3))"
            + "  handled \(Format.pad(handled, 6)) msgs (\(Int(Double(handled) / seconds))/s)  retries \(retries)  inbox dups \(duplicates)"
    }
}

/// The first error of the demo's background tasks.
final class FirstFailure: Sendable {
    private let first = Mutex<DemoError?>(nil)

    var error: DemoError? { self.first.withLock { $0 } }

    func record(_ error: DemoError) {
        self.first.withLock { $0 = $0 ?? error }
    }
}

/// Number formatting for the demo's output.
enum Format {
    static func pad(_ value: Int, _ width: Int) -> String { pad(String(value), width) }

    static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    static func duration(_ duration: Duration) -> String {
        let seconds = duration.timeInterval
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
    }
}
