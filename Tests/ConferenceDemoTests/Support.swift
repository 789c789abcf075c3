import ConferenceDemo
import HeraldCQRS
import HeraldCore
import HeraldTesting

/// The conference registration on a test harness: manual clock, processors driven by `runUntilIdle`.
struct ConferenceOnHarness {
    let harness: HeraldTestHarness
    let system: ConferenceSystem
    let processors: [(source: EntityPath, processor: MessageProcessor)]
    let expectedDeadLetters: [String: String]

    init(
        _ harness: HeraldTestHarness, capacity: Int, settings: ConferenceSettings = ConferenceSettings(), chaos: ChaosSettings = .off,
        sequenceGate: Duration? = .seconds(30)
    ) async throws {
        self.harness = harness
        // A stall passes on the manual clock, so the stalled delivery's lock expires at once.
        let chaos = Chaos(settings: chaos, stall: { harness.advance(by: $0) })
        self.system = ConferenceSystem(store: harness.store, clock: harness.clock, settings: settings, chaos: chaos, sequenceGate: sequenceGate)
        try await self.system.createEntities()
        try await self.system.addSeats(capacity)
        self.processors = self.system.makeProcessors(realTime: false)
        for (source, processor) in self.processors { harness.register(processor, source: source) }
        harness.register(self.system.projection)
        self.expectedDeadLetters = try await chaos.sendPoison(to: harness.store)
    }

    func place(_ orders: [DemoOrder]) async throws {
        for order in orders { try await self.system.register(orderId: order.orderId, seats: order.seats) }
    }

    /// Runs until idle; then, while messages wait for their time or late duplicates are due,
    /// moves the clock a second and runs again.
    func settle(limit: Duration = .seconds(600)) async throws {
        var elapsed = Duration.zero
        while true {
            try await self.harness.runUntilIdle()
            try await self.system.chaos.tick(store: self.harness.store, now: self.harness.clock.now())
            if try await self.harness.runUntilIdle() == 0, self.system.chaos.pendingResends == 0 {
                var waiting = 0
                for entity in ConferenceEntities.receivable {
                    let counts = try await self.harness.counts(of: entity)
                    waiting += counts.active + counts.locked + counts.scheduled + counts.deferred
                }
                if waiting == 0 { return }
            }
            guard elapsed < limit else { throw HeraldTestHarness.ExpectationFailure("not settled after \(limit) of clock time") }
            self.harness.advance(by: .seconds(1))
            elapsed += .seconds(1)
        }
    }

    func summary(_ orderId: String) async throws -> OrderSummary? {
        try await self.harness.document(OrderSummary.self, collection: OrderSummaryProjection.collection, key: orderId)
    }

    func process(_ orderId: String) async throws -> RegistrationProcessManager? {
        try await self.harness.document(RegistrationProcessManager.self, collection: "process.registration", key: orderId)
    }

    func seats() async throws -> SeatsAvailability {
        var seats = SeatsAvailability(id: self.system.settings.conferenceId)
        let stream = SeatsAvailability.stream(self.system.settings.conferenceId)
        for event in try await self.harness.events(inStream: stream, types: SeatsAvailability.eventTypes) { seats.apply(event) }
        return seats
    }

    func audit(_ orders: [DemoOrder]) async throws -> DemoAudit {
        try await DemoAudit.collect(system: self.system, orders: orders, processors: self.processors, expectedDeadLetters: self.expectedDeadLetters)
    }
}
