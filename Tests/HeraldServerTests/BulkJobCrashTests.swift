import Foundation
import HeraldClient
import HeraldCore
import HeraldSQLite
import HeraldTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// GUARANTEES.md §6: a bulk job on 10,000 dead letters survives a `herald serve` killed with
/// SIGKILL in its middle. The restarted server resumes the job, and every dead letter ends up
/// where the action sends it exactly once: none lost, none twice.
@Suite("bulk jobs survive SIGKILL", .serialized)
struct BulkJobCrashTests {
    static let count = 10_000

    @Test(
        "a bulk job killed in its middle resumes after a restart: none lost, none twice",
        .timeLimit(.minutes(5)),
        arguments: [DeadLetterAction.resubmit, .move(to: .queue("parking"))]
    )
    func killedInTheMiddle(_ action: DeadLetterAction) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-bulk-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let sent = try await Self.deadLetters(in: directory)

        // Small steps, so that the job is still running when the kill comes.
        let arguments = ["serve", "--insecure-local", "--port", "0", "--data", directory.path, "--log-level", "error", "--bulk-job-step-size", "10"]
        let first = try HeraldProcess(arguments)
        var killedAt: BulkJob
        let id: String
        do {
            let client = try HeraldClient(baseURL: "http://127.0.0.1:\(try await first.waitUntilListening())")
            id = try await client.startBulkJob(action, on: .queue("orders"), selection: .all).id
            killedAt = try await client.bulkJob(id)
            while killedAt.processed < Self.count / 10 && !killedAt.isFinished {
                try await Task.sleep(for: .milliseconds(2))
                killedAt = try await client.bulkJob(id)
            }
            first.signal(SIGKILL)
        } catch {
            first.signal(SIGKILL)
            throw error
        }
        let exit = await first.waitForExit(timeout: .seconds(10))
        #expect(exit == .signalled(SIGKILL), "killed by SIGKILL: \(String(describing: exit))")
        try #require(!killedAt.isFinished, "the job finished before the kill (\(killedAt.processed) processed); the test proves nothing")

        let second = try HeraldProcess(arguments)
        let job: BulkJob
        do {
            let client = try HeraldClient(baseURL: "http://127.0.0.1:\(try await second.waitUntilListening())")
            let resumed = try await client.bulkJob(id)
            #expect(resumed.processed >= killedAt.processed, "the progress seen before the kill was kept")
            job = try await client.waitForBulkJob(id, interval: .milliseconds(20))
            second.signal(SIGTERM)
        } catch {
            second.signal(SIGKILL)
            throw error
        }
        _ = await second.waitForExit(timeout: .seconds(30))

        #expect(job.state == .completed, "\(job)")
        let counts: [Int] = [job.total, job.processed, job.applied, job.notFound, job.failed]
        #expect(counts == [Self.count, Self.count, Self.count, 0, 0], "total, processed, applied, not found, failed: \(job)")
        // Where every dead letter went, read from the file once the server has stopped.
        let destination: EntityPath = action.target ?? .queue("orders")
        try await SQLiteBroker.withBroker(path: directory.appendingPathComponent("herald.sqlite").path) { broker in
            #expect(try await broker.counts(of: .queue("orders")).deadLettered == 0, "no dead letter left behind")
            var arrived: [ReceivedMessage] = []
            var next: Int64 = 0
            while true {
                let page = try await broker.peek(destination, fromSequenceNumber: next, maxCount: 1000)
                arrived += page
                guard let last = page.last, page.count == 1000 else { break }
                next = last.sequenceNumber + 1
            }
            let ids = arrived.map(\.message.messageId)
            #expect(ids.count == Self.count, "\(ids.count) messages in \(destination), \(Self.count) expected")
            #expect(Set(ids) == Set(sent), "every dead letter arrived: \(Set(sent).subtracting(ids).count) missing")
            #expect(Set(ids).count == ids.count, "none twice: \(ids.count - Set(ids).count) duplicates")
            #expect(arrived.allSatisfy { $0.deliveryCount == 0 && $0.deadLetterReason == nil }, "each starts again")
        }
    }

    /// A store in `directory` with 10,000 dead letters in the queue `orders` (and an empty queue
    /// `parking`); returns their message ids.
    static func deadLetters(in directory: URL) async throws -> [String] {
        let path = directory.appendingPathComponent("herald.sqlite").path
        var ids: [String] = []
        try await SQLiteBroker.withBroker(path: path) { broker in
            try await broker.createQueue("orders", options: EntityOptions(maxDeliveryCount: 1))
            try await broker.createQueue("parking")
            for batch in stride(from: 0, to: Self.count, by: HeraldLimits.maxBatchCount) {
                let messages = (batch..<batch + HeraldLimits.maxBatchCount).map { Message(messageId: "order-\($0)", text: "order \($0)") }
                ids += messages.map(\.messageId)
                _ = try await broker.send(messages, to: .queue("orders"))
            }
            // Each delivered once: the locks die with the broker, and the next look dead-letters them.
            var received = 0
            while received < Self.count {
                received += try await broker.receive(from: .queue("orders"), maxCount: 1000, maxWaitTime: .zero, mode: .peekLock).count
            }
        }
        try await SQLiteBroker.withBroker(path: path) { broker in
            let counts = try await broker.counts(of: .queue("orders"))
            try #require(counts == EntityCounts(deadLettered: Self.count), "set-up: \(counts)")
        }
        return ids
    }
}
