import Foundation
import Synchronization

/// The history of a crash campaign, Jepsen-style: every send, receive and completion the clients
/// attempted, with its outcome as the client saw it.
///
/// An operation is *acknowledged* (the server answered success), *failed* (the server answered a
/// definite refusal) or *unknown* (the connection broke, or the server answered a store failure:
/// the operation may or may not have taken effect). ``CrashCampaignChecker`` judges the history.
final class CrashCampaignHistory: Sendable {
    /// The outcome of a send, as the client last saw it.
    enum SendOutcome: Sendable, Equatable {
        case invoked
        case acknowledged
        case unknown
        case failed(String)
    }

    /// The outcome of a completion.
    enum CompletionOutcome: Sendable, Equatable {
        case acknowledged
        /// Refused because the lock expired or belongs to an earlier delivery: the message stays.
        case lockLost
        case unknown
        case failed(String)
    }

    /// One delivery of a message to a receiver.
    struct Receive: Sendable {
        let sequenceNumber: Int64
        let deliveryCount: Int
        /// When the receive request that returned it was sent.
        let requestedAt: ContinuousClock.Instant
        let duringDrain: Bool
    }

    /// One completion attempt.
    struct Completion: Sendable {
        let sequenceNumber: Int64
        let outcome: CompletionOutcome
        /// When the client saw the outcome.
        let answeredAt: ContinuousClock.Instant
    }

    /// Everything recorded about one message id.
    struct Record: Sendable {
        var send: SendOutcome?
        var sendAttempts = 0
        var duplicateReceipts = 0
        var receives: [Receive] = []
        var completions: [Completion] = []
    }

    /// The receive requests of one round that failed (the server was down, or answered an
    /// error), and the first error: what to look at when messages are left in the queue.
    struct ReceiveFailures: Sendable {
        var count = 0
        var firstError: String
    }

    private let records = Mutex<[String: Record]>([:])
    private let failures = Mutex<[Int: ReceiveFailures]>([:])

    /// Records the start of a send attempt of `id` (the first, or a retry with the same id).
    func sendInvoked(_ id: String) {
        self.records.withLock { records in
            records[id, default: Record()].sendAttempts += 1
            if records[id]?.send == nil { records[id]?.send = .invoked }
        }
    }

    /// Records the outcome of a send attempt; an acknowledgement is final, whatever came before.
    func sendEnded(_ id: String, _ outcome: SendOutcome, duplicate: Bool = false) {
        self.records.withLock { records in
            if duplicate { records[id, default: Record()].duplicateReceipts += 1 }
            guard records[id]?.send != .acknowledged else { return }
            records[id, default: Record()].send = outcome
        }
    }

    /// Records a delivery of `id`.
    func received(_ id: String, _ receive: Receive) {
        self.records.withLock { $0[id, default: Record()].receives.append(receive) }
    }

    /// Records the outcome of a completion of `id`.
    func completed(_ id: String, _ completion: Completion) {
        self.records.withLock { $0[id, default: Record()].completions.append(completion) }
    }

    /// Records a receive request of `round` that failed with `error`.
    func receiveFailed(round: Int, _ error: any Error) {
        self.failures.withLock { failures in
            failures[round, default: ReceiveFailures(firstError: String(String(describing: error).prefix(200)))].count += 1
        }
    }

    /// The receive requests that failed, by round.
    var receiveFailures: [Int: ReceiveFailures] {
        self.failures.withLock { $0 }
    }

    /// A copy of every record, for the checker.
    var snapshot: [String: Record] {
        self.records.withLock { $0 }
    }
}
