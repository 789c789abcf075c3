import Foundation
import HeraldCore
import HeraldSQLite
import Logging
import Synchronization

/// Runs one seed: drives the real broker one awaited operation at a time, so the seed alone
/// decides the order of everything, and checks each answer against ``BrokerModel``.
final class Simulator {
    private let options: SimulationOptions
    private var random: SimulationRandom
    private let storage: FaultStorage
    private let path: String
    private let clock = ManualBrokerClock()
    private var broker: SQLiteBroker
    private var model = BrokerModel()
    private var step = 0
    private var report: SimulationReport
    private var recent: [String] = []
    private var isArmed = false

    /// Deliveries a simulated receiver holds (some stale: expired, superseded, or from before a restart).
    private var held: [LockToken] = []
    /// Session locks simulated receivers hold (some stale).
    private var sessions: [SessionLock] = []
    /// Message ids recently sent, per target, for duplicate sends.
    private var recentIds: [String: [String]] = [:]
    private var counter = 0
    /// The highest delivery count seen per message, to check that it never decreases.
    private var seenDeliveryCounts: [String: Int] = [:]

    private static let work = EntityPath.queue("work")
    private static let orders = EntityPath.queue("orders")
    private static let events = EntityPath.topic("events")
    private static let all = EntityPath.subscription("all", of: "events")
    private static let odd = EntityPath.subscription("odd", of: "events")
    private static let sessionIds = ["s0", "s1", "s2", "s3"]
    private static let maxBodySize = 1024
    /// The longest delay an abandon asks for.
    private static let maxAbandonDelayMilliseconds = 10_000
    private static let dummyNonce = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

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
        case complete, abandon, deferMessage, deadLetter, renewLock, resubmit, cancelScheduled
        case acceptSession, receiveSession, renewSession, releaseSession, sessionState
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
            case .acceptSession: 50
            case .receiveSession: 60
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
        case .acceptSession: try await self.acceptSession()
        case .receiveSession: try await self.receiveSession()
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

    private enum Settlement { case abandon, deferMessage, deadLetter, renewLock, resubmit }

    private func chooseSettlement() -> Settlement {
        self.random.pick([Settlement.abandon, .abandon, .deferMessage, .deadLetter, .renewLock, .renewLock, .resubmit])!
    }

    // MARK: Time and bookkeeping

    private var now: BrokerModel.Now {
        BrokerModel.Now(wall: self.clock.now().millisecondsSince1970, monotonic: self.clock.monotonicNow().nanoseconds)
    }

    private func log(_ line: String) {
        self.fold(line)
        let entry = "[\(self.step)] \(line)"
        if self.options.trace { print(entry) }
        self.recent.append(entry)
        if self.recent.count > 12 { self.recent.removeFirst() }
    }

    /// Folds `text` into the run's fingerprint (FNV-1a), which replays must reproduce.
    private func fold(_ text: String) {
        for byte in text.utf8 {
            self.report.fingerprint = (self.report.fingerprint ^ UInt64(byte)) &* 0x100_0000_01B3
        }
    }

    private func fail(_ invariant: String, _ detail: String) -> SimulationFailure {
        SimulationFailure(
            seed: self.options.seed, steps: self.options.steps, step: self.step, invariant: invariant, detail: detail,
            bug: self.options.bug, recentOperations: self.recent
        )
    }

    private func nextId(_ prefix: String) -> String {
        self.counter += 1
        return "\(prefix)\(self.counter)"
    }

    private func hold(_ messages: [ReceivedMessage]) {
        for message in messages {
            if let token = message.lockToken { self.held.append(token) }
        }
        if self.held.count > 40 { self.held.removeFirst(self.held.count - 40) }
    }

    private func takeHeld() -> LockToken? {
        guard !self.held.isEmpty else { return nil }
        return self.held.remove(at: self.random.int(0...(self.held.count - 1)))
    }

    /// Calls the broker, and returns its answer as a result.
    private func call<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        self.report.brokerCalls += 1
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    // MARK: Checking one operation

    /// Compares the broker's answer with the model's, adopts the model's new state, and handles a
    /// crash that happened during the call. `predicted` is the model after the operation.
    private func settleOutcome<T, U>(
        _ what: String, actual: Result<T, any Error>, expected: Result<U, HeraldError>, predicted: BrokerModel,
        keepsEffectsOnFailure: Bool = false, compare: (T, U) throws -> Void
    ) async throws {
        let crashed = self.storage.isCrashed
        let answer: String
        switch actual {
        case .success(let value): answer = (value as? SettlementOutcome) == .alreadySettled ? " -> ok (already settled)" : " -> ok"
        case .failure(let error as HeraldError):
            // Which of two lost locks a store reports first is not part of the contract.
            answer = " -> \(error.code == .sessionLockLost ? HeraldError.Code.lockLost : error.code)"
        case .failure: answer = " -> error"
        }
        self.fold(answer)
        if self.options.trace { print("    \(answer)") }
        switch (actual, expected) {
        case (.success(let value), .success(let expectedValue)):
            try compare(value, expectedValue)
            self.model = predicted
        case (.failure(let error as HeraldError), _) where error.code == .storeFailed || error.code == .storeClosed:
            guard crashed else { throw self.fail("store failed", "\(what): the store failed without a crash: \(error)") }
            // The operation's fate is in doubt: it failed, yet its commit may have reached the disk.
            self.log("\(what) -> in doubt (\(error.code))")
            self.isArmed = false
            self.report.inDoubt += 1
            try await self.restart(branches: [self.model, predicted], inDoubt: true)
            return
        case (.failure(let error as HeraldError), .failure(let expectedError)):
            let lockCodes: [HeraldError.Code] = [.lockLost, .sessionLockLost]
            let same = error.code == expectedError.code || (lockCodes.contains(error.code) && lockCodes.contains(expectedError.code))
            guard same else {
                throw self.fail("wrong answer", "\(what): the broker failed with \(error.code), the model expected \(expectedError.code)")
            }
            // An answer decided after the transaction committed (no session available) keeps its sweep.
            if keepsEffectsOnFailure { self.model = predicted }
        case (.failure(let error), .success):
            throw self.fail("wrong answer", "\(what): the broker failed with \(error), the model expected success")
        case (.success, .failure(let expectedError)) where [.lockLost, .sessionLockLost].contains(expectedError.code):
            throw self.fail("settling needs a current lock", "\(what): the broker accepted a lock that is lost (\(expectedError.code))")
        case (.success, .failure(let expectedError)):
            throw self.fail("wrong answer", "\(what): the broker succeeded, the model expected \(expectedError.code)")
        case (.failure(let error), .failure(let expectedError)):
            throw self.fail("wrong answer", "\(what): the broker failed with \(error), the model expected \(expectedError.code)")
        }
        if crashed {
            // A crash during an operation that still answered: what it answered must survive.
            self.isArmed = false
            try await self.restart(branches: [self.model], inDoubt: false)
        }
    }

    /// Checks delivered messages against the model's prediction and the delivery invariants.
    private func compareDeliveries(_ what: String, _ actual: [ReceivedMessage], _ expected: [BrokerModel.MessageState], session: Bool) throws {
        for message in actual {
            let key = message.entity.origin.entityKey
            if self.model.entity(message.entity)?.removed.contains(message.sequenceNumber) == true {
                throw self.fail("completed message redelivered", "\(what): \(message.entity) #\(message.sequenceNumber) (\(message.message.messageId)) left the entity, yet was delivered again")
            }
            if let seen = self.seenDeliveryCounts["\(key)#\(message.sequenceNumber)"], message.deliveryCount <= seen {
                throw self.fail("delivery count not increasing", "\(what): #\(message.sequenceNumber) delivered with count \(message.deliveryCount) after \(seen)")
            }
        }
        if session {
            let numbers = actual.map(\.sequenceNumber)
            if numbers != numbers.sorted() {
                throw self.fail("per-session order", "\(what): delivered out of order: \(numbers)")
            }
        }
        let actualSummary = actual.map { "#\($0.sequenceNumber) \($0.message.messageId) n=\($0.deliveryCount)" }
        let expectedSummary = expected.map { "#\($0.sequenceNumber) \($0.messageId) n=\($0.deliveryCount)" }
        guard actualSummary == expectedSummary, zip(actual, expected).allSatisfy({ $0.message.body == $1.body }) else {
            let invariant = session ? "per-session order" : "wrong delivery"
            throw self.fail(invariant, "\(what): the broker delivered \(actualSummary), the model expected \(expectedSummary)")
        }
        for message in actual {
            self.seenDeliveryCounts["\(message.entity.origin.entityKey)#\(message.sequenceNumber)"] = message.deliveryCount
        }
    }

    // MARK: Sending

    private func makeMessage(for target: EntityPath) -> Message {
        let prefix = target == Self.work ? "w" : target == Self.orders ? "o" : "e"
        var messageId = self.nextId(prefix)
        if self.random.chance(12), let recent = self.random.pick(self.recentIds[target.entityKey] ?? []) {
            messageId = recent
        } else {
            self.recentIds[target.entityKey, default: []].append(messageId)
            if self.recentIds[target.entityKey]!.count > 20 { self.recentIds[target.entityKey]!.removeFirst() }
        }
        var message = Message(messageId: messageId, body: Data("body of \(messageId) #\(self.counter)".utf8))
        if target == Self.orders { message.sessionId = self.random.pick(Self.sessionIds)! }
        if target == Self.events { message.subject = self.random.chance(50) ? "odd" : "even" }
        if self.random.chance(15) { message.timeToLive = .milliseconds(self.random.int(500...30_000)) }
        if self.random.chance(10) {
            message.scheduledEnqueueTime = self.clock.now().addingTimeInterval(Double(self.random.int(-2000...20_000)) / 1000)
        }
        return message
    }

    private func send(to target: EntityPath) async throws {
        // Keep entities small: past 150 messages, receivers catch up instead.
        let backlog = target == Self.events ? [Self.all, Self.odd] : [target]
        if backlog.contains(where: { (self.model.entity($0)?.messages.count ?? 0) > 150 }) {
            if target == Self.orders {
                return try await (self.sessions.isEmpty || self.random.chance(30) ? self.acceptSession() : self.receiveSession())
            }
            return try await self.receive(mode: .peekLock, from: target == Self.events ? self.random.pick([Self.all, Self.odd])! : target)
        }
        var messages = (0..<self.random.int(1...(self.random.chance(20) ? 6 : 3))).map { _ in self.makeMessage(for: target) }
        if target == Self.work && self.random.chance(4) {
            // One invalid message rejects the whole batch.
            let index = self.random.int(0...(messages.count - 1))
            messages[index].body = Data(repeating: 0x61, count: Self.maxBodySize + 1)
        }
        let what = "send \(messages.map(\.messageId)) to \(target)"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.send(messages, to: target) }
        var predicted = self.model
        let expected = predicted.send(messages, to: target, now: now)
        let highest = self.model.entity(target)?.highestAcknowledged ?? 0
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { receipts, expectedReceipts in
            var previous: Int64?
            for (receipt, expectedReceipt) in zip(receipts, expectedReceipts) {
                if expectedReceipt.isDuplicate && !receipt.isDuplicate {
                    throw self.fail("duplicate enqueued within window", "\(what): \(receipt) for a messageId accepted within the window (original #\(expectedReceipt.sequenceNumber ?? -1))")
                }
                if !receipt.isDuplicate, let sequenceNumber = receipt.sequenceNumber {
                    if sequenceNumber <= highest {
                        throw self.fail("sequence numbers strictly increasing, never reused", "\(what): got #\(sequenceNumber), #\(highest) was acknowledged before")
                    }
                    if let previous, sequenceNumber != previous + 1 {
                        throw self.fail("a batch gets consecutive sequence numbers", "\(what): #\(previous) then #\(sequenceNumber)")
                    }
                    previous = sequenceNumber
                }
            }
            guard receipts == expectedReceipts else {
                throw self.fail("wrong answer", "\(what): receipts \(receipts), the model expected \(expectedReceipts)")
            }
        }
        if case .success(let receipts) = actual { self.model.acknowledge(receipts, to: target) }
    }

    private func cancelScheduled() async throws {
        let scheduled = self.model.entity(Self.work)!.ordered.filter { $0.state == .scheduled }.map(\.sequenceNumber)
        var numbers: [Int64] = []
        if let pick = self.random.pick(scheduled) { numbers.append(pick) }
        if numbers.isEmpty || self.random.chance(20) { numbers.append(Int64(self.random.int(1...Int(max(1, self.model.entity(Self.work)!.lastSequence))))) }
        let what = "cancel scheduled \(numbers) of \(Self.work)"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.cancelScheduled(numbers, in: Self.work) }
        var predicted = self.model
        let expected = predicted.cancelScheduled(numbers, in: Self.work, now: now)
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { _, _ in }
    }

    // MARK: Receiving

    private func receive(mode: ReceiveMode, from entity: EntityPath) async throws {
        let maxCount = self.random.int(1...4)
        let what = "receive \(maxCount) from \(entity) (\(mode.rawValue))"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.receive(from: entity, maxCount: maxCount, maxWaitTime: .zero, mode: mode) }
        var predicted = self.model
        let nonce = (try? actual.get())?.first?.lockToken?.nonce ?? Self.dummyNonce
        let expected = predicted.receive(from: entity, maxCount: maxCount, mode: mode, nonce: nonce, now: now)
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { messages, expectedMessages in
            try self.compareDeliveries(what, messages, expectedMessages, session: false)
        }
        if case .success(let messages) = actual { self.hold(messages) }
    }

    private func receiveDeferred() async throws {
        let entity = self.random.pick([Self.work, Self.all, Self.odd])!
        let deferred = self.model.entity(entity)!.ordered.filter { $0.state == .deferred && !$0.isDeadLetter }.map(\.sequenceNumber)
        var numbers: [Int64] = []
        if let pick = self.random.pick(deferred) { numbers.append(pick) }
        if numbers.isEmpty || self.random.chance(15) {
            let number = Int64(self.random.int(1...Int(max(1, self.model.entity(entity)!.lastSequence))))
            if !numbers.contains(number) { numbers.append(number) }
        }
        let what = "receive deferred \(numbers) from \(entity)"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.receiveDeferred(from: entity, sequenceNumbers: numbers) }
        var predicted = self.model
        let nonce = (try? actual.get())?.first?.lockToken?.nonce ?? Self.dummyNonce
        let expected = predicted.receiveDeferred(from: entity, sequenceNumbers: numbers, nonce: nonce, now: now)
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { messages, expectedMessages in
            try self.compareDeliveries(what, messages, expectedMessages, session: false)
        }
        if case .success(let messages) = actual { self.hold(messages) }
    }

    // MARK: Settling

    private func complete() async throws {
        guard let first = self.takeHeld() else { return }
        var tokens = [first]
        if self.random.chance(25) {
            // Tokens of one receive, completed together. (Tokens of several receives would make
            // the store's order of work, and so the exact I/O a crash lands on, depend on hash
            // order; its error code for several lost groups too.)
            let more = self.held.filter { $0.nonce == first.nonce && $0.entity == first.entity }.prefix(self.random.int(1...2))
            self.held.removeAll { token in more.contains(token) }
            tokens += more
        }
        let what = "complete \(tokens.map { "\($0.entity)#\($0.sequenceNumber)" })"
        self.log(what)
        let now = self.now
        let actual = await self.call {
            if tokens.count == 1 { return try await self.broker.complete(tokens[0]) }
            return try await self.broker.complete(tokens)
        }
        var predicted = self.model
        let expected = predicted.complete(tokens, now: now)
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { outcome, expectedOutcome in
            try self.compareOutcome(what, outcome, expectedOutcome)
        }
        self.maybeRetryLater(tokens, after: actual)
    }

    /// Fails unless a settlement answered as the model expects: settled now, or already settled
    /// by the same token (a retry).
    private func compareOutcome(_ what: String, _ outcome: SettlementOutcome, _ expected: SettlementOutcome) throws {
        guard outcome == expected else {
            throw self.fail("a retried settlement answers truthfully", "\(what): the broker answered \(outcome), the model expected \(expected)")
        }
    }

    /// Keeps some settled tokens to settle again later, as a receiver retries a settlement whose
    /// answer it lost: once acknowledged (an in-doubt one may have left the model a branch whose
    /// settlements differ from the store's only in what it remembers).
    private func maybeRetryLater(_ tokens: [LockToken], after actual: Result<SettlementOutcome, any Error>) {
        guard case .success = actual, self.random.chance(20) else { return }
        self.held += tokens
    }

    private func settle(_ settlement: Settlement) async throws {
        guard let token = self.takeHeld() else { return }
        let now = self.now
        var predicted = self.model
        let what: String
        let actual: Result<SettlementOutcome, any Error>
        let expected: Result<SettlementOutcome, HeraldError>
        switch settlement {
        case .abandon:
            let delay: Duration? = self.random.chance(30) ? .milliseconds(self.random.int(0...Self.maxAbandonDelayMilliseconds)) : nil
            what = "abandon \(token.entity)#\(token.sequenceNumber) delay \(delay.map { "\($0)" } ?? "none")"
            self.log(what)
            actual = await self.call { try await self.broker.abandon(token, delay: delay) }
            expected = predicted.abandon(token, delay: delay, now: now)
        case .deferMessage:
            what = "defer \(token.entity)#\(token.sequenceNumber)"
            self.log(what)
            actual = await self.call { try await self.broker.defer(token) }
            expected = predicted.deferMessage(token, now: now)
        case .deadLetter:
            let reason = self.random.pick(["Poison", "Rejected"])!
            what = "dead-letter \(token.entity)#\(token.sequenceNumber) \(reason)"
            self.log(what)
            actual = await self.call { try await self.broker.deadLetter(token, reason: reason, description: nil) }
            expected = predicted.deadLetter(token, reason: reason, now: now)
        case .renewLock:
            what = "renew lock \(token.entity)#\(token.sequenceNumber)"
            self.log(what)
            actual = await self.call {
                _ = try await self.broker.renewLock(token)
                return .settled
            }
            expected = predicted.renewLock(token, now: now).map { .settled }
            // A renewed delivery is still held.
            self.held.append(token)
        case .resubmit:
            what = "resubmit \(token.entity)#\(token.sequenceNumber)"
            self.log(what)
            actual = await self.call { try await self.broker.resubmit(token) }
            expected = predicted.resubmit(token, now: now)
        }
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { outcome, expectedOutcome in
            try self.compareOutcome(what, outcome, expectedOutcome)
        }
        if settlement != .renewLock { self.maybeRetryLater([token], after: actual) }
        // A resubmitted message starts counting deliveries again: once acknowledged, or once a crash
        // left the resubmit in doubt and the store showed it done.
        if settlement == .resubmit, self.model.entity(token.entity.origin)?.messages[token.sequenceNumber]?.isDeadLetter == false {
            self.seenDeliveryCounts["\(token.entity.origin.entityKey)#\(token.sequenceNumber)"] = nil
        }
    }

    // MARK: Sessions

    private func acceptSession() async throws {
        let sessionId: String? = self.random.chance(50) ? nil : self.random.pick(Self.sessionIds)!
        let what = "accept session \(sessionId ?? "(next)") of \(Self.orders)"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.acceptSession(on: Self.orders, sessionId: sessionId, maxWaitTime: .zero) }
        var predicted = self.model
        let nonce = (try? actual.get())?.nonce ?? Self.dummyNonce
        let expected: Result<String?, HeraldError> =
            switch predicted.acceptSession(on: Self.orders, sessionId: sessionId, nonce: nonce, now: now) {
            case .success(nil): .failure(HeraldError(.noSessionAvailable, "model: no session available"))
            case let other: other
            }
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted, keepsEffectsOnFailure: sessionId == nil) { lock, expectedId in
            guard lock.sessionId == expectedId else {
                throw self.fail("wrong answer", "\(what): accepted \(lock.sessionId), the model expected \(expectedId ?? "none")")
            }
        }
        if case .success(let lock) = actual {
            self.sessions.append(lock)
            if self.sessions.count > 6 { self.sessions.removeFirst() }
        }
    }

    private func receiveSession() async throws {
        guard let session = self.random.pick(self.sessions) else { return }
        let maxCount = self.random.int(1...3)
        let what = "receive \(maxCount) from session \(session.sessionId)"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.receive(from: session, maxCount: maxCount, maxWaitTime: .zero) }
        var predicted = self.model
        let nonce = (try? actual.get())?.first?.lockToken?.nonce ?? Self.dummyNonce
        let expected = predicted.receive(from: session, maxCount: maxCount, nonce: nonce, now: now)
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { messages, expectedMessages in
            try self.compareDeliveries(what, messages, expectedMessages, session: true)
        }
        if case .success(let messages) = actual { self.hold(messages) }
    }

    private func renewSession() async throws {
        guard !self.sessions.isEmpty else { return }
        let index = self.random.int(0...(self.sessions.count - 1))
        let session = self.sessions[index]
        let what = "renew session \(session.sessionId)"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.renewSessionLock(session) }
        var predicted = self.model
        let expected = predicted.renewSessionLock(session, now: now)
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { _, _ in }
    }

    private func releaseSession() async throws {
        guard !self.sessions.isEmpty else { return }
        let session = self.sessions.remove(at: self.random.int(0...(self.sessions.count - 1)))
        let what = "release session \(session.sessionId)"
        self.log(what)
        let now = self.now
        let actual = await self.call { try await self.broker.releaseSession(session) }
        var predicted = self.model
        let expected = predicted.releaseSession(session, now: now)
        try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { _, _ in }
    }

    private func sessionState() async throws {
        guard let session = self.random.pick(self.sessions) else { return }
        let now = self.now
        var predicted = self.model
        if self.random.chance(50) {
            let state: Data? = self.random.chance(15) ? nil : Data(self.nextId("state-").utf8)
            let what = "set state of session \(session.sessionId)"
            self.log(what)
            let actual = await self.call { try await self.broker.setSessionState(state, for: session) }
            let expected = predicted.setSessionState(state, for: session, now: now)
            try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { _, _ in }
        } else {
            let what = "get state of session \(session.sessionId)"
            self.log(what)
            let actual = await self.call { try await self.broker.sessionState(session) }
            let expected = predicted.sessionState(session, now: now)
            try await self.settleOutcome(what, actual: actual, expected: expected, predicted: predicted) { state, expectedState in
                guard state == expectedState else {
                    throw self.fail("session state lost", "\(what): read \(state.map { String(decoding: $0, as: UTF8.self) } ?? "nil"), expected \(expectedState.map { String(decoding: $0, as: UTF8.self) } ?? "nil")")
                }
            }
        }
    }

    // MARK: Crashes

    /// Closes the crashed broker (its I/O is inert), opens a new one on the same file, and checks
    /// that the store equals one of `branches` (two when an operation's fate is in doubt).
    private func restart(branches: [BrokerModel], inDoubt: Bool) async throws {
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

    // MARK: Audits

    /// Compares the whole store with the model (or, after an in-doubt crash, with each branch);
    /// returns the index of the branch it matches and adopts it.
    @discardableResult
    private func audit(against branches: [BrokerModel], afterRestart: Bool) async throws -> Int {
        self.report.audits += 1
        var contents: [String: [ReceivedMessage]] = [:]
        for key in self.model.receivableKeys {
            let path = self.model.entities[key]!.path
            for entity in [path, path.deadLetter] {
                let peeked = await self.call { () async throws -> [ReceivedMessage] in
                    var messages: [ReceivedMessage] = []
                    while true {
                        let page = try await self.broker.peek(
                            entity, fromSequenceNumber: (messages.last?.sequenceNumber ?? 0) + 1, maxCount: HeraldLimits.maxReceiveCount
                        )
                        messages += page
                        if page.count < HeraldLimits.maxReceiveCount { return messages }
                    }
                }
                switch peeked {
                case .success(let messages): contents[entity.description] = messages
                case .failure(let error as HeraldError) where error.code == .entityNotFound:
                    throw self.fail("acknowledged change lost", "peek \(entity) failed: \(error)")
                case .failure(let error): throw self.fail("store readable", "peek \(entity) failed: \(error)")
                }
            }
        }
        var sessionStates: [String: Data?] = [:]
        if afterRestart {
            // Session state survives a restart; read it through a session lock (none are held now).
            let ids = Set(branches.flatMap { $0.entity(Self.orders)!.sessionStates.keys }).sorted()
            for sessionId in ids {
                let read = await self.call { () async throws -> Data? in
                    let lock = try await self.broker.acceptSession(on: Self.orders, sessionId: sessionId, maxWaitTime: .zero)
                    let state = try await self.broker.sessionState(lock)
                    try await self.broker.releaseSession(lock)
                    return state
                }
                switch read {
                case .success(let state): sessionStates[sessionId] = state
                case .failure(let error): throw self.fail("store readable", "reading the state of session \(sessionId) failed: \(error)")
                }
            }
        }
        var differences: [[(String, String)]] = []
        for (index, branch) in branches.enumerated() {
            let found = self.differences(contents, sessionStates, branch)
            if found.isEmpty {
                self.model = branch
                // Both outcomes of an operation in doubt can fit what peeking shows: an abandon
                // with a delay differs only in when the message is visible again. Let that time
                // pass, so the branch kept cannot disagree with the store.
                if index + 1 < branches.count, self.differences(contents, sessionStates, branches[index + 1]).isEmpty {
                    let pastAnyDelay = Duration.milliseconds(Self.maxAbandonDelayMilliseconds + 1000)
                    self.log("both outcomes fit the store: advance \(pastAnyDelay), past any hidden visibility time")
                    self.clock.advance(by: pastAnyDelay)
                }
                return index
            }
            differences.append(found)
        }
        // Report against the state every acknowledgement promised (the first branch), the gravest first.
        let gravity = ["acknowledged message lost", "completed message came back", "unacknowledged message appeared"]
        let ranked = differences[0].enumerated().sorted { left, right in
            let l = gravity.firstIndex(of: left.element.0) ?? gravity.count
            let r = gravity.firstIndex(of: right.element.0) ?? gravity.count
            return l != r ? l < r : left.offset < right.offset
        }.map(\.element)
        let (invariant, _) = ranked[0]
        let detail = ranked.prefix(6).map { "\($0.0): \($0.1)" }.joined(separator: "; ")
        let context = afterRestart ? (branches.count > 1 ? "after a crash with an operation in doubt" : "after a crash") : "audit"
        throw self.fail(invariant, "\(context): \(detail)")
    }

    private func differences(_ contents: [String: [ReceivedMessage]], _ sessionStates: [String: Data?], _ model: BrokerModel) -> [(String, String)] {
        var found: [(String, String)] = []
        for key in model.receivableKeys {
            let entity = model.entities[key]!
            for path in [entity.path, entity.path.deadLetter] {
                let stored = contents[path.description] ?? []
                let expected = entity.ordered.filter { $0.isDeadLetter == path.isDeadLetter }
                let storedBySequence = Dictionary(stored.map { ($0.sequenceNumber, $0) }, uniquingKeysWith: { first, _ in first })
                let expectedNumbers = Set(expected.map(\.sequenceNumber))
                for message in expected {
                    guard let actual = storedBySequence[message.sequenceNumber] else {
                        let elsewhere = contents[(path.isDeadLetter ? entity.path : entity.path.deadLetter).description]?
                            .contains { $0.sequenceNumber == message.sequenceNumber } ?? false
                        found.append(
                            elsewhere
                                ? ("dead-lettering", "\(path) #\(message.sequenceNumber) (\(message.messageId)) is in the wrong queue")
                                : ("acknowledged message lost", "\(path) #\(message.sequenceNumber) (\(message.messageId)) is missing")
                        )
                        continue
                    }
                    if actual.deliveryCount < message.deliveryCount {
                        found.append(("delivery count never decreases", "\(path) #\(message.sequenceNumber): count \(actual.deliveryCount), expected \(message.deliveryCount)"))
                    }
                    // Not yet received from the dead-letter queue (which counts deliveries too).
                    if path.isDeadLetter, actual.deadLetterReason == DeadLetterReason.maxDeliveryCountExceeded,
                        message.deadLetterReason == DeadLetterReason.maxDeliveryCountExceeded, message.deliveryCount == message.deliveryCountAtDeadLetter,
                        actual.deliveryCount != entity.options.maxDeliveryCount
                    {
                        found.append(("dead-lettering exactly at maxDeliveryCount", "\(path) #\(message.sequenceNumber) dead-lettered at count \(actual.deliveryCount), max \(entity.options.maxDeliveryCount), model \(message.deliveryCount)"))
                    }
                    let actualFields = Self.fields(actual)
                    let expectedFields = Self.fields(message)
                    if actualFields != expectedFields {
                        found.append(("store matches the model", "\(path) #\(message.sequenceNumber): stored \(actualFields), expected \(expectedFields)"))
                    }
                }
                for message in stored where !expectedNumbers.contains(message.sequenceNumber) {
                    let inOther = entity.messages[message.sequenceNumber] != nil
                    if inOther { continue }  // reported from the other side
                    let invariant = entity.removed.contains(message.sequenceNumber) ? "completed message came back" : "unacknowledged message appeared"
                    found.append((invariant, "\(path) #\(message.sequenceNumber) (\(message.message.messageId)) is in the store"))
                }
            }
        }
        for (sessionId, state) in sessionStates.sorted(by: { $0.key < $1.key }) where state != model.entity(Self.orders)!.sessionStates[sessionId] {
            found.append(("session state survives a crash", "session \(sessionId): stored \(state.map { String(decoding: $0, as: UTF8.self) } ?? "nil")"))
        }
        return found
    }

    private static func fields(_ message: ReceivedMessage) -> String {
        let state = message.state.rawValue
        let lock = message.lockedUntil != nil ? "locked" : "unlocked"
        return "\(message.message.messageId) \(state) n=\(message.deliveryCount) \(lock) session=\(message.message.sessionId ?? "-") "
            + "enq=\(Self.milliseconds(message.enqueuedTime)) exp=\(message.expiresAt.map { String(Self.milliseconds($0)) } ?? "-") "
            + "dl=\(message.deadLetterReason ?? "-") body=\(message.message.body.count)"
    }

    private static func fields(_ message: BrokerModel.MessageState) -> String {
        let lock = message.lockNonce != nil ? "locked" : "unlocked"
        return "\(message.messageId) \(message.state.rawValue) n=\(message.deliveryCount) \(lock) session=\(message.sessionId ?? "-") "
            + "enq=\(message.enqueuedAt) exp=\(message.expiresAt.map { String($0) } ?? "-") "
            + "dl=\(message.deadLetterReason ?? "-") body=\(message.body.count)"
    }

    /// A stored time in milliseconds, rounded (a millisecond count survives the trip through `Date`).
    private static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
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
