import Foundation
import HeraldCore
import Synchronization
import Testing

/// The loop that works through bulk jobs, with steps that only count (no store).
@Suite struct BulkJobRunnerTests {
    /// Steps of jobs that each need `steps[id]` steps, recorded in the order they ran.
    final class Steps: Sendable {
        let remaining: Mutex<[String: Int]>
        let log = Mutex<[String]>([])

        init(_ steps: [String: Int]) { self.remaining = Mutex(steps) }

        func step(_ id: String) throws -> Bool {
            self.log.withLock { $0.append(id) }
            return self.remaining.withLock { remaining in
                remaining[id, default: 0] -= 1
                return remaining[id, default: 0] > 0
            }
        }
    }

    @Test func jobsTakeTurnsUntilEachFinishes() async throws {
        let steps = Steps(["a": 3, "b": 1])
        let runner = BulkJobRunner(jobs: ["a", "b"])
        let task = Task { await runner.run { id in try steps.step(id) } }
        try await Self.waitUntil { steps.log.withLock { $0.count } == 4 }
        steps.remaining.withLock { $0["c"] = 2 }
        runner.add("c")
        try await Self.waitUntil { steps.log.withLock { $0.count } == 6 }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        await task.value
        #expect(steps.log.withLock { $0 } == ["a", "b", "a", "a", "c", "c"], "a and b in turn, b done after one step; c once added")
    }

    @Test func aClosedStoreEndsTheRunnerAndAPassingErrorDoesNot() async throws {
        let attempts = Mutex(0)
        let runner = BulkJobRunner(jobs: ["a"])
        await runner.run { _ in
            let attempt = attempts.withLock { value -> Int in
                value += 1
                return value
            }
            if attempt == 1 { throw HeraldError(.storeUnavailable, "the database restarts") }
            throw HeraldError(.storeClosed, "closed")
        }
        #expect(attempts.withLock { $0 } == 2, "tried again after storeUnavailable, stopped at storeClosed")
    }

    @Test func jobsOtherProcessesStartedAreFound() async throws {
        let steps = Steps(["x": 1])
        let runner = BulkJobRunner(rescanInterval: .milliseconds(50))
        let task = Task { await runner.run(runningJobs: { ["x"] }) { id in try steps.step(id) } }
        try await Self.waitUntil { steps.log.withLock { !$0.isEmpty } }
        task.cancel()
        await task.value
        #expect(steps.log.withLock { $0.first } == "x")
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

@Suite struct EntityOptionsChangeTests {
    @Test func aChangeKeepsWhatItLeavesOutAndRefusesSessions() throws {
        let options = EntityOptions(lockDuration: .seconds(10), defaultTimeToLive: .seconds(5))
        let changed = try EntityOptionsChange(maxDeliveryCount: 3, defaultTimeToLive: .some(nil)).applied(to: options)
        #expect(changed == EntityOptions(lockDuration: .seconds(10), maxDeliveryCount: 3))
        #expect(throws: HeraldError(.invalidOption, "requiresSession cannot change after the entity is created (it is false); create another entity")) {
            try EntityOptionsChange(requiresSession: true).applied(to: options)
        }
        #expect(throws: HeraldError.self) { try EntityOptionsChange(maxDeliveryCount: 0).applied(to: options) }
    }
}
