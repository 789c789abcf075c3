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
        let current = BrokerBox(try SQLiteBroker(path: path, configuration: .init(clock: clock)))
        let reopen: @Sendable () async throws -> any MessageBroker = {
            await (current.broker as! SQLiteBroker).close()
            let reopened = try SQLiteBroker(path: path, configuration: .init(clock: clock))
            current.broker = reopened
            return reopened
        }
        do {
            try await testCase.run(ConformanceContext(broker: current.broker, clock: clock, reopen: reopen))
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
