import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// The settlement memory keeps a row per settlement call and delivery (`settled_delivery`), not one
/// per token: completing a receive's batch of 100 wrote 100 rows and 100 index entries, about a
/// tenth of the writer's time in a receive-and-complete cycle.
@Suite struct SettledDeliveryTests {
    /// A batch of 99 tokens of one receive is one row, listing them (what a retry may answer is
    /// the conformance case `settlementRetries.onlyTheSettledTokensOfADeliveryAreRemembered`).
    @Test func aBatchIsOneRow() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-settled-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let broker = try SQLiteBroker.running(path: path)
        let queue = EntityPath.queue("work")
        try await broker.createQueue(queue.name)
        _ = try await broker.send((0..<100).map { Message(messageId: "m\($0)", body: Data("\($0)".utf8)) }, to: queue)
        var tokens = try await broker.receive(from: queue, maxCount: 100, maxWaitTime: .zero, mode: .peekLock).compactMap(\.lockToken)
        tokens.remove(at: 50)
        #expect(try await broker.complete(tokens) == .settled)
        await broker.close()

        let rows = try await DatabaseQueue(path: path).read { db in
            try Row.fetchAll(db, sql: "SELECT first_seq, last_seq, json_array_length(seqs) FROM settled_delivery").map { [$0[0], $0[1], $0[2]] as [Int64] }
        }
        #expect(rows == [[tokens[0].sequenceNumber, tokens[98].sequenceNumber, 99]])
    }

    /// A file of the schema before (v8-delivered-messages), with a token remembered in its
    /// `settlement` table: it opens, and a retry of that token is still answered from memory.
    @Test func settlementsRememberedBeforeTheMigrationStayRemembered() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-settled-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let queue = EntityPath.queue("work")
        let nonce = UUID()
        do {
            let database = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(database, upTo: "v8-delivered-messages")
            try await database.write { db in
                try db.execute(
                    sql: "INSERT INTO entity (id, key, kind, name, topic_id, options, filter, last_seq) VALUES (1, ?, 'queue', ?, NULL, ?, NULL, 7)",
                    arguments: [queue.entityKey, queue.name, try StoredJSON.encode(EntityOptions())]
                )
                try db.execute(
                    sql: "INSERT INTO settlement (entity_id, seq, nonce, kind, settled_at) VALUES (1, 7, ?, ?, ?)",
                    arguments: [StoreTransaction.nonceData(nonce), SettlementKind.complete.rawValue, Int64(Date().timeIntervalSince1970 * 1000)]
                )
            }
            try database.close()
        }

        let broker = try SQLiteBroker.running(path: path)
        #expect(try await broker.complete(LockToken(entity: queue, sequenceNumber: 7, nonce: nonce)) == .alreadySettled)
        await #expect {
            try await broker.complete(LockToken(entity: queue, sequenceNumber: 7, nonce: UUID()))
        } throws: { ($0 as? HeraldError)?.code == .lockLost }
        await broker.close()

        let tables = try await DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'settle%'")
        }
        #expect(tables == ["settled_delivery"])
    }
}
