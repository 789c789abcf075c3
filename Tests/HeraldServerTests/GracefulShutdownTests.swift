import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGTERM in the middle of concurrent sends: `herald serve` stops accepting, answers the requests
/// in flight, closes the store and exits 0, and every send it acknowledged (HTTP 200) is in the
/// queue when the file is opened again.
@Suite("Graceful shutdown")
struct GracefulShutdownTests {
    static let senders = 16
    static let rounds = 3

    @Test(.timeLimit(.minutes(3)))
    func sigtermDuringConcurrentSendsLosesNoAcknowledgedMessage() async throws {
        for round in 1...Self.rounds {
            try await self.round(round)
        }
    }

    private func round(_ round: Int) async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let server = try HeraldProcess(["serve", "--insecure-local", "--port", "0", "--data", directory.path, "--log-level", "warning"])
        let port = try await server.waitUntilListening()
        let created = try await HTTPConnection.with(port: port) { http in try await http.request(.put, "/v1/queues/load").status }
        #expect(created == 201)

        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<Self.senders {
                group.addTask {
                    // Each sender keeps its own connection and sends until the server goes away.
                    try? await HTTPConnection.with(port: port) { http in
                        var index = 0
                        while true {
                            index += 1
                            let id = "r\(round)-s\(sender)-\(index)"
                            let body: [String: Any] = ["entity": ["queue": "load"], "messages": [["messageId": id, "text": "payload \(id)"]]]
                            guard let answer = try? await http.request(.post, "/v1/messages/send", json: body), answer.status == 200 else { return }
                            tally.acknowledge(id)
                        }
                    }
                }
            }
            // Let the load build up, then signal in the middle of it.
            let start = ContinuousClock.now
            // Up to 30 s: the whole suite runs in parallel on two cores, and this only waits for the 200th.
            while tally.acknowledged.count < 200 && ContinuousClock.now - start < .seconds(30) {
                try await Task.sleep(for: .milliseconds(10))
            }
            tally.signal()
            server.signal(SIGTERM)
            try await group.waitForAll()
        }

        let exit = await server.waitForExit(timeout: .seconds(10))
        #expect(exit == .exited(0), "round \(round): exit \(String(describing: exit)); stderr: \(server.standardError.suffix(2000))")

        let ids = tally.acknowledged
        #expect(ids.count >= 200, "round \(round): only \(ids.count) sends acknowledged before SIGTERM")
        let broker = try SQLiteBroker.running(path: directory.appendingPathComponent("herald.sqlite").path)
        var stored = Set<String>()
        var next: Int64 = 0
        while true {
            let page = try await broker.peek(.queue("load"), fromSequenceNumber: next, maxCount: 500)
            guard let last = page.last else { break }
            stored.formUnion(page.map(\.message.messageId))
            next = last.sequenceNumber + 1
        }
        await broker.close()
        let lost = ids.subtracting(stored)
        #expect(lost.isEmpty, "round \(round): \(lost.count) acknowledged messages lost, e.g. \(lost.sorted().prefix(5))")
        print("graceful shutdown round \(round): \(ids.count) acknowledged (\(tally.acknowledgedAfterSignal) after SIGTERM), \(stored.count) stored")
        if lost.isEmpty { try? FileManager.default.removeItem(at: directory) }
    }
}

/// The sends the server acknowledged, and how many of them after SIGTERM.
final class Tally: Sendable {
    private let state = Mutex<(acknowledged: Set<String>, signalled: Bool, afterSignal: Int)>(([], false, 0))

    var acknowledged: Set<String> { self.state.withLock { $0.acknowledged } }
    var acknowledgedAfterSignal: Int { self.state.withLock { $0.afterSignal } }

    func acknowledge(_ id: String) {
        self.state.withLock { state in
            state.acknowledged.insert(id)
            if state.signalled { state.afterSignal += 1 }
        }
    }

    func signal() { self.state.withLock { $0.signalled = true } }
}
