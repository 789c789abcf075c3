import ConferenceDemo
import HeraldCQRS
import HeraldCore
import HeraldTesting
import Testing

@Suite struct ConferenceTests {
    @Test func anOrderIsConfirmedEndToEnd() async throws {
        try await HeraldTestHarness.run { harness in
            let conference = try await ConferenceOnHarness(harness, capacity: 10, settings: ConferenceSettings(abandonRate: 0))
            try await conference.place([DemoOrder(orderId: "A", seats: 3)])
            try await conference.settle()

            let summary = try #require(try await conference.summary("A"))
            #expect(summary.status == .confirmed)
            #expect(summary.confirmations == 1 && summary.expirations == 0)
            #expect(summary.total == 3 * conference.system.settings.seatPrice)
            let seats = try await conference.seats()
            #expect(seats.sold == 3 && seats.available == 7 && seats.pending.isEmpty)
            #expect(try await conference.process("A")?.status == .confirmed)
            let payments = try await harness.events(inStream: Payment.stream("A"), types: Payment.eventTypes)
            #expect(payments.count == 1 && payments.first is PaymentCompleted)
            try await harness.expectIdle()
            try await harness.expectNoDeadLetters()
            #expect(harness.clock.now() == HeraldTestHarness.defaultStart, "no time had to pass: the timeout was cancelled")
        }
    }

    @Test func anOrderBeyondCapacityExpiresSoldOut() async throws {
        try await HeraldTestHarness.run { harness in
            let conference = try await ConferenceOnHarness(harness, capacity: 4, settings: ConferenceSettings(abandonRate: 0))
            try await conference.place([DemoOrder(orderId: "A", seats: 3), DemoOrder(orderId: "B", seats: 2)])
            try await conference.settle()

            #expect(try await conference.summary("A")?.status == .confirmed)
            let rejected = try #require(try await conference.summary("B"))
            #expect(rejected.status == .expired && rejected.expiry == .soldOut && rejected.expirations == 1)
            #expect(try await conference.process("B")?.expiry == .soldOut)
            let seats = try await conference.seats()
            #expect(seats.sold == 3 && seats.available == 1)
            #expect(try await harness.events(inStream: Payment.stream("B"), types: Payment.eventTypes).isEmpty)
            try await harness.expectIdle()  // B's reservation timeout was cancelled, not left scheduled
            try await harness.expectNoDeadLetters()
        }
    }

    @Test func theReservationTimeoutExpiresAnUnpaidOrderAndReleasesItsSeats() async throws {
        try await HeraldTestHarness.run { harness in
            let settings = ConferenceSettings(reservationTimeout: .seconds(10), abandonRate: 1)  // nobody pays
            let conference = try await ConferenceOnHarness(harness, capacity: 5, settings: settings)
            try await conference.place([DemoOrder(orderId: "A", seats: 4)])
            try await harness.runUntilIdle()

            #expect(try await conference.summary("A")?.status == .reserved)
            #expect(try await conference.seats().pending == ["A": 4])
            #expect(try await harness.counts(of: ConferenceEntities.registration).scheduled == 1, "the timeout waits")

            harness.advance(by: .seconds(9))
            try await harness.runUntilIdle()
            #expect(try await conference.summary("A")?.status == .reserved, "not yet")

            harness.advance(by: .seconds(1))
            try await harness.runUntilIdle()
            let summary = try #require(try await conference.summary("A"))
            #expect(summary.status == .expired && summary.expiry == .timeout && summary.expirations == 1)
            let seats = try await conference.seats()
            #expect(seats.available == 5 && seats.sold == 0 && seats.pending.isEmpty)
            try await harness.expectIdle()
            try await harness.expectNoDeadLetters()
        }
    }

    @Test func aPaymentAfterTheTimeoutIsRefunded() async throws {
        try await HeraldTestHarness.run { harness in
            let conference = try await ConferenceOnHarness(harness, capacity: 5, settings: ConferenceSettings(abandonRate: 1))
            try await conference.place([DemoOrder(orderId: "A", seats: 2)])
            try await harness.runUntilIdle()
            harness.advance(by: conference.system.settings.reservationTimeout)
            try await harness.runUntilIdle()
            #expect(try await conference.summary("A")?.expiry == .timeout)

            // The registrant clicks "pay" after all.
            try await harness.send(MakePayment(orderId: "A", amount: 2 * conference.system.settings.seatPrice), to: ConferenceEntities.payments)
            try await harness.runUntilIdle()
            let payment = try await harness.events(inStream: Payment.stream("A"), types: Payment.eventTypes)
            #expect(payment.count == 2 && payment.last is PaymentRefunded)
            #expect(try await conference.process("A")?.refunded == true)
            #expect(try await conference.summary("A")?.status == .expired, "a late payment does not revive the order")
            let audit = try await conference.audit([DemoOrder(orderId: "A", seats: 2)])
            #expect(Self.failed(audit).isEmpty)
        }
    }

    @Test func withoutTheSequenceGateSwappedEventsReachTheProcessManagerOutOfOrder() async throws {
        try await HeraldTestHarness.run { harness in
            let orders = DemoOrder.generate(count: 10, seed: 5)
            let chaos = ChaosSettings(
                seed: 5, crashRate: 0, immediateDuplicateRate: 0, lateDuplicateRate: 0, stallRate: 0, reorderRate: 1,
                undecodableMessages: 0, unknownMessages: 0
            )
            let conference = try await ConferenceOnHarness(
                harness, capacity: 100, settings: ConferenceSettings(abandonRate: 0), chaos: chaos, sequenceGate: nil
            )
            try await conference.place(orders)
            try await conference.settle()
            let audit = try await conference.audit(orders)
            #expect(audit.chaos.swappedPairs == 10)
            #expect(Self.failed(audit) == ["the process manager saw every order's events in stream order"])
        }
    }

    @Test func aSmallChaosRunKeepsEveryGuarantee() async throws {
        try await HeraldTestHarness.run { harness in
            let orders = DemoOrder.generate(count: 50, seed: 7)
            let demand = orders.reduce(0) { $0 + $1.seats }
            // Much chaos, so 50 orders see every kind of it.
            let chaos = ChaosSettings(
                seed: 7, crashRate: 0.15, immediateDuplicateRate: 0.2, lateDuplicateRate: 0.2, stallRate: 0.2, maxStalls: 4, reorderRate: 0.5
            )
            let conference = try await ConferenceOnHarness(
                harness, capacity: demand * 8 / 10, settings: ConferenceSettings(abandonRate: 0.1, seed: 7), chaos: chaos
            )
            try await conference.place(orders)
            try await conference.settle()

            let audit = try await conference.audit(orders)
            for guarantee in GuaranteeChecker.check(audit) {
                #expect(guarantee.held, "\(guarantee.name): \(guarantee.detail)")
            }
            let injected = audit.chaos
            #expect(injected.crashes > 0 && injected.stalls > 0 && injected.swappedPairs > 0)
            #expect(injected.immediateDuplicates > 0 && injected.lateDuplicates > 0)
            #expect(audit.totals.retries >= injected.crashes)
            #expect(audit.totals.held > 0, "swapped pairs were held by the sequence gate")
            #expect(audit.totals.lockLosses > 0, "stalled payments lost their lock")
            #expect(audit.summaries.values.contains { $0.expiry == .soldOut })
            #expect(audit.summaries.values.contains { $0.expiry == .timeout })
        }
    }

    @Test func theCheckerFailsWhenAGuaranteeIsBroken() async throws {
        try await HeraldTestHarness.run { harness in
            let orders = DemoOrder.generate(count: 6, seed: 3)
            let conference = try await ConferenceOnHarness(harness, capacity: 100, settings: ConferenceSettings(abandonRate: 0))
            try await conference.place(orders)
            try await conference.settle()
            let audit = try await conference.audit(orders)
            #expect(Self.failed(audit).isEmpty)
            let orderId = orders[0].orderId

            var doubled = audit
            doubled.summaries[orderId]?.confirmations = 2
            #expect(Self.failed(doubled) == ["every order ended confirmed or expired exactly once in the read model"])

            var both = audit
            both.summaries[orderId]?.expirations = 1
            #expect(Self.failed(both).contains("every order ended confirmed or expired exactly once in the read model"))

            var oversold = audit
            oversold.seats.apply(SeatsReserved(conferenceId: "swift-conf", orderId: "ghost", seats: 1000))
            #expect(Self.failed(oversold).contains("no seat oversold"))

            var leftover = audit
            leftover.counts[ConferenceEntities.seats]?.scheduled = 1
            #expect(Self.failed(leftover) == ["nothing left unprocessed"])

            var poisoned = audit
            poisoned.deadLetters["reserve-\(orderId)"] = (ConferenceEntities.seats, "HandlerFailed")
            #expect(Self.failed(poisoned) == ["dead letters only where expected"])

            var reordered = audit
            reordered.processes[orderId]?.outOfOrderEvents = 1
            #expect(Self.failed(reordered) == ["the process manager saw every order's events in stream order"])

            var unpaid = audit
            unpaid.payments[orderId] = nil
            #expect(Self.failed(unpaid) == ["every confirmed order paid exactly once; no expired order keeps a payment"])
        }
    }

    private static func failed(_ audit: DemoAudit) -> [String] {
        GuaranteeChecker.check(audit).filter { !$0.held }.map(\.name)
    }
}
