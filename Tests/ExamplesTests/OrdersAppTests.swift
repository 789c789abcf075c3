import AsyncHTTPClient
import Foundation
import HeraldCore
import HeraldSQLite
import HeraldTestSupport
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The README's ServiceGroup example (`Examples/OrdersApp`): a Hummingbird app, a
/// `MessageProcessor` and the broker in one `ServiceGroup`, stopped by SIGTERM in the middle of
/// the traffic.
///
/// Eight clients post orders as fast as the app takes them; once a backlog has built up (the
/// first order is handled, the fortieth-last accepted is not), the test sends SIGTERM, while
/// requests are in flight and the processor has messages in hand. The app must exit 0, having
/// drained: the server answers what it had and takes no more, the processor finishes its messages
/// in hand and gives back the rest, the broker closes. The app is then started again, drains the
/// queue, and is stopped the same way.
///
/// "Nothing lost", precisely. An order is *accepted* when its POST was answered 202, *unanswered*
/// when its POST got no answer (the connection closed under it). An order is *handled* when its
/// stream `order-<id>` holds an event, *waiting* when its command is in the queue. Then:
/// - after the first run: every accepted order is handled or waiting, never both; every handled
///   stream holds exactly one event; an unanswered order is at most one of the two; nothing else
///   is in the store (no other order, no dead letter); as many orders are handled as the
///   processor reports having handled; and some are handled and some waiting (the signal came in
///   the middle of the work);
/// - after the second run: every accepted order is handled, with exactly one event; the queue and
///   its dead-letter queue are empty; the two runs together report as many handlings as there
///   are handled orders (none was handled twice).
@Suite(.timeLimit(.minutes(3)))
struct OrdersAppTests {
    static let senders = 8

    @Test func sigtermDrainsGracefullyAndLosesNoOrder() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("herald-orders-app-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("orders.sqlite").path
        let environment = ["ORDERS_DATABASE": database, "PORT": "0"]

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.senders + 2
        // Once the app has stopped, a request fails after this rather than the default 10 s.
        configuration.timeout.connect = .seconds(1)
        let client = HTTPClient(configuration: configuration)
        do {
            try await self.check(client: client, database: database, environment: environment, folder: folder)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private func check(client: HTTPClient, database: String, environment: [String: String], folder: URL) async throws {
        // --- The first run: traffic, then SIGTERM in the middle of it.
        let first = try ExampleProcess("OrdersApp", environment: environment, in: folder)
        let port = try await first.waitUntilListening()
        let orders = Orders(client: client, port: port)
        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<Self.senders {
                group.addTask {
                    var index = 0
                    while true {
                        index += 1
                        let id = "s\(sender)-\(index)"
                        tally.sending(id)
                        guard let status = await orders.post(id) else {
                            tally.unanswered(id)
                            return
                        }
                        guard status == 202 else {
                            tally.refused(id, status: status)
                            return
                        }
                        tally.accepted(id)
                    }
                }
            }
            // A backlog: the first order handled, the fortieth-last accepted not yet.
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(60) {
                let accepted = tally.snapshot.accepted
                if accepted.count >= 100, await orders.isHandled(accepted[0]) == true,
                    await orders.isHandled(accepted[accepted.count - 40]) == false
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            first.signal(SIGTERM)
            try await group.waitForAll()
        }
        let firstExit = await first.waitForExit(timeout: .seconds(60))
        #expect(firstExit == 0, "the first run exited \(String(describing: firstExit)); stderr: \(first.standardError.suffix(2000))")
        let handledInFirstRun = try #require(first.handledCount, "the first run's last line; stderr: \(first.standardError.suffix(2000))")

        let sent = tally.snapshot
        #expect(sent.refused.isEmpty, "answers other than 202: \(sent.refused.prefix(5))")
        #expect(sent.accepted.count >= 100, "only \(sent.accepted.count) orders accepted before SIGTERM")
        let accepted = Set(sent.accepted)

        let afterFirst = try await StoreContents.read(database)
        #expect(afterFirst.otherStreams.isEmpty, "streams that are no order's: \(afterFirst.otherStreams.prefix(5))")
        #expect(afterFirst.deadLetters.isEmpty, "dead letters: \(afterFirst.deadLetters.prefix(5))")
        let handledTwice = afterFirst.events.filter { $0.value != 1 }
        #expect(handledTwice.isEmpty, "orders whose stream has more than one event: \(handledTwice.prefix(5))")
        let handled = Set(afterFirst.events.keys)
        let waiting = afterFirst.waiting
        #expect(waiting.count == afterFirst.queue.count, "a command twice in the queue")
        let lost = accepted.subtracting(handled).subtracting(waiting)
        #expect(lost.isEmpty, "accepted orders neither handled nor waiting: \(lost.sorted().prefix(5))")
        let both = handled.intersection(waiting)
        #expect(both.isEmpty, "orders handled and still waiting: \(both.sorted().prefix(5))")
        let phantoms = handled.union(waiting).subtracting(accepted).subtracting(sent.unanswered)
        #expect(phantoms.isEmpty, "orders no client sent, or refused: \(phantoms.sorted().prefix(5))")
        #expect(handled.count == handledInFirstRun, "handled orders in the store vs what the processor reported")
        #expect(!handled.isEmpty && !waiting.isEmpty, "SIGTERM came before or after the work: \(handled.count) handled, \(waiting.count) waiting")

        // --- The second run drains the queue.
        let second = try ExampleProcess("OrdersApp", environment: environment, in: folder)
        let secondPort = try await second.waitUntilListening()
        let again = Orders(client: client, port: secondPort)
        var pending = waiting
        let start = ContinuousClock.now
        while !pending.isEmpty && ContinuousClock.now - start < .seconds(60) {
            for id in pending {
                if await again.isHandled(id) == true { pending.remove(id) }
            }
            if !pending.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(pending.isEmpty, "\(pending.count) waiting orders not handled by the second run")
        second.signal(SIGTERM)
        let secondExit = await second.waitForExit(timeout: .seconds(60))
        #expect(secondExit == 0, "the second run exited \(String(describing: secondExit)); stderr: \(second.standardError.suffix(2000))")
        let handledInSecondRun = try #require(second.handledCount, "the second run's last line; stderr: \(second.standardError.suffix(2000))")

        let afterSecond = try await StoreContents.read(database)
        let stillWaiting = afterSecond.queue
        #expect(stillWaiting.isEmpty, "still in the queue: \(stillWaiting.prefix(5))")
        #expect(afterSecond.deadLetters.isEmpty, "dead letters: \(afterSecond.deadLetters.prefix(5))")
        let notOnce = accepted.filter { afterSecond.events[$0] != 1 }
        #expect(notOnce.isEmpty, "accepted orders not handled exactly once: \(notOnce.sorted().prefix(5).map { "\($0): \(afterSecond.events[$0] ?? 0)" })")
        #expect(afterSecond.events.values.allSatisfy { $0 == 1 }, "a stream with more than one event")
        #expect(Set(afterSecond.events.keys).subtracting(accepted).isSubset(of: sent.unanswered), "orders no client sent")
        #expect(
            handledInFirstRun + handledInSecondRun == afterSecond.events.count,
            "handlings reported (\(handledInFirstRun) + \(handledInSecondRun)) vs orders handled (\(afterSecond.events.count))")
    }
}

/// The app's HTTP routes, as a client uses them.
private struct Orders: Sendable {
    let client: HTTPClient
    let port: Int

    /// Posts order `id`; returns the status, or `nil` when no answer came.
    func post(_ id: String) async -> Int? {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(self.port)/orders")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(Data(#"{"orderId":"\#(id)","sku":"A1","quantity":2}"#.utf8))
        return await self.status(of: request)
    }

    /// Whether order `id` is handled (`GET /orders/{id}` answers 200, or 404 before); `nil`
    /// without an answer.
    func isHandled(_ id: String) async -> Bool? {
        switch await self.status(of: HTTPClientRequest(url: "http://127.0.0.1:\(self.port)/orders/\(id)")) {
        case 200: true
        case 404: false
        default: nil
        }
    }

    private func status(of request: HTTPClientRequest) async -> Int? {
        do {
            let response = try await self.client.execute(request, timeout: .seconds(30))
            for try await _ in response.body {}
            return Int(response.status.code)
        } catch {
            return nil
        }
    }
}

/// What the clients sent and what became of it.
private final class Tally: Sendable {
    struct Snapshot {
        /// Answered 202, in the order the answers came.
        var accepted: [String] = []
        /// Sent, but no answer came.
        var unanswered: Set<String> = []
        /// Answered something else.
        var refused: [String] = []
        /// Sent and not answered yet.
        var inFlight: Set<String> = []
    }

    private let state = Mutex(Snapshot())

    var snapshot: Snapshot { self.state.withLock { $0 } }

    func sending(_ id: String) { self.state.withLock { _ = $0.inFlight.insert(id) } }

    func accepted(_ id: String) {
        self.state.withLock {
            $0.inFlight.remove(id)
            $0.accepted.append(id)
        }
    }

    func unanswered(_ id: String) {
        self.state.withLock {
            $0.inFlight.remove(id)
            $0.unanswered.insert(id)
        }
    }

    func refused(_ id: String, status: Int) {
        self.state.withLock {
            $0.inFlight.remove(id)
            $0.refused.append("\(id): \(status)")
        }
    }
}

/// What the app's database holds, read with the app stopped.
private struct StoreContents {
    /// Events per order id, from the streams `order-<id>`.
    var events: [String: Int] = [:]
    /// Streams not named `order-<id>`.
    var otherStreams: [String] = []
    /// The message ids (order ids) of the commands in the queue, in sequence order.
    var queue: [String] = []
    /// The message ids in the queue's dead-letter queue.
    var deadLetters: [String] = []

    var waiting: Set<String> { Set(self.queue) }

    static func read(_ path: String) async throws -> StoreContents {
        try await SQLiteBroker.withBroker(path: path) { broker in
            var contents = StoreContents()
            var position: Int64 = 1
            while true {
                let events = try await broker.readAll(from: position, maxCount: 500)
                guard let last = events.last else { break }
                for event in events {
                    if event.stream.hasPrefix("order-") {
                        contents.events[String(event.stream.dropFirst("order-".count)), default: 0] += 1
                    } else {
                        contents.otherStreams.append(event.stream)
                    }
                }
                position = last.position + 1
            }
            contents.queue = try await Self.messageIds(of: .queue("orders"), broker)
            contents.deadLetters = try await Self.messageIds(of: EntityPath.queue("orders").deadLetter, broker)
            return contents
        }
    }

    private static func messageIds(of entity: EntityPath, _ broker: SQLiteBroker) async throws -> [String] {
        var ids: [String] = []
        var next: Int64 = 0
        while true {
            let page = try await broker.peek(entity, fromSequenceNumber: next, maxCount: 500)
            guard let last = page.last else { return ids }
            ids += page.map(\.message.messageId)
            next = last.sequenceNumber + 1
        }
    }
}

/// An example executable started by a test, its output collected as it runs.
private final class ExampleProcess: Sendable {
    let process: ChildProcess

    init(_ name: String, environment: [String: String], in folder: URL) throws {
        let executable = try #require(HeraldExecutable.url(named: name), "the \(name) example is built with the tests (run `swift build`)")
        self.process = try ChildProcess(
            executable, [], currentDirectory: folder, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
    }

    var standardOutput: String { self.process.standardOutput }
    var standardError: String { self.process.standardError }
    /// What it logged: swift-log's default handler writes to standard error (older versions, to
    /// standard output).
    var logLines: [Substring] { (self.standardError + "\n" + self.standardOutput).split(separator: "\n") }

    /// The port of the app's log line `… listening on 127.0.0.1:PORT`.
    func waitUntilListening(timeout: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for line in self.logLines {
                guard let range = line.range(of: "listening on 127.0.0.1:") else { continue }
                if let port = Int(line[range.upperBound...].prefix { $0.isNumber }) { return port }
            }
            if !self.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ExampleFailure("the app did not start listening; stdout: \(self.standardOutput) stderr: \(self.standardError.suffix(2000))")
    }

    /// The count of the app's last line, `… stopped gracefully, orders handled: N`.
    var handledCount: Int? {
        guard let line = self.logLines.last(where: { $0.contains("stopped gracefully, orders handled: ") }),
            let range = line.range(of: "stopped gracefully, orders handled: ")
        else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    func signal(_ signal: Int32) {
        self.process.signal(signal)
    }

    /// The exit status once the process exited normally, a negative signal number when a signal
    /// ended it, or `nil` when it still ran after `timeout` (it is then killed).
    func waitForExit(timeout: Duration) async -> Int32? {
        switch await self.process.waitForExit(timeout: timeout) {
        case .exited(let status): status
        case .signalled(let signal): -signal
        case nil: nil
        }
    }
}

private struct ExampleFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
