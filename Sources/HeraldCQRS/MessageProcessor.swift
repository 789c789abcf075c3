import Foundation
public import HeraldCore
public import Logging
import Synchronization

/// Receives from a queue or subscription and dispatches each message to its handler.
///
/// - Bounded concurrency: `maxConcurrency` workers, each handling one message at a time.
/// - The lock is renewed while a handler runs.
/// - Success commits, in one transaction, the handler's effects, its inbox record and the
///   completion of the message (GUARANTEES.md §4.8); a duplicate delivery finds its inbox record and
///   has no second effect.
/// - A failing handler is retried by abandoning the message with an exponential, jittered delay
///   (``RetryPolicy``), and dead-lettered with reason `HandlerFailed` after the last attempt. A
///   message of an unknown type (`UnknownMessageType`) or that does not decode
///   (`UndecodableMessage`) is dead-lettered at once.
/// - In session mode a worker accepts a session and handles its messages one by one, in order.
/// - With a ``Configuration/sequenceGate``, messages carrying `senderId` and `senderSequence`
///   are handled in sender order: one that is ahead is deferred until the gap fills, or until
///   `gapTimeout` passes, when the held messages are dead-lettered (`SequenceGapTimeout`).
/// - ``stop()`` lets each worker finish the message it is handling and abandons the rest.
public final class MessageProcessor: Sendable {
    /// How the processor works.
    public struct Configuration: Sendable {
        /// Names the processor in logs and statistics.
        public var name: String
        /// Workers handling messages at once.
        public var maxConcurrency: Int
        /// Messages a worker receives at a time.
        public var receiveBatchSize: Int
        /// How long a receive waits for messages.
        public var maxWaitTime: Duration
        /// How failures are retried.
        public var retry: RetryPolicy
        /// Whether the source requires sessions.
        public var sessions: Bool
        /// Hold messages that are ahead of their sender's sequence for this long at most; `nil`: no reordering.
        public var sequenceGate: Duration?

        /// Creates a configuration.
        public init(
            name: String, maxConcurrency: Int = 4, receiveBatchSize: Int = 4, maxWaitTime: Duration = .milliseconds(500),
            retry: RetryPolicy = RetryPolicy(), sessions: Bool = false, sequenceGate: Duration? = nil
        ) {
            self.name = name
            self.maxConcurrency = maxConcurrency
            self.receiveBatchSize = receiveBatchSize
            self.maxWaitTime = maxWaitTime
            self.retry = retry
            self.sessions = sessions
            self.sequenceGate = sequenceGate
        }
    }

    /// What the processor has done so far.
    public struct Statistics: Sendable, Hashable {
        /// Messages whose handling committed.
        public var handled = 0
        /// Deliveries that found their inbox record (or an older sender sequence) and had no second effect.
        public var duplicatesSuppressed = 0
        /// Failed attempts that were retried.
        public var retries = 0
        /// Dead letters by reason.
        public var deadLettered: [String: Int] = [:]
        /// Commits that lost their lock (the message is delivered again).
        public var lockLosses = 0
        /// Messages held back because their sender's sequence was ahead.
        public var held = 0
    }

    private let broker: any TransactionalBroker
    private let source: EntityPath
    private let handlers: MessageHandlers
    private let configuration: Configuration
    private let clock: any BrokerClock
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let stats = Mutex(Statistics())
    /// When the sequence gate last looked for expired gaps (monotonic).
    private let lastGapSweep = Mutex<Duration?>(nil)

    /// A processor of `source` on `broker`.
    public init(
        broker: any TransactionalBroker, source: EntityPath, handlers: MessageHandlers, configuration: Configuration,
        clock: any BrokerClock = SystemBrokerClock(), logger: Logger = Logger(label: "herald.processor")
    ) {
        self.broker = broker
        self.source = source
        self.handlers = handlers
        self.configuration = configuration
        self.clock = clock
        var logger = logger
        logger[metadataKey: "herald.processor"] = "\(configuration.name)"
        self.logger = logger
    }

    /// What the processor has done so far.
    public var statistics: Statistics { self.stats.withLock { $0 } }

    /// Asks the workers to stop after the message each is handling.
    public func stop() {
        self.stopping.store(true, ordering: .relaxed)
    }

    /// Errors that no retry can cure: the store stopped, or the source cannot be received from
    /// as configured (it does not exist, its name is invalid, it is a topic, or its sessions
    /// setting differs from the processor's).
    private static let fatalCodes: Set<HeraldError.Code> = [
        .storeFailed, .storeClosed, .entityNotFound, .invalidName, .invalidArgument, .sessionRequired, .sessionNotEnabled,
    ]

    /// Runs the workers until ``stop()`` is called or the task is cancelled.
    ///
    /// - Throws: The ``HeraldCore/HeraldError`` that stops it: ``HeraldCore/HeraldError/Code/storeFailed``
    ///   or ``HeraldCore/HeraldError/Code/storeClosed`` from the store, or
    ///   ``HeraldCore/HeraldError/Code/entityNotFound``, ``HeraldCore/HeraldError/Code/invalidName``,
    ///   ``HeraldCore/HeraldError/Code/invalidArgument``, ``HeraldCore/HeraldError/Code/sessionRequired``
    ///   or ``HeraldCore/HeraldError/Code/sessionNotEnabled`` when the source cannot be received
    ///   from as configured. Other failures are logged and retried.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, self.configuration.maxConcurrency) {
                group.addTask {
                    while !self.stopping.load(ordering: .relaxed) && !Task.isCancelled {
                        do {
                            _ = try await self.pass(maxWaitTime: self.configuration.maxWaitTime)
                        } catch let error as HeraldError where Self.fatalCodes.contains(error.code) {
                            throw error
                        } catch {
                            self.logger.warning("receive failed", metadata: ["error": "\(error)"])
                            try? await Task.sleep(for: .milliseconds(100))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Handles what is available now, one batch (or one session) at a time, until a receive
    /// comes back empty; returns how many messages it handled. For tests and harnesses.
    @discardableResult
    public func processAvailable() async throws -> Int {
        var total = 0
        while true {
            let count = try await self.pass(maxWaitTime: .zero)
            if count == 0 { return total }
            total += count
        }
    }

    /// One receive (or one session) and its handling; returns the number of messages received.
    private func pass(maxWaitTime: Duration) async throws -> Int {
        try await self.releaseExpiredGaps()
        if self.configuration.sessions {
            let session: SessionLock
            do {
                session = try await self.broker.acceptSession(on: self.source, sessionId: nil, maxWaitTime: maxWaitTime)
            } catch let error as HeraldError where error.code == .noSessionAvailable {
                return 0
            }
            // The session lock is renewed at half its time while its messages are handled.
            let interval = max(session.lockedUntil.timeIntervalSince(self.clock.now()) / 2, 0.05)
            let count = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    var current = session
                    while !Task.isCancelled {
                        try await Task.sleep(for: .seconds(interval))
                        current = (try? await self.broker.renewSessionLock(current)) ?? current
                    }
                    return 0
                }
                defer { group.cancelAll() }
                var count = 0
                while !self.stopping.load(ordering: .relaxed) {
                    let messages = try await self.broker.receive(from: session, maxCount: self.configuration.receiveBatchSize, maxWaitTime: .zero)
                    if messages.isEmpty { break }
                    count += messages.count
                    try await self.handle(messages)
                }
                return count
            }
            try? await self.broker.releaseSession(session)
            return count
        }
        let messages = try await self.broker.receive(
            from: self.source, maxCount: self.configuration.receiveBatchSize, maxWaitTime: maxWaitTime, mode: .peekLock
        )
        try await self.handle(messages)
        return messages.count
    }

    private func handle(_ messages: [ReceivedMessage]) async throws {
        for (index, message) in messages.enumerated() {
            if self.stopping.load(ordering: .relaxed) {
                // Graceful stop: what was received but not started goes back at once.
                for rest in messages[index...] {
                    if let token = rest.lockToken { _ = try? await self.broker.abandon(token, delay: nil) }
                }
                return
            }
            try await self.process(message)
        }
    }

    // MARK: Handling one message

    private func process(_ message: ReceivedMessage) async throws {
        guard let token = message.lockToken else { return }
        guard let subject = message.message.subject, let entry = self.handlers.entries[subject] else {
            try await self.deadLetter(token, reason: "UnknownMessageType", description: "no handler for '\(message.message.subject ?? "")'")
            return
        }
        var gate: GateDecision?
        if self.configuration.sequenceGate != nil, let sender = message.message.senderId, let sequence = message.message.senderSequence {
            let decision = try await self.gate(message, sender: sender, sequence: sequence)
            switch decision.action {
            case .duplicate:
                try await self.settle { try await self.broker.complete(token) }
                self.count { $0.duplicatesSuppressed += 1 }
                return
            case .hold:
                var transaction = BrokerTransaction()
                transaction.defer(token)
                transaction.write(try MessageCoding.encode(decision.state), collection: Self.gateCollection, key: decision.key, expectedVersion: decision.version)
                try await self.commit(transaction, for: message)
                self.count { $0.held += 1 }
                return
            case .handle:
                gate = decision
            }
        }
        let inbox = InboxEntry(handler: entry.name, messageId: message.message.messageId)
        if try await self.broker.inboxContains(inbox) {
            if let gate {
                // Handled before, but the gate must still move past it, or what it holds waits.
                var transaction = BrokerTransaction()
                transaction.complete(token)
                try gate.advance(in: &transaction)
                if try await self.commit(transaction, for: message) { try await self.releaseHeld(gate.key) }
            } else {
                try await self.settle { try await self.broker.complete(token) }
            }
            self.count { $0.duplicatesSuppressed += 1 }
            return
        }
        let context = HandlerContext(message: message, store: self.broker, clock: self.clock, handlerName: entry.name)
        do {
            try await self.withLockRenewal(message) { try await entry.run(message, context) }
        } catch let error as UndecodableMessage {
            try await self.deadLetter(token, reason: "UndecodableMessage", description: error.description)
            return
        } catch {
            try await self.failed(message, error)
            return
        }
        var transaction = context.transaction
        transaction.recordInbox(handler: entry.name, messageId: message.message.messageId)
        transaction.complete(token)
        try gate?.advance(in: &transaction)
        if try await self.commit(transaction, for: message) {
            self.count { $0.handled += 1 }
            if let gate { try await self.releaseHeld(gate.key) }
        }
    }

    /// Commits a handling; returns whether it took effect. A lost lock or an inbox hit is not an
    /// error of the processor's: the message is delivered again, or was handled already.
    @discardableResult
    private func commit(_ transaction: BrokerTransaction, for message: ReceivedMessage) async throws -> Bool {
        do {
            _ = try await self.broker.commit(transaction)
            return true
        } catch let error as HeraldError where error.code == .alreadyProcessed {
            try await self.settle { try await self.broker.complete(message.lockToken!) }
            self.count { $0.duplicatesSuppressed += 1 }
        } catch let error as HeraldError where error.code == .lockLost || error.code == .sessionLockLost {
            self.count { $0.lockLosses += 1 }
        } catch let error as HeraldError where error.code == .storeFailed || error.code == .storeClosed {
            throw error
        } catch {
            try await self.failed(message, error)
        }
        return false
    }

    private func failed(_ message: ReceivedMessage, _ error: any Error) async throws {
        guard let token = message.lockToken else { return }
        if message.deliveryCount >= self.configuration.retry.maxAttempts {
            try await self.deadLetter(token, reason: "HandlerFailed", description: "\(message.deliveryCount) attempts; last: \(error)")
            return
        }
        self.logger.debug("handler failed; retrying", metadata: ["message": "\(message.message.messageId)", "error": "\(error)"])
        try await self.settle { try await self.broker.abandon(token, delay: self.configuration.retry.delay(afterAttempt: message.deliveryCount)) }
        self.count { $0.retries += 1 }
    }

    private func deadLetter(_ token: LockToken, reason: String, description: String) async throws {
        try await self.settle { try await self.broker.deadLetter(token, reason: reason, description: String(description.prefix(1000))) }
        self.count { $0.deadLettered[reason, default: 0] += 1 }
    }

    /// Runs a settlement; a lost lock only means someone else will see the message again.
    private func settle(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as HeraldError where error.code == .lockLost || error.code == .sessionLockLost {
            self.count { $0.lockLosses += 1 }
        }
    }

    private func count(_ change: (inout Statistics) -> Void) {
        self.stats.withLock { change(&$0) }
    }

    /// Runs `body` while renewing the message's lock at half its remaining time.
    private func withLockRenewal(_ message: ReceivedMessage, _ body: @Sendable () async throws -> Void) async throws {
        guard let token = message.lockToken, let lockedUntil = message.lockedUntil, !self.configuration.sessions else {
            return try await body()
        }
        let interval = max(lockedUntil.timeIntervalSince(self.clock.now()) / 2, 0.05)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(interval))
                    _ = try? await self.broker.renewLock(token)
                }
            }
            defer { group.cancelAll() }
            try await body()
        }
    }
}

// MARK: - The sequence gate (reorder buffer)

extension MessageProcessor {
    static let gateCollection = "herald.sequence-gate"

    /// A sender's progress through one source, kept as a document.
    struct GateState: Codable, Hashable {
        /// The sender sequence handled next.
        var next: Int64 = 1
        /// Held (deferred) messages: sender sequence → broker sequence number.
        var held: [Int64: Int64] = [:]
        /// When the oldest held message was held (milliseconds since 1970).
        var heldSince: Int64?
    }

    struct GateDecision {
        enum Action { case handle, hold, duplicate }
        var action: Action
        var key: String
        var state: GateState
        var version: Int64

        /// Writes the gate moved past the message being handled into `transaction`.
        func advance(in transaction: inout BrokerTransaction) throws {
            var state = self.state
            state.next += 1
            transaction.write(try MessageCoding.encode(state), collection: MessageProcessor.gateCollection, key: self.key, expectedVersion: self.version)
        }
    }

    private func gateKey(_ sender: String) -> String { "\(self.source)|\(sender)" }

    private func gate(_ message: ReceivedMessage, sender: String, sequence: Int64) async throws -> GateDecision {
        let key = self.gateKey(sender)
        let document = try await self.broker.document(key, in: Self.gateCollection)
        var state = try document.map { try MessageCoding.decode(GateState.self, from: $0.data) } ?? GateState()
        let version = document?.version ?? 0
        if sequence < state.next { return GateDecision(action: .duplicate, key: key, state: state, version: version) }
        if sequence == state.next {
            state.held[sequence] = nil
            if state.held.isEmpty { state.heldSince = nil }
            return GateDecision(action: .handle, key: key, state: state, version: version)
        }
        state.held[sequence] = message.sequenceNumber
        state.heldSince = state.heldSince ?? self.clock.now().millisecondsSince1970
        return GateDecision(action: .hold, key: key, state: state, version: version)
    }

    /// Handles the held message that is next in line, if any, and so on.
    private func releaseHeld(_ key: String) async throws {
        guard let document = try await self.broker.document(key, in: Self.gateCollection) else { return }
        let state = try MessageCoding.decode(GateState.self, from: document.data)
        guard let sequenceNumber = state.held[state.next] else { return }
        let released: [ReceivedMessage]
        do {
            released = try await self.broker.receiveDeferred(from: self.source, sequenceNumbers: [sequenceNumber])
        } catch let error as HeraldError where error.code == .messageNotFound {
            return  // another worker released it
        }
        for message in released { try await self.process(message) }
    }

    /// Releases held messages that are next in line, and dead-letters messages held longer than
    /// the gate's timeout and moves the gate past them.
    private func releaseExpiredGaps() async throws {
        guard let timeout = self.configuration.sequenceGate else { return }
        // Look at most a few times per timeout (and at least once a second), not on every receive.
        let now = self.clock.monotonicNow()
        let due = self.lastGapSweep.withLock { last -> Bool in
            if let previous = last, now - previous < min(timeout / 4, .seconds(1)) { return false }
            last = now
            return true
        }
        guard due else { return }
        let wallNow = self.clock.now().millisecondsSince1970
        let prefix = "\(self.source)|"
        for (key, document) in try await self.broker.documents(in: Self.gateCollection) where key.hasPrefix(prefix) {
            var state = try MessageCoding.decode(GateState.self, from: document.data)
            if state.held[state.next] != nil {
                // Next in line but still held: its release failed and was abandoned (a deferred
                // message stays deferred), or the worker stopped before releasing it.
                try await self.releaseHeld(key)
                continue
            }
            guard let since = state.heldSince, wallNow - since >= timeout.milliseconds, let last = state.held.keys.max() else { continue }
            let missing = state.next..<state.held.keys.min()!
            let held: [ReceivedMessage]
            do {
                held = try await self.broker.receiveDeferred(from: self.source, sequenceNumbers: state.held.keys.sorted().map { state.held[$0]! })
            } catch let error as HeraldError where error.code == .messageNotFound {
                continue  // another worker is on it
            }
            var transaction = BrokerTransaction()
            for message in held {
                transaction.deadLetter(
                    message.lockToken!, reason: "SequenceGapTimeout",
                    description: "sender sequence \(missing.lowerBound)...\(missing.upperBound - 1) never arrived within \(timeout)"
                )
            }
            state.next = last + 1
            state.held = [:]
            state.heldSince = nil
            transaction.write(try MessageCoding.encode(state), collection: Self.gateCollection, key: key, expectedVersion: document.version)
            do {
                _ = try await self.broker.commit(transaction)
                self.count { $0.deadLettered["SequenceGapTimeout", default: 0] += held.count }
            } catch let error as HeraldError where error.code == .concurrencyConflict || error.code == .lockLost {
                for message in held { _ = try? await self.broker.abandon(message.lockToken!, delay: nil) }
            }
        }
    }
}
