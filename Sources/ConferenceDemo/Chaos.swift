public import Foundation
import HeraldCQRS
public import HeraldCore
import Synchronization

/// What the demo's chaos injects, and how often. Every decision is a hash of the seed and what
/// it concerns (an order id, a message id and its delivery count), so a seed reproduces the same
/// decisions whatever the scheduling.
public struct ChaosSettings: Sendable, Hashable {
    /// Whether chaos is on.
    public var enabled: Bool
    /// The seed of every decision.
    public var seed: UInt64
    /// The share of deliveries whose handler throws after staging its effects (a crash before the commit).
    public var crashRate: Double
    /// The share of orders whose registration is sent twice at once (inside the duplicate-detection window).
    public var immediateDuplicateRate: Double
    /// The share of commands and events sent again after the duplicate-detection window.
    public var lateDuplicateRate: Double
    /// How long after the first a late duplicate is sent: longer than the window.
    public var lateDuplicateDelay: Duration
    /// The share of first payment deliveries whose gateway stalls past the lock.
    public var stallRate: Double
    /// The most stalls in one run (each costs its handler the lock duration and a bit).
    public var maxStalls: Int
    /// The share of orders whose two first events reach the process manager swapped.
    public var reorderRate: Double
    /// Registrations whose body does not decode (dead-lettered `UndecodableMessage`).
    public var undecodableMessages: Int
    /// Messages of a type no handler knows (dead-lettered `UnknownMessageType`).
    public var unknownMessages: Int

    /// No chaos.
    public static let off = ChaosSettings(enabled: false, seed: 1)

    /// Creates settings; the defaults are the demo's chaos.
    public init(
        enabled: Bool = true, seed: UInt64 = 42, crashRate: Double = 0.07, immediateDuplicateRate: Double = 0.05,
        lateDuplicateRate: Double = 0.05, lateDuplicateDelay: Duration = .seconds(3), stallRate: Double = 0.02, maxStalls: Int = 8,
        reorderRate: Double = 0.3, undecodableMessages: Int = 2, unknownMessages: Int = 1
    ) {
        self.enabled = enabled
        self.seed = seed
        self.crashRate = crashRate
        self.immediateDuplicateRate = immediateDuplicateRate
        self.lateDuplicateRate = lateDuplicateRate
        self.lateDuplicateDelay = lateDuplicateDelay
        self.stallRate = stallRate
        self.maxStalls = maxStalls
        self.reorderRate = reorderRate
        self.undecodableMessages = undecodableMessages
        self.unknownMessages = unknownMessages
    }
}

/// The error an injected crash throws.
struct InjectedCrash: Error, CustomStringConvertible {
    let description: String
}

/// Injects the demo's failures and counts what it injected.
///
/// - Duplicates: some registrations are sent twice at once (the broker's duplicate detection
///   absorbs the second), and some commands and events are sent again after the window (the
///   handlers' inbox absorbs them).
/// - Crashes: handlers throw after staging their effects; the processor retries with back-off.
/// - Lock expiry: the payment gateway stalls past the `payments` queue's short lock while its
///   lock renewal is held back (as in a frozen process); the message is delivered again.
/// - Reordering: an order's first two events reach the process manager swapped; its sequence
///   gate holds the second until the first is handled.
/// - Poison: a few messages that cannot be handled; they must end, and end alone, in the
///   dead-letter queue.
public final class Chaos: Sendable {
    /// What was injected so far.
    public struct Counters: Sendable, Hashable {
        /// Handler crashes thrown.
        public var crashes = 0
        /// Payment-gateway stalls past the lock.
        public var stalls = 0
        /// Registrations sent twice at once.
        public var immediateDuplicates = 0
        /// Of those, acknowledged by the broker as duplicates.
        public var immediateDuplicatesAbsorbed = 0
        /// Commands and events sent again after the window.
        public var lateDuplicates = 0
        /// Of those, still caught by the broker (none expected: they are outside the window).
        public var lateDuplicatesAbsorbedByBroker = 0
        /// Orders whose first two events were sent to the process manager swapped.
        public var swappedPairs = 0
        /// Poison messages sent, by the reason they should be dead-lettered with.
        public var poison: [String: Int] = [:]
    }

    private struct Resend: Sendable {
        var due: Date
        var message: Message
        var entity: EntityPath
    }

    private struct State {
        var counters = Counters()
        var resends: [Resend] = []
        var resent: Set<String> = []
        var stalled: Set<String> = []
        var swapped: Set<String> = []
        var scannedPosition: Int64 = 0
    }

    /// The settings.
    public let settings: ChaosSettings
    private let stall: @Sendable (Duration) async -> Void
    private let state = Mutex(State())

    /// Chaos with `settings`.
    ///
    /// - Parameters:
    ///   - settings: What to inject.
    ///   - stall: How a stall passes time: a real sleep, or moving a manual clock in tests.
    public init(settings: ChaosSettings, stall: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }) {
        self.settings = settings
        self.stall = stall
    }

    /// What was injected so far.
    public var counters: Counters { self.state.withLock { $0.counters } }

    /// Late duplicates waiting to be sent.
    public var pendingResends: Int { self.state.withLock { $0.resends.count } }

    /// A number in 0..<1 fixed by the seed and `parts`.
    func roll(_ parts: String...) -> Double {
        SeededRoll.value(seed: self.settings.seed, parts)
    }

    // MARK: Crashes

    /// Throws, as a crash before the commit would, for the share of deliveries the settings say.
    func maybeCrash(_ context: HandlerContext) throws {
        guard self.settings.enabled else { return }
        let message = context.message
        guard self.roll("crash", context.handlerName, message.message.messageId, String(message.deliveryCount)) < self.settings.crashRate else {
            return
        }
        self.state.withLock { $0.counters.crashes += 1 }
        throw InjectedCrash(description: "injected crash in \(context.handlerName), delivery \(message.deliveryCount)")
    }

    // MARK: Lock expiry

    /// Stalls the first delivery of some payments past `lockDuration`, holding back its lock
    /// renewal meanwhile, so the lock expires and the message is delivered again.
    func maybeStall(_ context: HandlerContext, broker: ChaosBroker, lockDuration: Duration) async throws {
        guard self.settings.enabled, context.message.deliveryCount == 1, let token = context.message.lockToken else { return }
        let id = context.message.message.messageId
        guard self.roll("stall", id) < self.settings.stallRate else { return }
        let go = self.state.withLock { state -> Bool in
            guard state.stalled.count < self.settings.maxStalls, state.stalled.insert(id).inserted else { return false }
            state.counters.stalls += 1
            return true
        }
        guard go else { return }
        broker.freeze(token)
        defer { broker.thaw(token) }
        await self.stall(lockDuration + .milliseconds(500))
    }

    // MARK: Reordering

    /// Whether the first two events of `orderId` go to the process manager swapped.
    func swapsEventPair(orderId: String) -> Bool {
        guard self.settings.enabled, self.roll("swap", orderId) < self.settings.reorderRate else { return false }
        self.state.withLock { state in
            if state.swapped.insert(orderId).inserted { state.counters.swappedPairs += 1 }
        }
        return true
    }

    // MARK: Duplicates

    /// Whether the registration of `orderId` is sent twice at once.
    func sendsTwice(orderId: String) -> Bool {
        self.settings.enabled && self.roll("twice", orderId) < self.settings.immediateDuplicateRate
    }

    /// Counts an immediate duplicate and whether the broker absorbed it.
    func recordImmediateDuplicate(_ receipt: SendReceipt) {
        self.state.withLock { state in
            state.counters.immediateDuplicates += 1
            if receipt.isDuplicate { state.counters.immediateDuplicatesAbsorbed += 1 }
        }
    }

    /// Whether the message `messageId` is sent again after the window.
    func resendsLate(_ messageId: String) -> Bool {
        self.settings.enabled && self.roll("late", messageId) < self.settings.lateDuplicateRate
    }

    /// Sends `message` to `entity` again at `now` + ``ChaosSettings/lateDuplicateDelay``, once per message id.
    func scheduleLateDuplicate(_ message: Message, to entity: EntityPath, now: Date) {
        self.state.withLock { state in
            guard state.resent.insert("\(entity)|\(message.messageId)").inserted else { return }
            state.resends.append(Resend(due: now.addingTimeInterval(self.settings.lateDuplicateDelay.timeInterval), message: message, entity: entity))
        }
    }

    /// Picks late duplicates among the events appended since the last call (events re-published
    /// as a relay that lost its progress would), then sends the late duplicates that are due.
    ///
    /// - Parameters:
    ///   - store: The store.
    ///   - now: The store clock's now.
    public func tick(store: any TransactionalBroker, now: Date) async throws {
        guard self.settings.enabled else { return }
        var position = self.state.withLock { $0.scannedPosition }
        while true {
            let events = try await store.readAll(from: position + 1, maxCount: 500)
            for recorded in events {
                position = recorded.position
                guard let topic = ConferenceEntities.subscribedTopic(ofEventType: recorded.event.type) else { continue }
                let id = RecordedEvent.messageId(stream: recorded.stream, version: recorded.version)
                guard self.resendsLate(id) else { continue }
                let message = Message(
                    messageId: id, body: recorded.event.data, contentType: "application/json", subject: recorded.event.type,
                    correlationId: recorded.event.correlationId, causationId: recorded.event.causationId,
                    applicationProperties: ["stream": .string(recorded.stream), "version": .int(recorded.version)]
                )
                self.scheduleLateDuplicate(message, to: topic, now: now)
            }
            if events.count < 500 { break }
        }
        let due = self.state.withLock { state -> [Resend] in
            state.scannedPosition = position
            let due = state.resends.filter { $0.due <= now }
            state.resends.removeAll { $0.due <= now }
            return due
        }
        for resend in due {
            let receipt = try await store.send(resend.message, to: resend.entity)
            self.state.withLock { state in
                state.counters.lateDuplicates += 1
                if receipt.isDuplicate { state.counters.lateDuplicatesAbsorbedByBroker += 1 }
            }
        }
    }

    // MARK: Poison

    /// Sends the poison messages to the `orders` queue (none when chaos is off).
    ///
    /// - Parameter broker: The store.
    /// - Returns: Their message ids, each with the reason it must be dead-lettered with.
    /// - Throws: The store's ``HeraldCore/HeraldError``.
    public func sendPoison(to broker: any MessageBroker) async throws -> [String: String] {
        guard self.settings.enabled else { return [:] }
        var expected: [String: String] = [:]
        for index in 0..<self.settings.undecodableMessages {
            let id = "poison-undecodable-\(index + 1)"
            let truncated = Data(#"{"orderId": 17, "seats": "#.utf8)
            try await broker.send(
                Message(messageId: id, body: truncated, contentType: "application/json", subject: RegisterToConference.typeName),
                to: ConferenceEntities.orders
            )
            expected[id] = ProcessorDeadLetterReason.undecodableMessage
        }
        for index in 0..<self.settings.unknownMessages {
            let id = "poison-unknown-\(index + 1)"
            try await broker.send(
                Message(messageId: id, body: Data("{}".utf8), contentType: "application/json", subject: "conference.RegisterToWorkshop"),
                to: ConferenceEntities.orders
            )
            expected[id] = ProcessorDeadLetterReason.unknownMessageType
        }
        self.state.withLock { state in
            for reason in expected.values { state.counters.poison[reason, default: 0] += 1 }
        }
        return expected
    }
}

/// Decisions fixed by a seed: a number in 0..<1 from the seed and what the decision concerns,
/// the same in every run and whatever the scheduling.
enum SeededRoll {
    static func value(seed: UInt64, _ parts: [String]) -> Double {
        // FNV-1a over the seed and the parts, then SplitMix64's finalizer.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for part in parts {
            for byte in part.utf8 {
                hash ^= UInt64(byte)
                hash &*= 0x100_0000_01b3
            }
            hash ^= 0xff
            hash &*= 0x100_0000_01b3
        }
        hash ^= hash >> 30
        hash &*= 0xbf58_476d_1ce4_e5b9
        hash ^= hash >> 27
        hash &*= 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return Double(hash >> 11) / Double(1 << 53)
    }
}
