import Foundation

/// The verdict on a crash campaign's history.
///
/// Fatal anomalies: a *lost* message (its send was acknowledged, yet no receiver ever got it), an
/// *unexpected* one (received, never sent), a *resurrected* one (received by a request sent after a
/// completion of that same delivery was acknowledged), a *duplicate enqueue* (one id stored under two
/// sequence numbers despite the duplicate-detection window) and a message left in the queue after the
/// drain. Redeliveries are allowed (at-least-once) and only counted.
struct CrashCampaignReport: Sendable {
    var sendIds = 0
    var sendAttempts = 0
    var sendsAcknowledged = 0
    var sendsAcknowledgedAfterRetry = 0
    var duplicateReceipts = 0
    var sendsUnknown = 0
    var sendsFailed = 0
    var receives = 0
    var completionsAcknowledged = 0
    var completionsUnknown = 0
    var completionsLockLost = 0
    var completionsFailed = 0
    var redeliveries = 0
    var redeliveredAfterUnknownCompletion = 0
    var unknownSendsDelivered = 0
    var lost: [String] = []
    var unexpected: [String] = []
    var resurrected: [String] = []
    var duplicateEnqueues: [String] = []
    var completedTwice: [String] = []
    var failedSendsDelivered: [String] = []
    var neverCompleted: [String] = []
    var leftInQueue = 0
    /// Why the final drain failed, if it did (then what the queue still holds is unknown).
    var drainError: String?
    /// The receive requests that failed (expected around each kill; informative only).
    var receiveFailures: [Int: CrashCampaignHistory.ReceiveFailures] = [:]

    /// Whether the history shows no fatal anomaly.
    var isValid: Bool {
        self.lost.isEmpty && self.unexpected.isEmpty && self.resurrected.isEmpty && self.duplicateEnqueues.isEmpty
            && self.completedTwice.isEmpty && self.failedSendsDelivered.isEmpty && self.neverCompleted.isEmpty && self.leftInQueue == 0
            && self.drainError == nil
    }

    /// The figures, one group a line.
    var lines: [String] {
        func ids(_ list: [String]) -> String {
            list.isEmpty ? "0" : "\(list.count) (e.g. \(list.sorted().prefix(5).joined(separator: ", ")))"
        }
        return [
            "sends: \(self.sendIds) ids in \(self.sendAttempts) attempts: \(self.sendsAcknowledged) acknowledged "
                + "(\(self.sendsAcknowledgedAfterRetry) after a retry, \(self.duplicateReceipts) retries absorbed as duplicates), "
                + "\(self.sendsUnknown) unknown, \(self.sendsFailed) failed",
            "receives: \(self.receives), redeliveries: \(self.redeliveries) "
                + "(\(self.redeliveredAfterUnknownCompletion) ids after an unknown completion), unknown sends delivered: \(self.unknownSendsDelivered)",
            "completions: \(self.completionsAcknowledged) acknowledged, \(self.completionsUnknown) unknown, "
                + "\(self.completionsLockLost) lock lost, \(self.completionsFailed) failed",
            "lost: \(ids(self.lost)), duplicated (completed twice): \(ids(self.completedTwice)), unexpected: \(ids(self.unexpected))",
            "resurrected after an acknowledged completion: \(ids(self.resurrected)), duplicate enqueues: \(ids(self.duplicateEnqueues)), "
                + "failed sends delivered: \(ids(self.failedSendsDelivered)), never completed: \(ids(self.neverCompleted)), left in queue: \(self.leftInQueue)",
        ] + (self.drainError.map { ["drain failed: \($0)"] } ?? []) + self.receiveFailureLines
    }

    /// The failed receive requests: how many, and the five rounds with most, each with its first error.
    private var receiveFailureLines: [String] {
        let total = self.receiveFailures.values.reduce(0) { $0 + $1.count }
        let worst = self.receiveFailures.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }.prefix(5)
        return ["failed receive requests: \(total) in \(self.receiveFailures.count) rounds"]
            + worst.map { "  round \($0.key): \($0.value.count), first: \($0.value.firstError)" }
    }
}

/// Judges a ``CrashCampaignHistory`` once the queue has been drained.
enum CrashCampaignChecker {
    /// Checks every record of `history`; `leftInQueue` is what the queue still held after the drain.
    static func check(_ history: [String: CrashCampaignHistory.Record], leftInQueue: Int) -> CrashCampaignReport {
        var report = CrashCampaignReport()
        report.leftInQueue = leftInQueue
        for (id, record) in history {
            self.checkSend(id, record, into: &report)
            self.checkDeliveries(id, record, into: &report)
        }
        return report
    }

    /// Tallies the send of `id` and flags a lost, unexpected or wrongly delivered message.
    private static func checkSend(_ id: String, _ record: CrashCampaignHistory.Record, into report: inout CrashCampaignReport) {
        report.sendAttempts += record.sendAttempts
        report.duplicateReceipts += record.duplicateReceipts
        let delivered = !record.receives.isEmpty
        switch record.send {
        case nil:
            report.unexpected.append(id)
        case .acknowledged:
            report.sendIds += 1
            report.sendsAcknowledged += 1
            if record.sendAttempts > 1 { report.sendsAcknowledgedAfterRetry += 1 }
            if !delivered { report.lost.append(id) }
        case .unknown, .invoked:
            report.sendIds += 1
            report.sendsUnknown += 1
            if delivered { report.unknownSendsDelivered += 1 }
        case .failed:
            report.sendIds += 1
            report.sendsFailed += 1
            if delivered { report.failedSendsDelivered.append(id) }
        }
    }

    /// Tallies the receives and completions of `id` and flags resurrections and duplicates.
    private static func checkDeliveries(_ id: String, _ record: CrashCampaignHistory.Record, into report: inout CrashCampaignReport) {
        report.receives += record.receives.count
        let sequenceNumbers = Set(record.receives.map(\.sequenceNumber))
        if sequenceNumbers.count > 1 { report.duplicateEnqueues.append(id) }
        report.redeliveries += max(0, record.receives.count - sequenceNumbers.count)
        var acknowledged: [Int64: ContinuousClock.Instant] = [:]
        var unknownCompletion = false
        for completion in record.completions {
            switch completion.outcome {
            case .acknowledged:
                report.completionsAcknowledged += 1
                let first = acknowledged[completion.sequenceNumber].map { min($0, completion.answeredAt) } ?? completion.answeredAt
                acknowledged[completion.sequenceNumber] = first
            case .unknown:
                report.completionsUnknown += 1
                unknownCompletion = true
            case .lockLost: report.completionsLockLost += 1
            case .failed: report.completionsFailed += 1
            }
        }
        let acknowledgedCount = record.completions.filter { $0.outcome == .acknowledged }.count
        if acknowledgedCount > acknowledged.count { report.completedTwice.append(id) }
        let cameBack = record.receives.contains { receive in
            acknowledged[receive.sequenceNumber].map { receive.requestedAt > $0 } ?? false
        }
        if cameBack { report.resurrected.append(id) }
        if unknownCompletion && record.receives.count > 1 { report.redeliveredAfterUnknownCompletion += 1 }
        if !record.receives.isEmpty && acknowledged.isEmpty && !unknownCompletion { report.neverCompleted.append(id) }
    }
}
