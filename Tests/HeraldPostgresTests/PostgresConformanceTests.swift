import Foundation
import HeraldConformance
import HeraldCore
import HeraldPostgres
import Synchronization
import Testing

/// Runs the whole conformance suite against the PostgreSQL broker, one fresh schema per case;
/// `reopen` closes the broker and opens a new one on the same schema.
@Suite("PostgresConformanceTests")
struct PostgresConformanceTests {
    @Test(arguments: BrokerConformance.cases)
    func conformance(_ testCase: ConformanceCase) async throws {
        try await CaseGate.shared.run {
            let client = RunningClient(try await TestDatabase.clientConfiguration())
            let schema = TestDatabase.schemaName()
            let clock = ManualBrokerClock()
            let current = Mutex<(RunningBroker, StorageSwitch)?>(nil)
            @Sendable func open() throws -> PostgresBroker {
                let storage = StorageSwitch()
                var configuration = PostgresBroker.Configuration(schema: schema, clock: clock)
                configuration._beforeCommit = { try storage.check() }
                let running = try RunningBroker(client: client.client, configuration: configuration)
                current.withLock { $0 = (running, storage) }
                return running.broker
            }
            @Sendable func closeCurrent() async {
                if let (running, _) = current.withLock({ $0 }) { await running.close() }
            }
            let broker = try open()
            let reopen: @Sendable () async throws -> any MessageBroker = {
                await closeCurrent()
                return try open()
            }
            let failStorage: @Sendable () -> Void = { current.withLock { $0?.1.fail() } }
            do {
                try await testCase.run(ConformanceContext(broker: broker, clock: clock, reopen: reopen, failStorage: failStorage))
            } catch {
                await closeCurrent()
                await TestDatabase.drop(schema, client: client.client)
                await client.stop()
                throw error
            }
            await closeCurrent()
            await TestDatabase.drop(schema, client: client.client)
            await client.stop()
        }
    }
}
