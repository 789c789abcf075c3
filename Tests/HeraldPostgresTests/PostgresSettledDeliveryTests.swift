import Foundation
import HeraldCore
import PostgresNIO
import Testing

@testable import HeraldPostgres

/// The settlement memory keeps a row per settlement call and delivery (`settled_delivery`), not one
/// per token: completing a receive's batch of 100 inserted 100 rows and 200 index entries.
@Suite("PostgresSettledDeliveryTests")
struct PostgresSettledDeliveryTests {
    /// A batch of 99 tokens of one receive is one row, listing them (what a retry may answer is
    /// the conformance case `settlementRetries.onlyTheSettledTokensOfADeliveryAreRemembered`).
    @Test func aBatchIsOneRow() async throws {
        try await SchemaFixture.with("settled") { fixture in
            let broker = try fixture.open().broker
            let queue = EntityPath.queue("work")
            try await broker.createQueue(queue.name)
            _ = try await broker.send((0..<100).map { Message(messageId: "m\($0)", body: Data("\($0)".utf8)) }, to: queue)
            var tokens = try await broker.receive(from: queue, maxCount: 100, maxWaitTime: .zero, mode: .peekLock).compactMap(\.lockToken)
            tokens.remove(at: 50)
            #expect(try await broker.complete(tokens) == .settled)

            let rows = try await fixture.clients[0].client.query(
                PostgresQuery(unsafeSQL: "SELECT cardinality(seqs) FROM \(Tables(schema: fixture.schema).settledDelivery)")
            ).collect()
            #expect(try rows.map { try $0.decode(Int64.self) } == [99])
        }
    }
}
