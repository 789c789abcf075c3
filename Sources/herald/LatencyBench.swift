import Foundation
import HeraldCore
import Synchronization

extension Bench {
    /// How long the latency scenario's receiver waits in one receive.
    static let latencyWait = Duration.seconds(5)

    /// Light load: one sender, one receiver waiting in a long poll. Each message is sent once the
    /// previous one was received and completed, so every message finds the receiver waiting:
    /// the latency is that of a quiet system (wake-up included), not of a queue building up.
    func latency(_ queue: EntityPath) async throws -> BenchResult {
        let body = self.body()
        let broker = self.broker
        let total = self.settings.messages
        let sent = LatencyProgress()
        // One element per message received: the sender's go-ahead for the next one.
        let (arrivals, arrived) = AsyncStream<Void>.makeStream()
        let clock = ContinuousClock()
        let start = clock.now
        let received = try await withThrowingTaskGroup(of: Received.self) { group in
            group.addTask {
                defer { arrived.finish() }
                var received = Received()
                while received.ids.count < total {
                    let sentBefore = sent.count.load(ordering: .acquiring)
                    let batch = try await broker.receive(from: queue, maxCount: 10, maxWaitTime: Self.latencyWait, mode: .peekLock)
                    let now = (clock.now - start).nanoseconds
                    if batch.isEmpty {
                        // A message whose send returned before this receive began did not come
                        // within the wait: it is lost (the check below reports it).
                        if sentBefore > received.ids.count { break }
                        continue
                    }
                    received.record(batch, receivedAt: now)
                    try await broker.complete(batch.compactMap(\.lockToken))
                    received.finishedAt = clock.now - start
                    for _ in batch { arrived.yield() }
                }
                return received
            }
            group.addTask {
                var goAheads = arrivals.makeAsyncIterator()
                for index in 0..<total {
                    let sentAt = (clock.now - start).nanoseconds
                    let message = Message(messageId: "m\(index)", body: body, applicationProperties: [Self.sentAtProperty: .int(sentAt)])
                    try await broker.send(message, to: queue)
                    sent.count.store(index + 1, ordering: .releasing)
                    // The receiver stopped (it got them all, or gave up on a lost one).
                    if await goAheads.next() == nil { break }
                }
                return Received()
            }
            return try await Received.merged(&group)
        }
        try self.verifyExactlyOnce(received: received.ids)
        return BenchResult(scenario: .latency, settings: self.settings, elapsed: received.finishedAt, latenciesMs: received.latencies)
    }
}

/// How many sends of the latency scenario have returned.
private final class LatencyProgress: Sendable {
    let count = Atomic<Int>(0)
}
