import Foundation
import HeraldCore
import HeraldSQLite
import Logging
import Synchronization

/// Runs one seed: drives the real broker one awaited operation at a time, so the seed alone
/// decides the order of everything, and checks each answer against ``BrokerModel``.
final class Simulator {
    let options: SimulationOptions
    var random: SimulationRandom
    let storage: FaultStorage
    private let path: String
    let clock = ManualBrokerClock()
    var broker: SQLiteBroker
    var model = BrokerModel()
    var step = 0
    var report: SimulationReport
    var recent: [String] = []
    var isArmed = false

    /// Deliveries a simulated receiver holds (some stale: expired, superseded, or from before a restart).
    var held: [LockToken] = []
    /// Session locks simulated receivers hold (some stale).
    var sessions: [SessionLock] = []
    /// Message ids recently sent, per target, for duplicate sends.
    var recentIds: [String: [String]] = [:]
    var counter = 0
    /// The highest delivery count seen per message, to check that it never decreases.
    var seenDeliveryCounts: [String: Int] = [:]

    static let work = EntityPath.queue("work")
    static let orders = EntityPath.queue("orders")
    static let events = EntityPath.topic("events")
    static let all = EntityPath.subscription("all", of: "events")
    static let odd = EntityPath.subscription("odd", of: "events")
    static let sessionIds = ["s0", "s1", "s2", "s3"]
    static let maxBodySize = 1024
    /// The longest delay an abandon asks for.
    static let maxAbandonDelayMilliseconds = 10_000
    static let dummyNonce = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    init(options: SimulationOptions) async throws {
        self.options = options
        self.random = SimulationRandom(seed: options.seed)
        let unique = "\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        self.storage = try FaultStorage(directory: (options.directory as NSString).appendingPathComponent("herald-sim-\(options.seed)-\(unique)"))
        self.path = self.storage.directory + "herald.sqlite"
        self.report = SimulationReport(
            seed: options.seed, steps: 0, brokerCalls: 0, crashes: 0, inDoubt: 0, inDoubtCommitted: 0, audits: 0,
            undoneWrites: 0, ioEvents: 0, fingerprint: 0xCBF2_9CE4_8422_2325, elapsed: .zero
        )
        self.broker = try SQLiteBroker.running(path: self.path, configuration: Self.configuration(self.clock, self.storage, options.bug))
        try await self.createEntities()
    }

    private static func configuration(_ clock: ManualBrokerClock, _ storage: FaultStorage, _ bug: SimulationBug) -> SQLiteBroker.Configuration {
        var configuration = SQLiteBroker.Configuration(clock: clock, logger: Logger(label: "herald.simulation", factory: { _ in SwiftLogNoOpLogHandler() }))
        configuration._vfsName = FaultStorage.vfsName
        // No free-space watermark: the simulated disk never fills, and measuring the real one (at
        // wall-clock intervals, through the writer) would make a replay differ from its run.
        configuration.minimumFreeDiskBytes = 0
        if bug == .completeExpiredLock {
            // `complete` then compares lock expiries with the beginning of time: an expired lock still settles.
            configuration._completionLockTime = { _ in .min }
        }
        let syncs = SyncCounter()
        configuration._syncWAL = { path in
            let count = syncs.next()
            switch bug {
            case .skipWALSync: return
            case .skipEveryOtherWALSync where count % 2 == 0: return
            default: try storage.sync(path)
            }
        }
        return configuration
    }

    private func createEntities() async throws {
        // The options vary by seed, within the bounds GUARANTEES.md §2 allows.
        let work = EntityOptions(
            lockDuration: .seconds(self.random.int(1...8)), maxDeliveryCount: self.random.int(1...4),
            duplicateDetectionWindow: .seconds(self.random.int(5...30)), maxMessageSize: Self.maxBodySize
        )
        let orders = EntityOptions(lockDuration: .seconds(self.random.int(2...8)), maxDeliveryCount: self.random.int(1...4), requiresSession: true)
        let events = EntityOptions(duplicateDetectionWindow: .seconds(self.random.int(5...30)))
        let all = EntityOptions(
            lockDuration: .seconds(self.random.int(1...8)), maxDeliveryCount: self.random.int(1...4),
            defaultTimeToLive: .seconds(self.random.int(10...60)), deadLetterOnExpiration: false
        )
        let odd = EntityOptions(lockDuration: .seconds(self.random.int(1...8)), maxDeliveryCount: self.random.int(2...5))
        let oddFilter = SubscriptionFilter(subject: "odd")
        try await self.broker.createQueue(Self.work.name, options: work)
        try await self.broker.createQueue(Self.orders.name, options: orders)
        try await self.broker.createTopic(Self.events.name, options: events)
        try await self.broker.createSubscription(Self.all.name, topic: Self.events.name, options: all, filter: .all)
        try await self.broker.createSubscription(Self.odd.name, topic: Self.events.name, options: odd, filter: oddFilter)
        self.model.addEntity(Self.work, options: work)
        self.model.addEntity(Self.orders, options: orders)
        self.model.addEntity(Self.events, options: events)
        self.model.addEntity(Self.all, options: all)
        self.model.addEntity(Self.odd, options: odd, filter: oddFilter)
    }

    // MARK: Running

    func run() async throws -> SimulationReport {
        let started = ContinuousClock.now
        do {
            while self.step < self.options.steps {
                self.step += 1
                try await self.runStep()
                if !self.isArmed && self.step % self.options.auditInterval == 0 {
                    try await self.audit(against: [self.model], afterRestart: false)
                }
            }
            if self.isArmed {
                self.storage.disarm()
                self.isArmed = false
            }
            try await self.audit(against: [self.model], afterRestart: false)
        } catch {
            await self.broker.close()
            self.storage.remove()
            throw error
        }
        await self.broker.close()
        let stats = self.storage.stats
        self.storage.remove()
        self.report.steps = self.step
        self.report.undoneWrites = stats.undoneWrites
        self.report.ioEvents = stats.events
        self.report.elapsed = ContinuousClock.now - started
        return self.report
    }

    private enum Action: CaseIterable {
        case sendWork, sendOrders, publish
        case receive, receiveAndDelete, receiveDeadLetters, receiveDeferred
        case complete, abandon, deferMessage, deadLetter, renewLock, resubmit, cancelScheduled, cancelScheduledOnTopic
        case acceptSession, receiveSession, receiveSessionDeferred, renewSession, releaseSession, sessionState
        case advanceClock, advanceClockFar, jumpWallClock
        case crash, armCrash

        var weight: Int {
            switch self {
            case .sendWork: 140
            case .sendOrders: 80
            case .publish: 80
            case .receive: 150
            case .receiveAndDelete: 8
            case .receiveDeadLetters: 25
            case .receiveDeferred: 20
            case .complete: 130
            case .abandon: 50
            case .deferMessage: 20
            case .deadLetter: 20
            case .renewLock: 30
            case .resubmit: 20
            case .cancelScheduled: 10
            case .cancelScheduledOnTopic: 8
            case .acceptSession: 50
            case .receiveSession: 60
            case .receiveSessionDeferred: 15
            case .renewSession: 20
            case .releaseSession: 20
            case .sessionState: 20
            case .advanceClock: 100
            case .advanceClockFar: 15
            case .jumpWallClock: 8
            case .crash: 3
            case .armCrash: 5
            }
        }

        static let totalWeight = Action.allCases.reduce(0) { $0 + $1.weight }
    }

    private func chooseAction() -> Action {
        var roll = self.random.int(0...(Action.totalWeight - 1))
        for action in Action.allCases {
            if roll < action.weight { return action }
            roll -= action.weight
        }
        return .advanceClock
    }

    private func runStep() async throws {
        switch self.chooseAction() {
        case .sendWork: try await self.send(to: Self.work)
        case .sendOrders: try await self.send(to: Self.orders)
        case .publish: try await self.send(to: Self.events)
        case .receive: try await self.receive(mode: .peekLock, from: self.random.pick([Self.work, Self.all, Self.odd])!)
        case .receiveAndDelete: try await self.receive(mode: .receiveAndDelete, from: self.random.pick([Self.work, Self.all, Self.odd])!)
        case .receiveDeadLetters:
            try await self.receive(mode: .peekLock, from: self.random.pick([Self.work, Self.orders, Self.all, Self.odd])!.deadLetter)
        case .receiveDeferred: try await self.receiveDeferred()
        case .complete: try await self.complete()
        case .abandon, .deferMessage, .deadLetter, .renewLock, .resubmit: try await self.settle(self.chooseSettlement())
        case .cancelScheduled: try await self.cancelScheduled()
        case .cancelScheduledOnTopic: try await self.cancelScheduledOnTopic()
        case .acceptSession: try await self.acceptSession()
        case .receiveSession: try await self.receiveSession()
        case .receiveSessionDeferred: try await self.receiveSessionDeferred()
        case .renewSession: try await self.renewSession()
        case .releaseSession: try await self.releaseSession()
        case .sessionState: try await self.sessionState()
        case .advanceClock:
            let duration = Duration.milliseconds(self.random.int(50...3000))
            self.log("advance \(duration)")
            self.clock.advance(by: duration)
        case .advanceClockFar:
            let duration = Duration.seconds(self.random.int(4...40))
            self.log("advance \(duration)")
            self.clock.advance(by: duration)
        case .jumpWallClock:
            let duration = Duration.seconds(self.random.int(-30...30))
            self.log("jump wall clock \(duration)")
            self.clock.jumpWallClock(by: duration)
        case .crash:
            let keep = self.random.chance(50) ? 0 : self.random.next() | 1
            self.log("crash (keep seed \(keep))")
            self.storage.crash(keepSeed: keep)
            try await self.restart(branches: [self.model], inDoubt: false)
        case .armCrash:
            if self.isArmed { return }
            let countdown = Int64(self.random.int(1...16))
            let keep = self.random.chance(50) ? 0 : self.random.next() | 1
            self.log("arm crash at I/O event +\(countdown) (keep seed \(keep))")
            self.storage.arm(countdown: countdown, keepSeed: keep)
            self.isArmed = true
        }
    }

    enum Settlement { case abandon, deferMessage, deadLetter, renewLock, resubmit }

    private func chooseSettlement() -> Settlement {
        self.random.pick([Settlement.abandon, .abandon, .deferMessage, .deadLetter, .renewLock, .renewLock, .resubmit])!
    }

    // MARK: Crashes

    /// Closes the crashed broker (its I/O is inert), opens a new one on the same file, and checks
    /// that the store equals one of `branches` (two when an operation's fate is in doubt).
    func restart(branches: [BrokerModel], inDoubt: Bool) async throws {
        if !self.storage.isCrashed { self.storage.crash(keepSeed: 0) }
        self.isArmed = false
        self.report.crashes += 1
        await self.broker.close()
        self.storage.restart()
        do {
            self.broker = try SQLiteBroker.running(path: self.path, configuration: Self.configuration(self.clock, self.storage, self.options.bug))
        } catch {
            throw self.fail("store reopens after a crash", "reopening failed: \(error)")
        }
        self.log("restarted")
        var restarted = branches
        for index in restarted.indices { restarted[index].restart() }
        let chosen = try await self.audit(against: restarted, afterRestart: true)
        if inDoubt && chosen == 1 { self.report.inDoubtCommitted += 1 }
    }
}

/// Counts the WAL syncs of one broker, for the injected bugs that skip some.
private final class SyncCounter: Sendable {
    private let count = Mutex(0)

    func next() -> Int {
        self.count.withLock { count in
            count += 1
            return count
        }
    }
}
