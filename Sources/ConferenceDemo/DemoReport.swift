import Foundation
import HeraldCore

/// What a demo run did and whether every guarantee held.
public struct DemoReport: Sendable {
    /// What the store held after the run.
    public var audit: DemoAudit
    /// Every guarantee, checked.
    public var guarantees: [Guarantee]
    /// The conference's capacity.
    public var capacity: Int
    /// The seats the orders asked for.
    public var demand: Int
    /// From the first order to the last settled message.
    public var wallTime: Duration
    /// The options of the run.
    public var options: DemoOptions

    /// Creates a report.
    public init(audit: DemoAudit, guarantees: [Guarantee], capacity: Int, demand: Int, wallTime: Duration, options: DemoOptions) {
        self.audit = audit
        self.guarantees = guarantees
        self.capacity = capacity
        self.demand = demand
        self.wallTime = wallTime
        self.options = options
    }

    /// Whether every guarantee held.
    public var allHeld: Bool { self.guarantees.allSatisfy(\.held) }

    /// The report as text, ending with `all guarantees held` or the list of those that failed.
    public func render() -> String {
        let audit = self.audit
        let totals = audit.totals
        let chaos = audit.chaos
        let summaries = audit.summaries.values
        let confirmed = summaries.filter { $0.status == .confirmed }
        let soldOut = summaries.filter { $0.expiry == .soldOut }.count
        let timedOut = summaries.filter { $0.expiry == .timeout }
        let abandoned = timedOut.filter { audit.abandoned.contains($0.orderId) }.count
        let refunded = audit.processes.values.filter(\.refunded).count
        let lateReleases = audit.processes.values.filter(\.releasedLateReservation).count
        let seconds = max(self.wallTime.timeInterval, 0.001)
        var deadLetters: [String: Int] = [:]
        for letter in audit.deadLetters.values { deadLetters[letter.reason, default: 0] += 1 }

        var lines: [String] = []
        func row(_ label: String, _ value: String) {
            lines.append("  " + label + String(repeating: " ", count: max(1, 34 - label.count)) + value)
        }
        lines.append("")
        lines.append("Report")
        row("orders placed", "\(audit.orders.count)")
        row("confirmed", "\(confirmed.count)")
        row("expired for lack of seats", "\(soldOut)")
        row(
            "expired by reservation timeout",
            "\(timedOut.count)  (\(abandoned) registrants never paid, as planned; \(timedOut.count - abandoned) merely slow under chaos)"
        )
        row("seats sold / capacity", "\(audit.seats.sold) / \(self.capacity)  (\(self.demand) asked for)")
        row("late payments refunded", "\(refunded)  (late reservations released: \(lateReleases))")
        let byBroker = chaos.immediateDuplicatesAbsorbed + chaos.lateDuplicatesAbsorbedByBroker
        row("duplicates suppressed by broker", "\(byBroker)  (\(chaos.immediateDuplicates) registrations sent twice within the window)")
        row(
            "duplicates suppressed by inbox",
            "\(totals.duplicatesSuppressed)  (\(chaos.lateDuplicates) commands and events re-sent after the window;"
                + " the rest are redeliveries after lost locks)"
        )
        row("retries", "\(totals.retries)  (\(chaos.crashes) injected handler crashes; the rest are concurrency conflicts)")
        row("lock expiries", "\(chaos.stalls) payment-gateway stalls past the 1 s lock; \(totals.lockLosses) commits refused with lockLost")
        row("reordered events", "\(chaos.swappedPairs) event pairs sent swapped; \(totals.held) held by the sequence gate")
        row(
            "dead letters by reason",
            deadLetters.isEmpty ? "none" : deadLetters.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        )
        row("wall time", String(format: "%.1f s", seconds))
        row("messages handled", "\(totals.handled) = \(Int(Double(totals.handled) / seconds)) messages/s")
        lines.append("")
        lines.append("Guarantees")
        for guarantee in self.guarantees {
            lines.append("  \(guarantee.held ? "ok  " : "FAIL") \(guarantee.name): \(guarantee.detail)")
        }
        lines.append("")
        let failed = self.guarantees.filter { !$0.held }
        if failed.isEmpty {
            lines.append("all guarantees held")
        } else {
            lines.append("\(failed.count) guarantee\(failed.count == 1 ? "" : "s") failed:")
            for guarantee in failed { lines.append("  - \(guarantee.name)") }
        }
        return lines.joined(separator: "\n")
    }
}
