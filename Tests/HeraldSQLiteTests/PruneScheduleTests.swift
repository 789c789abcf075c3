import Foundation
import GRDB
import HeraldCore
import HeraldSQLite
import Testing

@Suite("Forgetting keeps up with remembering")
struct PruneScheduleTests {
    @Test func aPruneIsDueEverySecondAndAfterEnoughNewEntries() {
        var schedule = PruneSchedule(threshold: 3)
        var due: [Bool] = []
        due.append(schedule.isDue(now: 1000))  // the first
        schedule.added(2)
        due.append(schedule.isDue(now: 1500))  // within the second, few added
        schedule.added(1)
        due.append(schedule.isDue(now: 1500))  // within the second, the threshold reached
        due.append(schedule.isDue(now: 2000))
        due.append(schedule.isDue(now: 2500))  // a second after the last
        #expect(due == [true, false, true, false, true])
    }

    /// Settlements come faster than one prune a second forgets (10,000 entries): they are
    /// forgotten as fast as they come, not left to pile up. Each message is received alone, so
    /// that each settlement is an entry of its own (a batch of one receive's tokens is one).
    @Test func settlementsPastTheirMemoryAreForgottenAsFastAsTheyCome() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-prune-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let clock = ManualBrokerClock()
        let broker = try SQLiteBroker.running(path: path, configuration: SQLiteBroker.Configuration(clock: clock))
        let queue = EntityPath.queue("work")
        try await broker.createQueue("work")
        func settle(_ count: Int) async throws {
            for _ in 0..<(count / 100) {
                _ = try await broker.send((0..<100).map { Message(text: "\($0)") }, to: queue)
                let tokens = try await withThrowingTaskGroup(of: [LockToken].self) { group in
                    for _ in 0..<100 {
                        group.addTask { try await broker.receive(from: queue, maxCount: 1, maxWaitTime: .zero, mode: .peekLock).compactMap(\.lockToken) }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                #expect(tokens.count == 100)
                try await broker.complete(tokens)
            }
        }
        try await settle(12_000)
        let firstBatchSettledBefore = Int64(clock.now().timeIntervalSince1970 * 1000) + 1
        clock.advance(by: HeraldLimits.settlementMemory + .seconds(1))
        try await settle(12_000)  // all within one second of the clock
        await broker.close()
        let (old, total) = try await DatabaseQueue(path: path).read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM settled_delivery WHERE settled_at < ?", arguments: [firstBatchSettledBefore]) ?? -1,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM settled_delivery") ?? -1
            )
        }
        #expect(old == 0, "settlements past their memory still stored")
        #expect(total == 12_000, "the recent settlements are remembered")
    }
}
