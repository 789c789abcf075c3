public import CoreMetrics
import Foundation
public import HeraldCore
public import Logging
public import ServiceLifecycle
import Synchronization
public import Tracing

/// Receives from a queue or subscription and dispatches each message to its handler.
///
/// - Bounded concurrency: `maxConcurrency` workers, each handling one message at a time.
/// - The workers' receives are merged: while one receive is under way, the workers that come for
///   messages queue, and the next receive asks for a batch (`receiveBatchSize`) for each of them
///   and shares them out. A worker never holds more than its own batch.
/// - The lock is renewed while a handler runs, on the processor's clock.
/// - Success commits, in one transaction, the handler's effects, its inbox record and the
///   completion of the message (GUARANTEES.md §4.8); a duplicate delivery finds its inbox record and
///   has no second effect. The inbox is read once for each batch received
///   (``/HeraldCore/TransactionalBroker/inboxEntries(among:)``); a handling that another consumer
///   commits meanwhile is still caught by the commit, which fails on the inbox record.
/// - A failing handler is retried by abandoning the message with an exponential, jittered delay
///   (``RetryPolicy``), and dead-lettered with reason ``ProcessorDeadLetterReason/handlerFailed``
///   after the last attempt. A message of an unknown type
///   (``ProcessorDeadLetterReason/unknownMessageType``) or that does not decode
///   (``ProcessorDeadLetterReason/undecodableMessage``) is dead-lettered at once.
/// - In session mode a worker accepts a session and handles its messages one by one, in order.
/// - With a ``Configuration/sequenceGate``, messages carrying `senderId` and `senderSequence`
///   are handled in sender order: one that is ahead is deferred until the gap fills, or until
///   the gate's timeout passes, when the held messages are dead-lettered
///   (``ProcessorDeadLetterReason/sequenceGapTimeout``).
///
/// It is a `Service`: run it in a `ServiceGroup`. Graceful shutdown drains it: the workers stop
/// receiving, each finishes the message it is handling (the handler runs to completion and the
/// message is settled), and the messages received but not yet started are abandoned, so that
/// another consumer gets them at once rather than when their locks expire. A receive already
/// waiting when shutdown begins ends within ``Configuration/maxWaitTime``; what it brings is
/// abandoned. ``stop()`` starts the same drain.
public final class MessageProcessor: Service, Sendable {
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
        /// Whether the processor receives through sessions; it must match the source's
        /// `requiresSession` option (`run()` throws ``/HeraldCore/HeraldError/Code/sessionRequired``
        /// or ``/HeraldCore/HeraldError/Code/sessionNotEnabled`` otherwise).
        ///
        /// When `true`, each worker accepts the next available session, handles its messages one
        /// by one in sequence order while renewing the session lock, and releases the session when
        /// it has none left; so messages of one session are never handled concurrently or out of
        /// order, while different sessions are handled by different workers at once. Each
        /// message's own lock is the session's, so it is not renewed separately.
        public var sessions: Bool
        /// Hold messages that are ahead of their sender's sequence for this long at most; `nil`: no reordering.
        public var sequenceGate: Duration?
        /// Where the processor's metrics go (see the README's "Tracing, metrics and logs"); `nil`:
        /// the factory `MetricsSystem.bootstrap` installed when the processor is created.
        public var metricsFactory: (any MetricsFactory)?
        /// How often ``MessageProcessor/run()`` records the source's depth and the age of its
        /// oldest message (``MessageProcessor/recordQueueMetrics()``); `nil`: never. Nothing is
        /// read from the store for it when no metrics backend is bootstrapped.
        public var queueMetricsInterval: Duration?
        /// Where the processor's spans go (see the README's "Tracing, metrics and logs"): by default
        /// the tracer in force when the configuration is made (bootstrapped, or bound with
        /// `withTracer`); `nil` for none. With one, each message is processed in a span that
        /// continues the trace the message carries, and what its handler sends carries the trace on.
        public var tracer: (any Tracer)?

        /// Creates a configuration.
        public init(
            name: String, maxConcurrency: Int = 4, receiveBatchSize: Int = 4, maxWaitTime: Duration = .milliseconds(500),
            retry: RetryPolicy = RetryPolicy(), sessions: Bool = false, sequenceGate: Duration? = nil,
            metricsFactory: (any MetricsFactory)? = nil, queueMetricsInterval: Duration? = .seconds(10)
        ) {
            self.name = name
            self.maxConcurrency = maxConcurrency
            self.receiveBatchSize = receiveBatchSize
            self.maxWaitTime = maxWaitTime
            self.retry = retry
            self.sessions = sessions
            self.sequenceGate = sequenceGate
            self.metricsFactory = metricsFactory
            self.queueMetricsInterval = queueMetricsInterval
            self.tracer = MessagingTracing.current
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

    let broker: any TransactionalBroker
    let source: EntityPath
    let handlers: MessageHandlers
    let configuration: Configuration
    let clock: any BrokerClock
    let logger: Logger
    let metrics: ProcessorMetrics
    let tracer: (any Tracer)?
    /// Set once graceful shutdown (or ``stop()``) begins; never cleared.
    private let draining = Atomic<Bool>(false)
    private let stats = Mutex(Statistics())
    /// Renews the locks of the messages being handled, while ``run()`` or ``processAvailable()`` runs.
    let lockRenewer: LockRenewer
    /// Merges the workers' receives (not in session mode, where each worker receives from its session).
    let receiveCoalescer = ReceiveCoalescer<ReceivedMessage, InboxSnapshot>(maxCount: HeraldLimits.maxReceiveCount)
    /// When the sequence gate last looked for expired gaps (monotonic).
    let lastGapSweep = Mutex<Duration?>(nil)

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
        self.metrics = ProcessorMetrics(source: source, name: configuration.name, factory: configuration.metricsFactory)
        self.tracer = MessagingTracing.active(configuration.tracer)
        self.lockRenewer = LockRenewer(clock: clock)
    }

    /// What the processor has done so far.
    public var statistics: Statistics { self.stats.withLock { $0 } }

    /// Drains the processor as graceful shutdown does: the workers stop receiving, finish the
    /// message each is handling and abandon the rest, and ``run()`` returns.
    public func stop() {
        self.draining.store(true, ordering: .releasing)
    }

    /// Whether graceful shutdown (or ``stop()``) has begun.
    var isDraining: Bool { self.draining.load(ordering: .acquiring) }

    /// Errors that no retry can cure: the store stopped, or the source cannot be received from
    /// as configured (it does not exist, its name is invalid, it is a topic, or its sessions
    /// setting differs from the processor's).
    private static let fatalCodes: Set<HeraldError.Code> = [
        .storeFailed, .storeClosed, .entityNotFound, .invalidName, .invalidArgument, .sessionRequired, .sessionNotEnabled,
    ]

    /// Runs the workers until graceful shutdown (which drains them: see ``MessageProcessor``),
    /// ``stop()``, or cancellation of the task.
    ///
    /// - Throws: The ``/HeraldCore/HeraldError`` that stops it: ``/HeraldCore/HeraldError/Code/storeFailed``
    ///   or ``/HeraldCore/HeraldError/Code/storeClosed`` from the store, or
    ///   ``/HeraldCore/HeraldError/Code/entityNotFound``, ``/HeraldCore/HeraldError/Code/invalidName``,
    ///   ``/HeraldCore/HeraldError/Code/invalidArgument``, ``/HeraldCore/HeraldError/Code/sessionRequired``
    ///   or ``/HeraldCore/HeraldError/Code/sessionNotEnabled`` when the source cannot be received
    ///   from as configured. Other failures are logged and retried.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await self.runWorkers()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func runWorkers() async throws {
        let workers = max(1, self.configuration.maxConcurrency)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.lockRenewer.run() }
            if let interval = self.configuration.queueMetricsInterval, self.metrics.isEnabled {
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await self.recordQueueMetrics()
                        } catch {
                            self.logger.debug("recording the queue metrics failed", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(for: interval)
                    }
                }
            }
            for _ in 0..<workers {
                group.addTask {
                    while !self.isDraining && !Task.isCancelled {
                        do {
                            _ = try await self.receiveAndHandle(maxWaitTime: self.configuration.maxWaitTime)
                        } catch let error as HeraldError where Self.fatalCodes.contains(error.code) {
                            throw error
                        } catch {
                            self.logger.warning("receive failed", metadata: ["error": "\(error)"])
                            try? await Task.sleep(for: .milliseconds(100))
                        }
                    }
                }
            }
            // The workers end (or one throws); the lock renewer and the metrics task, which never
            // end by themselves, are cancelled.
            for _ in 0..<workers { _ = try await group.next() }
            group.cancelAll()
        }
    }

    /// Records the source's depth by state and the age of its oldest waiting message in the
    /// gauges `messaging.herald.queue.depth` and `messaging.herald.queue.oldest_message.age`.
    /// ``run()`` does it every ``Configuration/queueMetricsInterval``; without a metrics backend it
    /// reads nothing.
    public func recordQueueMetrics() async throws {
        guard self.metrics.isEnabled else { return }
        let counts = try await self.broker.counts(of: self.source)
        var oldestAge = 0.0
        if counts.active + counts.locked > 0 {
            // The oldest message waiting is the first active one in sequence order; scheduled and
            // deferred ones before it are skipped, a few pages at most.
            let now = self.clock.now()
            var from: Int64 = 0
            pages: for _ in 0..<4 {
                let page = try await self.broker.peek(self.source, fromSequenceNumber: from, maxCount: 100)
                for message in page where message.state == .active && message.enqueuedTime <= now {
                    oldestAge = now.timeIntervalSince(message.enqueuedTime)
                    break pages
                }
                guard let last = page.last, page.count == 100 else { break }
                from = last.sequenceNumber + 1
            }
        }
        self.metrics.queue(counts, oldestAge: oldestAge)
    }

    /// Handles what is available now, one batch (or one session) at a time, until a receive
    /// comes back empty; returns how many messages it handled. For tests and harnesses.
    @discardableResult
    public func processAvailable() async throws -> Int {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.lockRenewer.run() }
            defer { group.cancelAll() }
            var total = 0
            while true {
                let count = try await self.receiveAndHandle(maxWaitTime: .zero)
                if count == 0 { return total }
                total += count
            }
        }
    }

    /// Receives once (or accepts one session and receives its messages) and handles what came;
    /// returns the number of messages received.
    private func receiveAndHandle(maxWaitTime: Duration) async throws -> Int {
        try await self.releaseExpiredGaps()
        if self.configuration.sessions {
            let session: SessionLock
            do {
                session = try await self.broker.acceptSession(on: self.source, sessionId: nil, maxWaitTime: maxWaitTime)
            } catch let error as HeraldError where error.code == .noSessionAvailable {
                return 0
            }
            let count = try await self.withLockRenewal(session, lockedUntil: { $0.lockedUntil }, renew: { [broker] in try await broker.renewSessionLock($0) }) {
                var count = 0
                while !self.isDraining {
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
        let (messages, inbox) = try await self.receiveCoalescer.receive(count: self.configuration.receiveBatchSize) { count in
            let messages = try await self.broker.receive(from: self.source, maxCount: count, maxWaitTime: maxWaitTime, mode: .peekLock)
            return (messages, try await self.readInbox(for: messages))
        }
        try await self.handle(messages, inbox: inbox)
        return messages.count
    }

    private func handle(_ messages: [ReceivedMessage], inbox: InboxSnapshot? = nil) async throws {
        let inbox = if let inbox { inbox } else { try await self.readInbox(for: messages) }
        for (index, message) in messages.enumerated() {
            if self.isDraining {
                // Draining: what was received but not started goes back at once.
                for rest in messages[index...] {
                    if let token = rest.lockToken { _ = try? await self.broker.abandon(token, delay: nil) }
                }
                return
            }
            try await self.process(message, inbox: inbox)
        }
    }

    /// Changes the statistics, and the metrics with them.
    func count(_ change: (inout Statistics) -> Void) {
        guard self.metrics.isEnabled else {
            self.stats.withLock { change(&$0) }
            return
        }
        let (before, after) = self.stats.withLock { statistics in
            let before = statistics
            change(&statistics)
            return (before, statistics)
        }
        self.metrics.changed(from: before, to: after)
    }
}
