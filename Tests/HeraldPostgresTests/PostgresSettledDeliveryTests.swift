import Foundation
import HeraldCore
import PostgresNIO
import Testing

@testable import HeraldPostgres

/// The settlement memory keeps a row per settlement call and delivery (`settled_delivery`), not one
/// per token: completing a receive's batch of 100 inserted 100 rows and 200 index entries.
@Suite("PostgresSettledDeliveryTests")
struct PostgresSettledDeliveryTests {
    /// A batch of 99 is one row, and every token of it is remembered; a token of the same delivery
    /// the row does not list (its message was not settled) is not.
    @Test func aBatchIsOneRowAndOnlyItsTokensAreRemembered() async throws {
        try await SchemaFixture.with("settled") { fixture in
            let clock = ManualBrokerClock()
            let broker = try fixture.open { $0.clock = clock }.broker
            let queue = EntityPath.queue("work")
            try await broker.createQueue(queue.name, options: EntityOptions(lockDuration: .seconds(10)))
            _ = try await broker.send((0..<100).map { Message(messageId: "m\($0)", body: Data("\($0)".utf8)) }, to: queue)
            let tokens = try await broker.receive(from: queue, maxCount: 100, maxWaitTime: .zero, mode: .peekLock).compactMap(\.lockToken)
            #expect(tokens.count == 100)

            var settled = tokens
            let unsettled = settled.remove(at: 50)
            #expect(try await broker.complete(settled) == .settled)
            #expect(try await broker.complete(settled) == .alreadySettled, "the whole batch again")
            #expect(try await broker.complete(Array(settled[10..<20])) == .alreadySettled, "part of it again")
            #expect(try await broker.complete(settled[98]) == .alreadySettled, "its last token alone")

            clock.advance(by: .seconds(11))
            await #expect {
                try await broker.complete(unsettled)
            } throws: { ($0 as? HeraldError)?.code == .lockLost }
            await #expect {
                try await broker.complete([settled[0], unsettled])
            } throws: { ($0 as? HeraldError)?.code == .lockLost }

            let rows = try await fixture.clients[0].client.query(
                PostgresQuery(unsafeSQL: "SELECT cardinality(seqs) FROM \(Tables(schema: fixture.schema).settledDelivery)")
            ).collect()
            #expect(try rows.map { try $0.decode(Int64.self) } == [99])
        }
    }
}
