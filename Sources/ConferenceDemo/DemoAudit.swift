public import HeraldCQRS
public import HeraldCore

/// An order the demo places: its id and how many seats it asks for.
public struct DemoOrder: Sendable, Hashable {
    /// The order id.
    public var orderId: String
    /// The seats asked for: 1 to 4.
    public var seats: Int

    /// Creates an order.
    public init(orderId: String, seats: Int) {
        self.orderId = orderId
        self.seats = seats
    }

    /// `count` orders of 1 to 4 seats, the same for the same seed.
    public static func generate(count: Int, seed: UInt64) -> [DemoOrder] {
        let width = max(4, String(count).count)
        return (1...max(count, 1)).prefix(count).map { index in
            let digits = String(index)
            let id = String(repeating: "0", count: max(0, width - digits.count)) + digits
            return DemoOrder(orderId: id, seats: 1 + min(3, Int(SeededRoll.value(seed: seed, ["seats", id]) * 4)))
        }
    }
}

/// Everything the guarantees are checked against, read from the store after a run.
public struct DemoAudit: Sendable {
    /// The orders placed.
    public var orders: [DemoOrder]
    /// The read model: order summaries by order id.
    public var summaries: [String: OrderSummary]
    /// The registration processes by order id.
    public var processes: [String: RegistrationProcessManager]
    /// The conference's seats, folded from its whole stream.
    public var seats: SeatsAvailability
    /// Each order's payment, folded from its stream.
    public var payments: [String: Payment]
    /// `OrderConfirmed` and `OrderExpired` events in each order's stream.
    public var terminalEvents: [String: Int]
    /// `PaymentCompleted` events in each payment stream.
    public var paymentEvents: [String: Int]
    /// What each queue and subscription still holds.
    public var counts: [EntityPath: EntityCounts]
    /// Dead letters: message id → (queue or subscription, reason).
    public var deadLetters: [String: (entity: EntityPath, reason: String)]
    /// The dead letters the chaos expects: message id → reason.
    public var expectedDeadLetters: [String: String]
    /// What the chaos injected.
    public var chaos: Chaos.Counters
    /// Late duplicates the chaos still holds.
    public var pendingResends: Int
    /// The processors' statistics, by source.
    public var statistics: [EntityPath: MessageProcessor.Statistics]
    /// Orders whose registrant never pays.
    public var abandoned: Set<String>

    /// The processors' statistics, summed.
    public struct Totals: Sendable, Hashable {
        /// Messages whose handling committed.
        public var handled = 0
        /// Deliveries absorbed by an inbox (or a sequence gate) without a second effect.
        public var duplicatesSuppressed = 0
        /// Failed attempts retried.
        public var retries = 0
        /// Commits that found their lock lost.
        public var lockLosses = 0
        /// Messages held back by the sequence gate.
        public var held = 0
        /// Dead letters by reason.
        public var deadLettered: [String: Int] = [:]

        /// Adds `statistics`.
        mutating func add(_ statistics: MessageProcessor.Statistics) {
            self.handled += statistics.handled
            self.duplicatesSuppressed += statistics.duplicatesSuppressed
            self.retries += statistics.retries
            self.lockLosses += statistics.lockLosses
            self.held += statistics.held
            self.deadLettered.merge(statistics.deadLettered, uniquingKeysWith: +)
        }
    }

    /// The processors' statistics summed.
    public var totals: Totals {
        self.statistics.values.reduce(into: Totals()) { $0.add($1) }
    }

    /// Reads the audit from `system`'s store.
    ///
    /// - Parameters:
    ///   - system: The system that ran.
    ///   - orders: The orders placed.
    ///   - processors: The processors that ran, for their statistics.
    ///   - expectedDeadLetters: The poison messages sent, with their reasons.
    /// - Throws: The store's ``HeraldCore/HeraldError``, or a decoding error.
    public static func collect(
        system: ConferenceSystem, orders: [DemoOrder], processors: [(source: EntityPath, processor: MessageProcessor)],
        expectedDeadLetters: [String: String]
    ) async throws -> DemoAudit {
        let store = system.store
        var summaries: [String: OrderSummary] = [:]
        for (key, document) in try await store.documents(in: OrderSummaryProjection.collection) {
            summaries[key] = try MessageCoding.decode(OrderSummary.self, from: document.data)
        }
        var processes: [String: RegistrationProcessManager] = [:]
        for (key, document) in try await store.documents(in: "process.\(RegistrationProcessManager.processName)") {
            processes[key] = try MessageCoding.decode(RegistrationProcessManager.self, from: document.data)
        }
        var seats = SeatsAvailability(id: system.settings.conferenceId)
        var payments: [String: Payment] = [:]
        var terminalEvents: [String: Int] = [:]
        var paymentEvents: [String: Int] = [:]
        let seatsStream = SeatsAvailability.stream(system.settings.conferenceId)
        var position: Int64 = 0
        while true {
            let events = try await store.readAll(from: position + 1, maxCount: 1000)
            for recorded in events {
                position = recorded.position
                let type = recorded.event.type
                if recorded.stream == seatsStream {
                    if let event = try SeatsAvailability.eventTypes.decode(typeName: type, data: recorded.event.data) { seats.apply(event) }
                } else if recorded.stream.hasPrefix("\(Payment.category)-") {
                    let orderId = String(recorded.stream.dropFirst(Payment.category.count + 1))
                    if let event = try Payment.eventTypes.decode(typeName: type, data: recorded.event.data) {
                        payments[orderId, default: Payment(id: orderId)].apply(event)
                    }
                    if type == PaymentCompleted.typeName { paymentEvents[orderId, default: 0] += 1 }
                } else if recorded.stream.hasPrefix("\(Order.category)-"), type == OrderConfirmed.typeName || type == OrderExpired.typeName {
                    terminalEvents[String(recorded.stream.dropFirst(Order.category.count + 1)), default: 0] += 1
                }
            }
            if events.count < 1000 { break }
        }
        var counts: [EntityPath: EntityCounts] = [:]
        var deadLetters: [String: (entity: EntityPath, reason: String)] = [:]
        for entity in ConferenceEntities.receivable {
            counts[entity] = try await store.counts(of: entity)
            var next: Int64 = 1
            while true {
                let page = try await store.peek(entity.deadLetter, fromSequenceNumber: next, maxCount: 1000)
                for letter in page { deadLetters[letter.message.messageId] = (entity, letter.deadLetterReason ?? "") }
                guard let last = page.last, page.count == 1000 else { break }
                next = last.sequenceNumber + 1
            }
        }
        var statistics: [EntityPath: MessageProcessor.Statistics] = [:]
        for (source, processor) in processors { statistics[source] = processor.statistics }
        return DemoAudit(
            orders: orders, summaries: summaries, processes: processes, seats: seats, payments: payments, terminalEvents: terminalEvents,
            paymentEvents: paymentEvents, counts: counts, deadLetters: deadLetters, expectedDeadLetters: expectedDeadLetters,
            chaos: system.chaos.counters, pendingResends: system.chaos.pendingResends, statistics: statistics,
            abandoned: Set(orders.map(\.orderId).filter { system.settings.abandons(orderId: $0) })
        )
    }
}
