import Foundation
import HeraldClient
import HeraldCore
import HeraldPostgres
import HeraldPostgresTesting
import HeraldTestSupport
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// PostgreSQL goes away under load and comes back: two `herald serve --postgres` processes on a
/// private server carry sends and peek-lock receives through HTTP while the server is killed
/// (SIGKILL of the postmaster) or stopped cleanly, then started again on the same folder and port.
/// Herald must answer 503 `storeUnavailable` meanwhile (never a success, never a hang), reconnect by
/// itself, lose no acknowledged send and acknowledge no message's completion twice.
@Suite("PostgreSQL: the database goes away", .serialized)
struct OutageTests {
    enum Outage: String { case killed, stoppedCleanly }

    @Test(.timeLimit(.minutes(2)))
    func postmasterKilledUnderLoad() async throws {
        try await self.outageUnderLoad(.killed)
    }

    @Test(.timeLimit(.minutes(2)))
    func serverStoppedCleanlyUnderLoad() async throws {
        try await self.outageUnderLoad(.stoppedCleanly)
    }

    private func outageUnderLoad(_ outage: Outage) async throws {
        let testStart = ContinuousClock.now
        let server = try await ThrowawayPostgres.start()
        defer { server.stop() }
        let first = try ServeProcess(postgres: server.url)
        let second = try ServeProcess(postgres: server.url)
        defer {
            first.terminate()
            second.terminate()
        }
        let clients = [
            try HeraldClient(baseURL: "http://127.0.0.1:\(try await first.port())", requestTimeout: .seconds(20)),
            try HeraldClient(baseURL: "http://127.0.0.1:\(try await second.port())", requestTimeout: .seconds(20)),
        ]
        let queue = EntityPath.queue("work")
        try await clients[0].createQueue("work", options: EntityOptions(lockDuration: .seconds(2), maxDeliveryCount: 1000))

        let log = LoadLog()
        let stop = Flag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The load stops when the test goes on to its checks, or fails before.
            defer { stop.set() }
            for worker in 0..<4 {
                let client = clients[worker % 2]
                group.addTask { await Self.sendLoop(worker: worker, client: client, log: log, stop: { stop.isSet }) }
                group.addTask { await Self.receiveLoop(worker: worker, client: client, log: log, stop: { stop.isSet }) }
            }

            // Under way on both servers, then the outage.
            try await Self.waitUntil("both servers send and complete before the outage", timeout: .seconds(20)) {
                (0..<2).allSatisfy { log.successes(server: $0, since: testStart) >= 5 }
            }
            switch outage {
            case .killed: try await server.killPostmaster()
            case .stoppedCleanly: try await server.stopServer()
            }
            let down = ContinuousClock.now
            // Longer than the connection timeout (10 s): requests that wait for a connection are
            // answered too, and then the ones that wait only a second while the database is known to be away.
            try await Task.sleep(for: .seconds(14))
            let restarting = ContinuousClock.now
            try await server.restart()
            let up = ContinuousClock.now

            // Both servers recover by themselves: sends and completions succeed again on each.
            try await Self.waitUntil("both servers send and complete after the restart", timeout: .seconds(40)) {
                (0..<2).allSatisfy { log.successes(server: $0, since: up) >= 5 }
            }
            stop.set()
            try await group.waitForAll()

            // The checks on the outage: once the old server's sessions are gone (a second after it
            // went down), nothing succeeds until it is started again, and everything is answered
            // 503 storeUnavailable in bounded time.
            let requests = log.requests
            let duringOutage = requests.filter { $0.start > down + .seconds(1) && $0.end < restarting }
            let succeeded = duringOutage.filter { $0.error == nil }
            #expect(succeeded.isEmpty, "\(outage): requests succeeded while PostgreSQL was down: \(succeeded.prefix(5).map(\.description))")
            let refused = duringOutage.filter { $0.error != nil }
            #expect(refused.count >= 4, "\(outage): only \(refused.count) requests were answered during the outage")
            let wrongErrors = requests.filter { $0.error != nil && $0.error != "storeUnavailable" && $0.error != "lockLost" }
            #expect(wrongErrors.isEmpty, "\(outage): requests failed otherwise than storeUnavailable (503): \(wrongErrors.prefix(5).map(\.description))")
            let slow = requests.filter { $0.end - $0.start > .seconds(15) }
            #expect(slow.isEmpty, "\(outage): requests took more than 15 s: \(slow.prefix(5).map(\.description))")
            let unavailableAfter = requests.filter { $0.start > up + .seconds(30) && $0.error == "storeUnavailable" }
            #expect(unavailableAfter.isEmpty, "\(outage): still unavailable 30 s after the restart: \(unavailableAfter.prefix(3).map(\.description))")
        }
        #expect(first.isRunning && second.isRunning, "\(outage): a server exited: \(first.standardError.suffix(2000)) \(second.standardError.suffix(2000))")

        // Drain what is left (locks given up during the outage expire after 2 s).
        var drained: Set<String> = []
        let drainDeadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < drainDeadline {
            let messages = try await clients[0].receive(from: queue, maxCount: 100, maxWaitTime: .seconds(1), mode: .peekLock)
            // One complete for all: a hundred one by one can outlast the 2-second locks on a loaded machine.
            let tokens = messages.compactMap(\.lockToken)
            if !tokens.isEmpty, try await clients[0].complete(tokens) == .settled {
                drained.formUnion(messages.map(\.message.messageId))
            }
            if messages.isEmpty, try await clients[0].counts(of: queue) == EntityCounts() { break }
        }
        let counts = try await clients[0].counts(of: queue)
        #expect(counts == EntityCounts(), "\(outage): the queue did not drain: \(counts)")
        #expect(try await clients[0].peek(queue.deadLetter, fromSequenceNumber: 0, maxCount: 10).isEmpty, "\(outage): dead letters")

        // No acknowledged send lost; no completion acknowledged twice; nothing from nowhere.
        let (acknowledged, attempted, completions, confirmed) = log.outcome
        var completedBy = completions
        for id in drained { completedBy[id, default: []].append("drain") }
        let twice = completedBy.filter { $0.value.count > 1 }
        #expect(twice.isEmpty, "\(outage): \(twice.count) messages completed twice, e.g. \(twice.prefix(3).map { "\($0.key) by \($0.value)" })")
        let lost = acknowledged.subtracting(completedBy.keys).subtracting(confirmed)
        #expect(lost.isEmpty, "\(outage): \(lost.count) acknowledged sends were lost, e.g. \(lost.sorted().prefix(5))")
        let unknown = Set(completedBy.keys).union(confirmed).subtracting(attempted)
        #expect(unknown.isEmpty, "\(outage): completed messages that were never sent: \(unknown.prefix(5))")
        print(
            "outage (\(outage)): \(acknowledged.count) sends acknowledged of \(attempted.count), \(completedBy.count) completed "
                + "(\(drained.count) in the drain), \(log.requests.filter { $0.error == "storeUnavailable" }.count) answered storeUnavailable, "
                + "\(ContinuousClock.now - testStart) in all"
        )
    }

    /// Sends one message at a time with a unique id, recording each answer.
    static func sendLoop(worker: Int, client: HeraldClient, log: LoadLog, stop: @Sendable () -> Bool) async {
        var index = 0
        while !stop() && !Task.isCancelled {
            index += 1
            let id = "w\(worker)-\(index)"
            log.attempted(id)
            let start = ContinuousClock.now
            do {
                _ = try await client.send(Message(messageId: id, body: Data(id.utf8)), to: .queue("work"))
                log.sent(id, server: worker % 2, start: start)
            } catch {
                log.failed("send \(id)", error, server: worker % 2, start: start)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Receives in peek-lock mode and completes each message; a complete answered
    /// `storeUnavailable` is retried until its outcome is known (settled, already settled, or the
    /// lock lost, in which case the message comes back).
    static func receiveLoop(worker: Int, client: HeraldClient, log: LoadLog, stop: @Sendable () -> Bool) async {
        let name = "r\(worker)"
        while !stop() && !Task.isCancelled {
            let start = ContinuousClock.now
            let messages: [ReceivedMessage]
            do {
                messages = try await client.receive(from: .queue("work"), maxCount: 5, maxWaitTime: .seconds(1), mode: .peekLock)
                log.succeeded("receive", server: worker % 2, start: start)
            } catch {
                log.failed("receive", error, server: worker % 2, start: start)
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            for message in messages {
                let id = message.message.messageId
                while true {
                    let start = ContinuousClock.now
                    do {
                        let outcome = try await client.complete(message.lockToken!)
                        log.completed(id, by: name, outcome: outcome, server: worker % 2, start: start)
                        break
                    } catch let error as HeraldError where error.code == .storeUnavailable {
                        log.failed("complete \(id)", error, server: worker % 2, start: start)
                        try? await Task.sleep(for: .milliseconds(200))
                    } catch {
                        log.failed("complete \(id)", error, server: worker % 2, start: start)
                        break
                    }
                }
            }
        }
    }

    static func waitUntil(_ what: String, timeout: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            try #require(ContinuousClock.now < deadline, "timed out: \(what)")
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A database that cannot be reached at start: `herald serve --postgres` says so and exits
    /// non-zero once the broker's start timeout (30 s) has passed, without listening meanwhile.
    @Test(.timeLimit(.minutes(1)))
    func serveExitsWhenTheDatabaseIsUnreachable() async throws {
        let port = try ThrowawayPostgres.freePort()
        let start = ContinuousClock.now
        let serve = try ServeProcess(postgres: "postgres://herald@127.0.0.1:\(port)/postgres?sslmode=disable")
        defer { serve.terminate() }
        let exit = await serve.waitForExit(timeout: .seconds(40))
        let elapsed = ContinuousClock.now - start
        #expect(exit != nil && exit != 0, "herald serve did not exit with an error within 40 s (exit \(String(describing: exit)))")
        #expect(elapsed < .seconds(36), "herald serve took \(elapsed) to give up")
        #expect(serve.standardError.contains("cannot reach PostgreSQL"), "no clear message: \(serve.standardError.suffix(2000))")
        #expect(!serve.standardOutput.contains("herald listening"), "it listened without a database: \(serve.standardOutput)")
    }

    /// The same in the library: while the database cannot be reached, operations fail at once with
    /// `storeUnavailable`; after the start timeout, `run()` and the operations throw `storeFailed`
    /// that says why, and `withBroker` does not run its body.
    @Test(.timeLimit(.minutes(1)))
    func brokerGivesUpStartingWhenTheDatabaseIsUnreachable() async throws {
        let port = try ThrowawayPostgres.freePort()
        let clientConfiguration = try PostgresBroker.clientConfiguration(url: "postgres://herald@127.0.0.1:\(port)/postgres?sslmode=disable")
        var logger = Logger(label: "herald.test.unreachable")
        logger.logLevel = .critical
        let configuration = PostgresBroker.Configuration(logger: logger, connectionTimeout: .seconds(1), startTimeout: .seconds(3))
        let client = RunningClient(clientConfiguration)
        let running = try RunningBroker(client: client.client, configuration: configuration)
        try await Task.sleep(for: .milliseconds(1500))
        let early = ContinuousClock.now
        await #expect(throws: HeraldError.self) { try await running.broker.listQueues() }
        do {
            _ = try await running.broker.listQueues()
        } catch let error as HeraldError {
            #expect(error.code == .storeUnavailable, "while starting: \(error)")
        }
        #expect(ContinuousClock.now - early < .milliseconds(500), "operations wait for a start that cannot succeed")
        try await Task.sleep(for: .seconds(3))
        do {
            _ = try await running.broker.listQueues()
            Issue.record("an operation succeeded without a database")
        } catch let error as HeraldError {
            #expect(error.code == .storeFailed && error.message.contains("cannot reach PostgreSQL"), "after the start timeout: \(error)")
        }
        await running.close()
        await client.stop()

        let start = ContinuousClock.now
        let ran = Flag()
        do {
            try await PostgresBroker.withBroker(clientConfiguration: clientConfiguration, configuration: configuration) { _ in
                ran.set()
            }
            Issue.record("withBroker returned without a database")
        } catch let error as HeraldError {
            #expect(error.code == .storeFailed, "\(error)")
        }
        #expect(!ran.isSet, "withBroker ran its body on a broker that could not start")
        #expect(ContinuousClock.now - start < .seconds(6), "withBroker took \(ContinuousClock.now - start) to give up")
    }
}

/// What the load saw: every request's time and answer, sends and completions.
final class LoadLog: Sendable {
    struct Request: CustomStringConvertible {
        var what: String
        var server: Int
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
        /// The HeraldError code, or a description of another error; `nil` for a success.
        var error: String?

        var description: String { "\(self.what) on server \(self.server): \(self.error ?? "ok") after \(self.end - self.start)" }
    }

    private struct State {
        var requests: [Request] = []
        var attempted: Set<String> = []
        var acknowledged: Set<String> = []
        /// Who got `settled` for each message.
        var completions: [String: [String]] = [:]
        /// Messages whose complete was answered `alreadySettled` (an earlier attempt of the same token went through).
        var confirmed: Set<String> = []
        var successes: [(server: Int, at: ContinuousClock.Instant)] = []
    }

    private let state = Mutex(State())

    func attempted(_ id: String) { self.state.withLock { _ = $0.attempted.insert(id) } }

    func sent(_ id: String, server: Int, start: ContinuousClock.Instant) {
        self.state.withLock { state in
            state.acknowledged.insert(id)
            state.requests.append(Request(what: "send \(id)", server: server, start: start, end: .now))
            state.successes.append((server, .now))
        }
    }

    func succeeded(_ what: String, server: Int, start: ContinuousClock.Instant) {
        self.state.withLock { $0.requests.append(Request(what: what, server: server, start: start, end: .now)) }
    }

    func completed(_ id: String, by receiver: String, outcome: SettlementOutcome, server: Int, start: ContinuousClock.Instant) {
        self.state.withLock { state in
            state.requests.append(Request(what: "complete \(id)", server: server, start: start, end: .now))
            switch outcome {
            case .settled: state.completions[id, default: []].append(receiver)
            case .alreadySettled: state.confirmed.insert(id)
            }
            state.successes.append((server, .now))
        }
    }

    func failed(_ what: String, _ error: any Error, server: Int, start: ContinuousClock.Instant) {
        let name = (error as? HeraldError).map { "\($0.code)" } ?? "\(error)"
        self.state.withLock { $0.requests.append(Request(what: what, server: server, start: start, end: .now, error: name)) }
    }

    /// Sends and completions that succeeded on `server` since `instant`.
    func successes(server: Int, since instant: ContinuousClock.Instant) -> Int {
        self.state.withLock { $0.successes.filter { $0.server == server && $0.at > instant }.count }
    }

    var requests: [Request] { self.state.withLock { $0.requests } }

    var outcome: (acknowledged: Set<String>, attempted: Set<String>, completions: [String: [String]], confirmed: Set<String>) {
        self.state.withLock { ($0.acknowledged, $0.attempted, $0.completions, $0.confirmed) }
    }
}

/// A `herald serve --postgres URL --insecure-local --port 0` process.
final class ServeProcess: Sendable {
    private let process: ChildProcess

    init(postgres url: String) throws {
        let herald = try #require(HeraldExecutable.url(), "the herald executable was not found; run `swift build` first")
        self.process = try ChildProcess(herald, ["serve", "--postgres", url, "--insecure-local", "--port", "0", "--log-level", "warning"])
    }

    var standardOutput: String { self.process.standardOutput }
    var standardError: String { self.process.standardError }
    var isRunning: Bool { self.process.isRunning }

    /// The port it listens on, once it says so.
    func port() async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(40)
        while ContinuousClock.now < deadline {
            for line in self.standardOutput.split(separator: "\n") where line.hasPrefix("herald listening on http://") {
                let address = line.dropFirst("herald listening on http://".count).prefix { $0 != " " }
                if let port = address.split(separator: ":").last.flatMap({ Int($0) }) { return port }
            }
            try #require(self.process.isRunning, "herald serve exited: \(self.standardError.suffix(2000))")
            try await Task.sleep(for: .milliseconds(20))
        }
        throw NotListening(description: "herald serve did not listen within 40 s: \(self.standardError.suffix(2000))")
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or `nil` if it still runs.
    func waitForExit(timeout: Duration) async -> Int32? {
        await self.process.waitForExit(timeout: timeout, killOnTimeout: false)?.shellStatus
    }

    func terminate() {
        self.process.signal(SIGKILL)
    }

    struct NotListening: Error, CustomStringConvertible {
        let description: String
    }
}

/// A flag set once, shared between tasks.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { self.value.load(ordering: .relaxed) }

    func set() { self.value.store(true, ordering: .relaxed) }
}
