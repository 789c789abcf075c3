import Foundation
import HeraldCore
import HeraldSQLite
import Logging
import Testing

@testable import HeraldSimulation

/// The storage fault layer on its own: a crash keeps what was synced and drops the rest.
@Suite struct FaultStorageTests {
    private func makeBroker(_ storage: FaultStorage, syncs: Bool) throws -> SQLiteBroker {
        var configuration = SQLiteBroker.Configuration(
            clock: ManualBrokerClock(), logger: Logger(label: "herald.simulation.test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        configuration._vfsName = FaultStorage.vfsName
        configuration._syncWAL = { path in if syncs { try storage.sync(path) } }
        return try SQLiteBroker.running(path: storage.directory + "herald.sqlite", configuration: configuration)
    }

    @Test(arguments: [true, false])
    func crashKeepsExactlyTheSyncedCommits(_ syncs: Bool) async throws {
        let storage = try FaultStorage(directory: NSTemporaryDirectory() + "herald-fault-test-\(syncs)-\(UUID().uuidString)")
        defer { storage.remove() }
        var broker = try self.makeBroker(storage, syncs: true)
        try await broker.createQueue("q")
        await broker.close()
        broker = try self.makeBroker(storage, syncs: syncs)
        try await broker.send(Message(messageId: "a", text: "a"), to: .queue("q"))
        storage.crash(keepSeed: 0)
        await broker.close()
        storage.restart()
        broker = try self.makeBroker(storage, syncs: true)
        let messages = try await broker.peek(.queue("q"), fromSequenceNumber: 1, maxCount: 10)
        #expect(messages.map(\.message.messageId) == (syncs ? ["a"] : []))
        #expect(storage.stats.undoneWrites > 0 || syncs)
        await broker.close()
    }

    @Test func armedCrashFailsTheOperationAndStopsTheStore() async throws {
        let storage = try FaultStorage(directory: NSTemporaryDirectory() + "herald-fault-test-armed-\(UUID().uuidString)")
        defer { storage.remove() }
        let broker = try self.makeBroker(storage, syncs: true)
        try await broker.createQueue("q")
        storage.arm(countdown: 1, keepSeed: 0)
        await #expect(throws: HeraldError.self) { try await broker.send(Message(messageId: "b", text: "b"), to: .queue("q")) }
        #expect(storage.isCrashed)
        #expect(broker.failure != nil)
        await broker.close()
    }
}
