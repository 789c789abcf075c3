import AsyncHTTPClient
import Foundation
import HeraldClient
import HeraldCore
import HeraldSimulation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Jepsen-style crash campaign against real `herald serve` processes: each round starts the
/// server on the same store, loads it with concurrent senders and peek-lock receivers over HTTP,
/// and kills it with SIGKILL at a random time (every `pauseEvery`-th round it is first paused with
/// SIGSTOP for longer than the lock duration). After the last round the queue is drained and
/// ``CrashCampaignChecker`` judges the history.
struct CrashCampaign: Sendable {
    /// What the campaign runs against and how hard.
    struct Configuration: Sendable {
        /// The store arguments of `herald serve`: `--data DIR` or `--postgres URL`.
        var storeArguments: [String]
        var rounds: Int
        var seed: UInt64
        var senders: Int
        var receivers: Int
        var pauseEvery: Int
        var lockDuration: Duration = .seconds(2)
        /// The folder of the server logs (and of the embedded store).
        var folder: URL
    }

    /// What a campaign produced: the checker's report plus the campaign's own figures.
    struct Outcome: Sendable {
        var report: CrashCampaignReport
        var kills = 0
        var pauses = 0
        var elapsed: Duration = .zero
    }

    let configuration: Configuration
    let queueName = "crash-campaign-\(UUID().uuidString.prefix(8).lowercased())"

    /// Runs every round, drains the queue and checks the history.
    func run(progress: @Sendable (String) -> Void) async throws -> Outcome {
        let start = ContinuousClock.now
        let httpClient = HeraldClient.makeHTTPClient()
        do {
            let outcome = try await self.run(httpClient: httpClient, start: start, progress: progress)
            try await httpClient.shutdown()
            return outcome
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }

    /// Runs the rounds and the drain with `httpClient`, returning the checked outcome.
    private func run(httpClient: HTTPClient, start: ContinuousClock.Instant, progress: @Sendable (String) -> Void) async throws -> Outcome {
        let history = CrashCampaignHistory()
        let retries = CrashCampaignWorkers.Retries()
        var random = SimulationRandom(seed: self.configuration.seed)
        var outcome = Outcome(report: CrashCampaignReport())
        let queue = EntityPath.queue(self.queueName)
        for round in 1...self.configuration.rounds {
            let server = try await self.startServer()
            defer { server.killIfRunning() }
            let workers = try self.workers(port: server.port, httpClient: httpClient, history: history, retries: retries, round: round)
            if round == 1 { try await self.createQueue(workers.client) }
            let stop = CrashCampaignWorkers.StopFlag()
            let senders = self.configuration.senders
            let receivers = self.configuration.receivers
            let load = Task { await workers.run(senders: senders, receivers: receivers, stop: stop) }
            defer { load.cancel() }
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...2000, using: &random)))
            if self.configuration.pauseEvery > 0 && round % self.configuration.pauseEvery == 0 {
                server.signal(SIGSTOP)
                try await Task.sleep(for: self.configuration.lockDuration + .seconds(1))
                server.signal(SIGCONT)
                outcome.pauses += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 300...1000, using: &random)))
            }
            await server.killAndWait()
            outcome.kills += 1
            // The requests in flight can only fail now; cancel them rather than wait for the client's
            // connection retries to time out.
            stop.raise()
            load.cancel()
            await load.value
            if round % 10 == 0 || round == self.configuration.rounds {
                progress("round \(round)/\(self.configuration.rounds): \(history.snapshot.count) ids so far, \(retries.count) sends to retry")
            }
        }
        let left: Int
        var drainError: String?
        do {
            left = try await self.drain(httpClient: httpClient, history: history, retries: retries, queue: queue)
        } catch {
            (left, drainError) = (0, "\(error)")
        }
        outcome.report = CrashCampaignChecker.check(history.snapshot, leftInQueue: left)
        outcome.report.drainError = drainError
        outcome.report.receiveFailures = history.receiveFailures
        outcome.elapsed = ContinuousClock.now - start
        return outcome
    }

    /// Starts `herald serve` on the campaign's store, trying up to three times.
    private func startServer() async throws -> CrashCampaignServer {
        let log = self.configuration.folder.appendingPathComponent("serve.log")
        var failure: (any Error)?
        for _ in 0..<3 {
            do {
                return try await CrashCampaignServer.start(arguments: self.configuration.storeArguments, log: log)
            } catch {
                failure = error
            }
        }
        throw failure ?? CrashCampaignServer.StartFailure(description: "herald serve did not start")
    }

    /// The clients of round `round` for the server on `port`.
    private func workers(
        port: Int, httpClient: HTTPClient, history: CrashCampaignHistory, retries: CrashCampaignWorkers.Retries, round: Int
    ) throws -> CrashCampaignWorkers {
        let client = try HeraldClient(baseURL: "http://127.0.0.1:\(port)", httpClient: httpClient, requestTimeout: .seconds(10))
        return CrashCampaignWorkers(client: client, queue: .queue(self.queueName), history: history, retries: retries, round: round)
    }

    /// Creates the campaign's queue: a short lock, a duplicate-detection window, no dead-lettering by delivery count.
    private func createQueue(_ client: HeraldClient) async throws {
        let options = EntityOptions(
            lockDuration: self.configuration.lockDuration, maxDeliveryCount: EntityOptions.maxDeliveryCountRange.upperBound,
            duplicateDetectionWindow: .seconds(24 * 3600)
        )
        try await client.createQueue(self.queueName, options: options)
    }

    /// Restarts the server once more, sends the unknown sends again until acknowledged, receives
    /// and completes until the queue is empty, then stops the server gracefully.
    ///
    /// - Returns: How many messages the queue still holds in any state (0 when the drain succeeded).
    private func drain(
        httpClient: HTTPClient, history: CrashCampaignHistory, retries: CrashCampaignWorkers.Retries, queue: EntityPath
    ) async throws -> Int {
        let server = try await self.startServer()
        defer { server.killIfRunning() }
        let workers = try self.workers(
            port: server.port, httpClient: httpClient, history: history, retries: retries, round: self.configuration.rounds + 1
        )
        let deadline = ContinuousClock.now + .seconds(120)
        while let id = retries.take(), ContinuousClock.now < deadline {
            if await !workers.sendOnce(id) { try await Task.sleep(for: .milliseconds(50)) }
        }
        var left = Int.max
        while ContinuousClock.now < deadline {
            let stop = CrashCampaignWorkers.StopFlag()
            let timer = Task {
                try? await Task.sleep(until: deadline)
                stop.raise()
            }
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<self.configuration.receivers {
                    group.addTask { await workers.receive(stop: stop, duringDrain: true) }
                }
            }
            timer.cancel()
            let counts = try await workers.client.counts(of: queue)
            left = counts.active + counts.locked + counts.scheduled + counts.deferred + counts.deadLettered
            if left == 0 { break }
            if counts.active == 0 && counts.locked > 0 { try await Task.sleep(for: .milliseconds(250)) }
            if counts.active + counts.locked == 0 { break }
        }
        await server.terminate()
        return left
    }
}
