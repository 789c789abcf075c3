import Foundation
import HeraldClient
import HeraldCore
import Synchronization

/// The clients of one crash-campaign round: senders and peek-lock receivers on one queue over
/// HTTP, recording every operation in the history until the round is stopped.
///
/// Sends whose outcome is unknown (the server died mid-request) are kept in ``retries`` and sent
/// again, with the same message id, by the next senders: the queue's duplicate-detection window
/// absorbs the ones that had been stored.
struct CrashCampaignWorkers: Sendable {
    /// Message ids whose last send attempt had an unknown outcome, waiting to be sent again.
    final class Retries: Sendable {
        private let ids = Mutex<[String]>([])

        /// Queues `id` to be sent again.
        func add(_ id: String) { self.ids.withLock { $0.append(id) } }
        /// The next id to send again, if any.
        func take() -> String? { self.ids.withLock { $0.popLast() } }
        var count: Int { self.ids.withLock { $0.count } }
    }

    /// A flag the campaign raises to end a round's clients.
    final class StopFlag: Sendable {
        private let raised = Atomic<Bool>(false)

        func raise() { self.raised.store(true, ordering: .relaxed) }
        var isRaised: Bool { self.raised.load(ordering: .relaxed) }
    }

    let client: HeraldClient
    let queue: EntityPath
    let history: CrashCampaignHistory
    let retries: Retries
    let round: Int

    /// Runs `senders` senders and `receivers` receivers until `stop` is raised and each has ended
    /// the request it was in.
    func run(senders: Int, receivers: Int, stop: StopFlag) async {
        await withTaskGroup(of: Void.self) { group in
            for sender in 0..<senders {
                group.addTask { await self.send(sender: sender, stop: stop) }
            }
            for _ in 0..<receivers {
                group.addTask { await self.receive(stop: stop, duringDrain: false) }
            }
        }
    }

    /// Sends one message at a time, a retry first if there is one, until `stop` is raised.
    private func send(sender: Int, stop: StopFlag) async {
        var index = 0
        while !stop.isRaised {
            let id: String
            if let retry = self.retries.take() {
                id = retry
            } else {
                index += 1
                id = "r\(self.round)-s\(sender)-\(index)"
            }
            if await !self.sendOnce(id) {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// One send attempt of `id`, recorded; `false` if its outcome is unknown (then `id` is queued for a retry).
    @discardableResult
    func sendOnce(_ id: String) async -> Bool {
        self.history.sendInvoked(id)
        do {
            let receipt = try await self.client.send(Message(messageId: id, text: "crash campaign \(id)"), to: self.queue)
            self.history.sendEnded(id, .acknowledged, duplicate: receipt.isDuplicate)
            return true
        } catch  where Self.isIndefinite(error) {
            self.history.sendEnded(id, .unknown)
            self.retries.add(id)
            return false
        } catch {
            self.history.sendEnded(id, .failed("\(error)"))
            return true
        }
    }

    /// Receives with peek-lock and completes each message until `stop` is raised (or, when
    /// draining, until the queue is empty).
    func receive(stop: StopFlag, duringDrain: Bool) async {
        while !stop.isRaised {
            let requestedAt = ContinuousClock.now
            let messages: [ReceivedMessage]
            do {
                messages = try await self.client.receive(from: self.queue, maxCount: 8, maxWaitTime: .milliseconds(500), mode: .peekLock)
            } catch {
                self.history.receiveFailed(round: self.round, error)
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            if duringDrain && messages.isEmpty { return }
            for message in messages {
                await self.settle(message, requestedAt: requestedAt, duringDrain: duringDrain)
            }
        }
    }

    /// Records the delivery of `message` and completes it, recording the outcome.
    private func settle(_ message: ReceivedMessage, requestedAt: ContinuousClock.Instant, duringDrain: Bool) async {
        let id = message.message.messageId
        self.history.received(
            id,
            .init(sequenceNumber: message.sequenceNumber, deliveryCount: message.deliveryCount, requestedAt: requestedAt, duringDrain: duringDrain)
        )
        guard let token = message.lockToken else { return }
        let outcome: CrashCampaignHistory.CompletionOutcome
        do {
            try await self.client.complete(token)
            outcome = .acknowledged
        } catch let error as HeraldError where error.code == .lockLost {
            outcome = .lockLost
        } catch  where Self.isIndefinite(error) {
            outcome = .unknown
        } catch {
            outcome = .failed("\(error)")
        }
        self.history.completed(id, .init(sequenceNumber: message.sequenceNumber, outcome: outcome, answeredAt: ContinuousClock.now))
    }

    /// Whether `error` leaves an operation's outcome unknown: the connection broke or timed out, or
    /// the server answered a store failure or a 5xx.
    static func isIndefinite(_ error: any Error) -> Bool {
        switch error {
        case let error as HeraldError: return error.code == .storeFailed || error.code == .storeClosed
        case let error as HeraldClientError:
            switch error.code {
            case .transport, .malformedResponse: return true
            case .http, .rejected: return (error.status ?? 0) >= 500
            default: return false
            }
        default: return true
        }
    }
}
