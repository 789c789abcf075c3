import Foundation
public import HeraldCQRS
public import HeraldCore
public import Logging

/// The queues, topics and subscriptions of the conference registration.
public enum ConferenceEntities {
    /// Commands to the Order aggregate.
    public static let orders = EntityPath.queue("orders")
    /// Commands to the SeatsAvailability aggregate.
    public static let seats = EntityPath.queue("seats")
    /// Commands to the Payment aggregate.
    public static let payments = EntityPath.queue("payments")
    /// The process manager's queue: the order's events in stream order (sequence gate), and its timeouts.
    public static let registration = EntityPath.queue("registration")
    /// Order events.
    public static let orderEvents = EntityPath.topic("order-events")
    /// Seat events.
    public static let seatEvents = EntityPath.topic("seat-events")
    /// Payment events.
    public static let paymentEvents = EntityPath.topic("payment-events")
    /// `OrderReservationCompleted` for the registrants, who then pay.
    public static let registrants = EntityPath.subscription("registrants", of: "order-events")
    /// `SeatsReserved` for the process manager.
    public static let seatsReserved = EntityPath.subscription("registration-reserved", of: "seat-events")
    /// `SeatReservationRejected` for the process manager.
    public static let seatsRejected = EntityPath.subscription("registration-rejected", of: "seat-events")
    /// `PaymentCompleted` for the process manager.
    public static let paymentCompleted = EntityPath.subscription("registration", of: "payment-events")

    /// Every queue and subscription.
    public static let receivable: [EntityPath] = [orders, seats, payments, registration, registrants, seatsReserved, seatsRejected, paymentCompleted]

    /// The topic an event type is published to, for the types some subscription receives.
    static func subscribedTopic(ofEventType type: String) -> EntityPath? {
        switch type {
        case OrderReservationCompleted.typeName: orderEvents
        case SeatsReserved.typeName, SeatReservationRejected.typeName: seatEvents
        case PaymentCompleted.typeName: paymentEvents
        default: nil
        }
    }
}

/// The business settings of the conference.
public struct ConferenceSettings: Sendable, Hashable {
    /// The conference.
    public var conferenceId: String
    /// The price of a seat, in cents.
    public var seatPrice: Int
    /// How long a reservation waits for its payment.
    public var reservationTimeout: Duration
    /// The share of registrants who never pay, and are expired by the timeout.
    public var abandonRate: Double
    /// The seed of who abandons.
    public var seed: UInt64
    /// The lock duration of the `payments` queue (short under chaos, so stalls lose it).
    public var paymentsLockDuration: Duration
    /// The duplicate-detection window of the command queues and the topics.
    public var duplicateDetectionWindow: Duration

    /// Creates settings.
    public init(
        conferenceId: String = "swift-conf", seatPrice: Int = 15_000, reservationTimeout: Duration = .seconds(10), abandonRate: Double = 0.02,
        seed: UInt64 = 42, paymentsLockDuration: Duration = .seconds(1), duplicateDetectionWindow: Duration = .seconds(2)
    ) {
        self.conferenceId = conferenceId
        self.seatPrice = seatPrice
        self.reservationTimeout = reservationTimeout
        self.abandonRate = abandonRate
        self.seed = seed
        self.paymentsLockDuration = paymentsLockDuration
        self.duplicateDetectionWindow = duplicateDetectionWindow
    }

    /// Whether the registrant of `orderId` abandons the checkout.
    public func abandons(orderId: String) -> Bool {
        SeededRoll.value(seed: self.seed, ["abandon", orderId]) < self.abandonRate
    }
}

/// The conference registration of the CQRS Journey on a Herald store: its entities, the handlers
/// of the Order, SeatsAvailability and Payment aggregates, the registration process manager, the
/// simulated registrants and the order-summary read model.
///
/// ```swift
/// let system = ConferenceSystem(store: broker, clock: clock, settings: ConferenceSettings(), chaos: Chaos(settings: .off))
/// try await system.createEntities()
/// try await system.addSeats(500)
/// for (source, processor) in system.makeProcessors() { ... run or processAvailable() ... }
/// ```
public final class ConferenceSystem: Sendable {
    /// The store.
    public let store: any TransactionalBroker
    /// The clock the processors read.
    public let clock: any BrokerClock
    /// The business settings.
    public let settings: ConferenceSettings
    /// The chaos.
    public let chaos: Chaos
    /// The read model of order summaries.
    public let projection: OrderSummaryProjection
    /// How long the process manager's queue holds an event that is ahead of its stream's order
    /// (its sequence gate); `nil` turns the gate off, to show what it prevents.
    public let sequenceGate: Duration?
    let seatsCache = SeatsCache()
    let chaosBroker: ChaosBroker
    private let logger: Logger

    /// The retry policy of every processor: enough attempts that injected crashes and lost locks
    /// never exhaust them, short back-offs so the demo stays quick.
    public static let retry = RetryPolicy(maxAttempts: 15, baseDelay: .milliseconds(50), maxDelay: .seconds(2), jitter: 0.5)

    /// A system on `store`.
    ///
    /// - Parameters:
    ///   - store: The store (the embedded SQLite store in the demo).
    ///   - clock: The clock the store reads.
    ///   - settings: The business settings.
    ///   - chaos: What to inject.
    ///   - sequenceGate: The process manager's sequence gate; `nil`: none.
    ///   - logger: Where the processors log.
    public init(
        store: any TransactionalBroker, clock: any BrokerClock, settings: ConferenceSettings, chaos: Chaos,
        sequenceGate: Duration? = .seconds(30), logger: Logger = Logger(label: "herald.demo")
    ) {
        self.sequenceGate = sequenceGate
        self.store = store
        self.clock = clock
        self.settings = settings
        self.chaos = chaos
        self.projection = OrderSummaryProjection(store: store)
        self.chaosBroker = ChaosBroker(base: store)
        self.logger = logger
    }

    /// Creates the queues, topics and subscriptions.
    ///
    /// - Throws: The store's ``HeraldCore/HeraldError``.
    public func createEntities() async throws {
        let window = self.settings.duplicateDetectionWindow
        let options = EntityOptions(maxDeliveryCount: 20, duplicateDetectionWindow: window)
        try await self.store.createQueue(ConferenceEntities.orders.name, options: options)
        try await self.store.createQueue(ConferenceEntities.seats.name, options: options)
        var payments = options
        payments.lockDuration = self.chaos.settings.enabled ? self.settings.paymentsLockDuration : .seconds(60)
        try await self.store.createQueue(ConferenceEntities.payments.name, options: payments)
        try await self.store.createQueue(ConferenceEntities.registration.name, options: EntityOptions(maxDeliveryCount: 20))
        for topic in [ConferenceEntities.orderEvents, ConferenceEntities.seatEvents, ConferenceEntities.paymentEvents] {
            try await self.store.createTopic(topic.name, options: EntityOptions(duplicateDetectionWindow: window))
        }
        let subscriptions: [(EntityPath, String)] = [
            (ConferenceEntities.registrants, OrderReservationCompleted.typeName),
            (ConferenceEntities.seatsReserved, SeatsReserved.typeName),
            (ConferenceEntities.seatsRejected, SeatReservationRejected.typeName),
            (ConferenceEntities.paymentCompleted, PaymentCompleted.typeName),
        ]
        for (path, subject) in subscriptions {
            try await self.store.createSubscription(
                path.name, topic: path.topic!, options: EntityOptions(maxDeliveryCount: 20), filter: SubscriptionFilter(subject: subject)
            )
        }
    }

    /// Adds `seats` to the conference's capacity (an event appended outside any handler).
    ///
    /// - Throws: The store's ``HeraldCore/HeraldError``.
    public func addSeats(_ seats: Int) async throws {
        try await EventStore(broker: self.store, publishTo: ConferenceEntities.seatEvents).append(
            [SeatsAdded(conferenceId: self.settings.conferenceId, seats: seats)], to: SeatsAvailability.stream(self.settings.conferenceId),
            expectedVersion: .any
        )
    }

    /// Places an order: sends `RegisterToConference`, twice at once for some orders under chaos,
    /// and again after the window for some others.
    ///
    /// - Throws: The store's ``HeraldCore/HeraldError``.
    public func register(orderId: String, seats: Int) async throws {
        let command = RegisterToConference(orderId: orderId, conferenceId: self.settings.conferenceId, seats: seats)
        let message = try MessageCoding.message(for: command, correlationId: orderId, causationId: nil)
        try await self.store.send(message, to: ConferenceEntities.orders)
        if self.chaos.sendsTwice(orderId: orderId) {
            self.chaos.recordImmediateDuplicate(try await self.store.send(message, to: ConferenceEntities.orders))
        }
        if self.chaos.resendsLate(command.commandId) {
            self.chaos.scheduleLateDuplicate(message, to: ConferenceEntities.orders, now: self.clock.now())
        }
    }

    /// One processor per queue and subscription, built on the store and the clock.
    ///
    /// - Parameter realTime: Whether the processors will `run()` (more workers, a receive wait)
    ///   rather than be driven by `processAvailable()`.
    /// - Returns: Each processor with the queue or subscription it reads.
    public func makeProcessors(realTime: Bool = true) -> [(source: EntityPath, processor: MessageProcessor)] {
        let specs: [(EntityPath, MessageHandlers, Int, Int, Bool)] = [
            // source, handlers, workers, batch, through the chaos broker
            (ConferenceEntities.orders, self.orderHandlers(), 2, 8, false),
            (ConferenceEntities.seats, self.seatsHandlers(), 1, 16, false),
            (ConferenceEntities.payments, self.paymentHandlers(), 3, 4, true),
            (ConferenceEntities.registration, self.registrationHandlers(), 2, 8, false),
            (ConferenceEntities.seatsReserved, self.seatsReservedHandlers(), 1, 8, false),
            (ConferenceEntities.seatsRejected, self.seatsRejectedHandlers(), 1, 8, false),
            (ConferenceEntities.paymentCompleted, self.paymentCompletedHandlers(), 1, 8, false),
            (ConferenceEntities.registrants, self.registrantHandlers(), 1, 8, false),
        ]
        return specs.map { source, handlers, workers, batch, chaotic in
            let configuration = MessageProcessor.Configuration(
                name: source.description, maxConcurrency: realTime ? workers : 1, receiveBatchSize: batch,
                maxWaitTime: realTime ? .milliseconds(500) : .zero, retry: Self.retry,
                sequenceGate: source == ConferenceEntities.registration ? self.sequenceGate : nil
            )
            let processor = MessageProcessor(
                broker: chaotic ? self.chaosBroker : self.store, source: source, handlers: handlers, configuration: configuration,
                clock: self.clock, logger: self.logger
            )
            return (source, processor)
        }
    }

    /// Registers `handler` for `type` under `name`, crashing it now and then under chaos.
    func on<C: Command>(
        _ type: C.Type, name: String, in handlers: inout MessageHandlers, _ handler: @escaping @Sendable (C, HandlerContext) async throws -> Void
    ) {
        handlers.on(type, name: name) { command, context in
            try await handler(command, context)
            try self.chaos.maybeCrash(context)
        }
    }

    /// Registers `handler` for `type` under `name`, crashing it now and then under chaos.
    func on<E: Event>(
        _ type: E.Type, name: String, in handlers: inout MessageHandlers, _ handler: @escaping @Sendable (E, HandlerContext) async throws -> Void
    ) {
        handlers.on(type, name: name) { event, context in
            try await handler(event, context)
            try self.chaos.maybeCrash(context)
        }
    }
}
