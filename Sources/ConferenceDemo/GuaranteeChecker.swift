import HeraldCore

/// One guarantee of the demo, checked.
public struct Guarantee: Sendable, Hashable {
    /// What must hold.
    public var name: String
    /// Whether it held.
    public var held: Bool
    /// The figures behind the verdict, or what broke it.
    public var detail: String
}

/// Checks the demo's guarantees against a ``DemoAudit``.
public enum GuaranteeChecker {
    /// Every guarantee, checked.
    ///
    /// - Parameter audit: What the store holds after the run.
    /// - Returns: One ``Guarantee`` each, in a fixed order.
    public static func check(_ audit: DemoAudit) -> [Guarantee] {
        [
            Self.ordersEndOnce(audit),
            Self.streamsAgree(audit),
            Self.noSeatOversold(audit),
            Self.paymentsBalance(audit),
            Self.duplicatesAbsorbed(audit),
            Self.eventsInOrder(audit),
            Self.nothingLeft(audit),
            Self.deadLettersExpected(audit),
        ]
    }

    private static func sample(_ items: [String]) -> String {
        items.sorted().prefix(5).joined(separator: "; ") + (items.count > 5 ? "; … (\(items.count) in all)" : "")
    }

    static func ordersEndOnce(_ audit: DemoAudit) -> Guarantee {
        var broken: [String] = []
        var confirmed = 0
        var expired = 0
        for order in audit.orders {
            guard let summary = audit.summaries[order.orderId] else {
                broken.append("\(order.orderId): not in the read model")
                continue
            }
            switch (summary.confirmations, summary.expirations, summary.status) {
            case (1, 0, .confirmed): confirmed += 1
            case (0, 1, .expired): expired += 1
            default:
                broken.append(
                    "\(order.orderId): \(summary.status.rawValue), confirmed \(summary.confirmations)×, expired \(summary.expirations)×"
                )
            }
            if summary.seats != order.seats { broken.append("\(order.orderId): \(summary.seats) seats, ordered \(order.seats)") }
        }
        let known = Set(audit.orders.map(\.orderId))
        for orderId in audit.summaries.keys where !known.contains(orderId) {
            broken.append("\(orderId): in the read model but never placed")
        }
        return Guarantee(
            name: "every order ended confirmed or expired exactly once in the read model",
            held: broken.isEmpty,
            detail: broken.isEmpty
                ? "\(audit.orders.count) of \(audit.orders.count): \(confirmed) confirmed, \(expired) expired" : Self.sample(broken)
        )
    }

    static func streamsAgree(_ audit: DemoAudit) -> Guarantee {
        var broken: [String] = []
        for order in audit.orders where audit.terminalEvents[order.orderId] != 1 {
            broken.append("order-\(order.orderId) holds \(audit.terminalEvents[order.orderId] ?? 0) confirmations and expiries")
        }
        for order in audit.orders where audit.processes[order.orderId] == nil {
            broken.append("order \(order.orderId) has no registration process")
        }
        for (orderId, process) in audit.processes {
            let summary = audit.summaries[orderId]
            let agrees =
                switch process.status {
                case .confirmed: summary?.status == .confirmed
                case .expired: summary?.status == .expired && summary?.expiry == process.expiry
                default: false
                }
            if !agrees {
                broken.append("process \(orderId) is \(process.status.rawValue), its summary \(summary?.status.rawValue ?? "missing")")
            }
        }
        return Guarantee(
            name: "every order's stream and process manager end as its summary does",
            held: broken.isEmpty,
            detail: broken.isEmpty
                ? "\(audit.orders.count) streams with one final event, \(audit.processes.count) processes finished" : Self.sample(broken)
        )
    }

    static func noSeatOversold(_ audit: DemoAudit) -> Guarantee {
        let seats = audit.seats
        let confirmedSeats = audit.summaries.values.filter { $0.status == .confirmed }.reduce(0) { $0 + $1.seats }
        var broken: [String] = []
        if seats.lowestAvailable < 0 { broken.append("available seats fell to \(seats.lowestAvailable)") }
        if seats.sold > seats.capacity { broken.append("\(seats.sold) seats sold of \(seats.capacity)") }
        if seats.sold != confirmedSeats { broken.append("\(seats.sold) seats sold, but confirmed orders hold \(confirmedSeats)") }
        if !seats.pending.isEmpty { broken.append("\(seats.pending.count) reservations neither sold nor released") }
        if seats.available + seats.sold != seats.capacity {
            broken.append("\(seats.available) available + \(seats.sold) sold ≠ \(seats.capacity) capacity")
        }
        return Guarantee(
            name: "no seat oversold",
            held: broken.isEmpty,
            detail: broken.isEmpty
                ? "\(seats.sold) sold of \(seats.capacity), \(seats.available) left; never below 0; no reservation left open" : Self.sample(broken)
        )
    }

    static func paymentsBalance(_ audit: DemoAudit) -> Guarantee {
        var broken: [String] = []
        var refunds = 0
        for (orderId, count) in audit.paymentEvents where count > 1 { broken.append("\(orderId) paid \(count) times") }
        for order in audit.orders {
            guard let summary = audit.summaries[order.orderId] else { continue }
            let payment = audit.payments[order.orderId]
            switch summary.status {
            case .confirmed:
                if payment?.paid != summary.total || payment?.refunded == true {
                    broken.append("\(order.orderId) confirmed, paid \(payment?.paid ?? 0) of \(summary.total)")
                }
            case .expired:
                if let payment, payment.paid > 0 {
                    if payment.refunded { refunds += 1 } else { broken.append("\(order.orderId) expired but paid and not refunded") }
                }
            default:
                break
            }
        }
        return Guarantee(
            name: "every confirmed order paid exactly once; no expired order keeps a payment",
            held: broken.isEmpty,
            detail: broken.isEmpty ? "\(audit.payments.count) payments, \(refunds) refunded" : Self.sample(broken)
        )
    }

    static func duplicatesAbsorbed(_ audit: DemoAudit) -> Guarantee {
        let chaos = audit.chaos
        let inbox = audit.totals.duplicatesSuppressed
        var broken: [String] = []
        if chaos.immediateDuplicatesAbsorbed != chaos.immediateDuplicates {
            broken.append("the broker absorbed \(chaos.immediateDuplicatesAbsorbed) of \(chaos.immediateDuplicates) in-window duplicates")
        }
        if inbox < chaos.lateDuplicates - chaos.lateDuplicatesAbsorbedByBroker {
            broken.append("\(chaos.lateDuplicates) late duplicates sent, only \(inbox) absorbed by an inbox")
        }
        return Guarantee(
            name: "duplicates were absorbed: by the broker within the window, by the inbox after it",
            held: broken.isEmpty,
            detail: broken.isEmpty
                ? "\(chaos.immediateDuplicatesAbsorbed)/\(chaos.immediateDuplicates) in-window by the broker;"
                    + " \(chaos.lateDuplicates) late, \(inbox) inbox hits"
                : Self.sample(broken)
        )
    }

    static func eventsInOrder(_ audit: DemoAudit) -> Guarantee {
        var broken: [String] = []
        for (orderId, process) in audit.processes {
            if process.outOfOrderEvents > 0 { broken.append("process \(orderId) saw \(process.outOfOrderEvents) events out of order") }
            if process.lastOrderVersion != 2 { broken.append("process \(orderId) saw order events up to version \(process.lastOrderVersion), not 2") }
        }
        return Guarantee(
            name: "the process manager saw every order's events in stream order",
            held: broken.isEmpty,
            detail: broken.isEmpty
                ? "\(audit.chaos.swappedPairs) pairs sent swapped, \(audit.totals.held) held by the sequence gate and released in order"
                : Self.sample(broken)
        )
    }

    static func nothingLeft(_ audit: DemoAudit) -> Guarantee {
        var broken: [String] = []
        for (entity, counts) in audit.counts {
            var left = counts
            left.deadLettered = 0
            if left != EntityCounts() {
                broken.append(
                    "\(entity): \(left.active) active, \(left.locked) locked, \(left.scheduled) scheduled, \(left.deferred) deferred"
                )
            }
        }
        if audit.pendingResends > 0 { broken.append("\(audit.pendingResends) late duplicates never sent") }
        return Guarantee(
            name: "nothing left unprocessed",
            held: broken.isEmpty,
            detail: broken.isEmpty ? "\(audit.counts.count) queues and subscriptions empty; no timeout left scheduled" : Self.sample(broken)
        )
    }

    static func deadLettersExpected(_ audit: DemoAudit) -> Guarantee {
        var broken: [String] = []
        for (id, letter) in audit.deadLetters {
            if let reason = audit.expectedDeadLetters[id] {
                if reason != letter.reason || letter.entity != ConferenceEntities.orders {
                    broken.append("\(id) dead-lettered in \(letter.entity) with \(letter.reason), expected \(reason) in orders")
                }
            } else {
                broken.append("\(id) dead-lettered in \(letter.entity): \(letter.reason)")
            }
        }
        for id in audit.expectedDeadLetters.keys where audit.deadLetters[id] == nil {
            broken.append("poison message \(id) is not in the dead-letter queue")
        }
        return Guarantee(
            name: "dead letters only where expected",
            held: broken.isEmpty,
            detail: broken.isEmpty
                ? (audit.expectedDeadLetters.isEmpty
                    ? "none" : "only the \(audit.expectedDeadLetters.count) poison messages injected, each with its reason")
                : Self.sample(broken)
        )
    }
}
