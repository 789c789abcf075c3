import Foundation
import HeraldConformance
import HeraldCore
import HeraldSQLite
import Synchronization
import Testing

/// Runs the whole conformance suite against the SQLite broker, one fresh database file per case.
@Suite("SQLiteConformanceTests")
struct SQLiteConformanceTests {
    @Test(arguments: BrokerConformance.cases)
    func conformance(_ testCase: ConformanceCase) async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("herald-conformance-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let clock = ManualBrokerClock()
        // Each broker gets its own switch, so a reopened broker writes normally again.
        let currentSwitch = Mutex<StorageSwitch?>(nil)
        @Sendable func open() throws -> SQLiteBroker {
            let storage = StorageSwitch()
            currentSwitch.withLock { $0 = storage }
            var configuration = SQLiteBroker.Configuration(clock: clock)
            configuration._beforeCommit = { try storage.check() }
            return try SQLiteBroker.running(path: path, configuration: configuration)
        }
        let current = BrokerBox(try open())
        let reopen: @Sendable () async throws -> any MessageBroker = {
            await (current.broker as! SQLiteBroker).close()
            let reopened = try open()
            current.broker = reopened
            return reopened
        }
        let failStorage: @Sendable () -> Void = { currentSwitch.withLock { $0?.fail() } }
        do {
            try await testCase.run(ConformanceContext(broker: current.broker, clock: clock, reopen: reopen, failStorage: failStorage))
        } catch {
            await (current.broker as! SQLiteBroker).close()
            throw error
        }
        await (current.broker as! SQLiteBroker).close()
    }

    @Test func caseNamesAreUnique() {
        let names = BrokerConformance.cases.map(\.name)
        #expect(Set(names).count == names.count, "duplicate case names: \(Dictionary(grouping: names) { $0 }.filter { $1.count > 1 }.keys.sorted())")
    }

    /// The suite's own expectations must fail when they should, or every case would pass vacuously.
    @Test func expectationsFailWhenTheyShould() async throws {
        await #expect(throws: ConformanceFailure.self, "another HeraldError code") {
            try await expectError(.lockLost) { throw HeraldError(.sessionLockLost, "wrong code") }
        }
        await #expect(throws: ConformanceFailure.self, "success where an error is expected") {
            try await expectError(.lockLost) { 42 }
        }
        await #expect(throws: ConformanceFailure.self, "an error that is not a HeraldError") {
            try await expectError(.lockLost) { throw CancellationError() }
        }
        await #expect(throws: ConformanceFailure.self, "none of the allowed codes") {
            try await expectError(oneOf: [.lockLost, .sessionLockLost]) { throw HeraldError(.messageNotFound, "wrong code") }
        }
        let matched = try await expectError(oneOf: [.lockLost, .sessionLockLost]) { throw HeraldError(.sessionLockLost, "right code") }
        #expect(matched.code == .sessionLockLost)
        #expect(throws: ConformanceFailure.self) { try expectEqual(1, 2) }
        #expect(throws: ConformanceFailure.self) { try expect(false, "false") }
        #expect(throws: ConformanceFailure.self) { _ = try expectNotNil(Int?.none, "nil") }
        try expectEqual("a", "a")
        let failure = ConformanceFailure("message", line: 7)
        #expect(failure.description.hasSuffix(":7: message"))
    }
}

/// The broker a case currently uses; `reopen` replaces it.
private final class BrokerBox: Sendable {
    private let storage: Mutex<any MessageBroker>

    init(_ broker: any MessageBroker) {
        self.storage = Mutex(broker)
    }

    var broker: any MessageBroker {
        get { self.storage.withLock { $0 } }
        set { self.storage.withLock { $0 = newValue } }
    }
}

/// Runs the conformance suite against the in-memory store, `SQLiteBroker.inMemory()`, one fresh
/// database per case. Its contents end with the broker, so the cases that close the broker and
/// open its storage again (``ConformanceRequirement/durableStorage``) are excepted: the ones
/// ``excepted`` names, no more, no fewer.
@Suite("InMemoryConformanceTests")
struct InMemoryConformanceTests {
    /// The cases the in-memory store does not run: each checks what survives a restart.
    static let excepted: Set<String> = [
        "restart.lockedMessagesAreDeliveredAgain",
        "restart.sequenceNumbersContinue",
        "restart.scheduledDeferredAndDeadLettersSurvive",
        "restart.entitiesSurvive",
        "restart.sessionMessagesSurvive",
        "duplicates.survivesReopen",
        "sessions.stateGetSetSurvivesReopen",
        "settlementRetries.rememberedAcrossRestart",
        "transactions.surviveRestart",
        "failStop.failedSyncIsNeverAcknowledged",
        "management.updatedOptionsSurviveRestart",
        "bulkJobs.resumedAfterRestart",
        "restart.rulesSurvive",
    ]

    /// Thrown by the context's `reopen`: an in-memory store has nothing to open again.
    struct NoStorageToReopen: Error, CustomStringConvertible {
        var description: String {
            "the case reopened the storage: an in-memory store has none left once its broker closes (mark the case .durableStorage)"
        }
    }

    @Test(arguments: BrokerConformance.casesWithout([.durableStorage]))
    func conformance(_ testCase: ConformanceCase) async throws {
        let reopened = try await Self.run(testCase)
        #expect(!reopened, "\(testCase.name) reopened the storage without requiring .durableStorage")
    }

    @Test func theExceptedCasesAreTheDurableStorageCases() {
        let requiring = Set(BrokerConformance.casesRequiring(.durableStorage).map(\.name))
        #expect(requiring == Self.excepted)
        let run = BrokerConformance.casesWithout([.durableStorage])
        #expect(run.count + Self.excepted.count == BrokerConformance.cases.count)
        #expect(run.allSatisfy { !Self.excepted.contains($0.name) })
    }

    /// The exception is no wider than it must be: every excepted case does reopen the storage
    /// (it fails on the in-memory store exactly there, having passed what came before).
    @Test(arguments: BrokerConformance.casesRequiring(.durableStorage))
    func anExceptedCaseReopensTheStorage(_ testCase: ConformanceCase) async throws {
        do {
            let reopened = try await Self.run(testCase)
            Issue.record("\(testCase.name) passed on the in-memory store (reopened: \(reopened)); it needs no exception")
        } catch is NoStorageToReopen {
            // What the exception is for.
        }
    }

    /// Runs `testCase` on a fresh in-memory broker whose `reopen` throws ``NoStorageToReopen``;
    /// returns whether the case called it.
    private static func run(_ testCase: ConformanceCase) async throws -> Bool {
        let clock = ManualBrokerClock()
        let storage = StorageSwitch()
        var configuration = SQLiteBroker.Configuration(clock: clock)
        configuration._beforeCommit = { try storage.check() }
        let broker = try SQLiteBroker.runningInMemory(configuration: configuration)
        let reopened = Mutex(false)
        let context = ConformanceContext(
            broker: broker, clock: clock,
            reopen: {
                reopened.withLock { $0 = true }
                throw NoStorageToReopen()
            },
            failStorage: { storage.fail() }
        )
        do {
            try await testCase.run(context)
        } catch {
            await broker.close()
            throw error
        }
        await broker.close()
        return reopened.withLock { $0 }
    }
}
