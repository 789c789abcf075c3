import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// The settlement memory keeps a row per settlement call and delivery (`settled_delivery`), not one
/// per token: completing a receive's batch of 100 wrote 100 rows and 100 index entries, about a
/// tenth of the writer's time in a receive-and-complete cycle.
@Suite struct SettledDeliveryTests {
    /// A batch of 99 is one row, and every token of it is remembered; a token the row's range
    /// covers but the row does not list (its message was not settled) is not.
    @Test func aBatchIsOneRowAndOnlyItsTokensAreRemembered() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-settled-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let clock = ManualBrokerClock()
        let broker = try SQLiteBroker.running(path: path, configuration: SQLiteBroker.Configuration(clock: clock))
        let queue = EntityPath.queue("work")
        try await broker.createQueue(queue.name, options: EntityOptions(lockDuration: .seconds(10)))
        _ = try await broker.send((0..<100).map { Message(messageId: "m\($0)", body: Data("\($0)".utf8)) }, to: queue)
        let tokens = try await broker.receive(from: queue, maxCount: 100, maxWaitTime: .zero, mode: .peekLock).compactMap(\.lockToken)
        #expect(tokens.count == 100)

        // Every token but the 51st, in one call; the 51st lies inside the row's range.
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
        await broker.close()

        let rows = try await DatabaseQueue(path: path).read { db in
            try Row.fetchAll(db, sql: "SELECT first_seq, last_seq, json_array_length(seqs) FROM settled_delivery").map { [$0[0], $0[1], $0[2]] as [Int64] }
        }
        #expect(rows == [[tokens[0].sequenceNumber, tokens[99].sequenceNumber, 99]])
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
