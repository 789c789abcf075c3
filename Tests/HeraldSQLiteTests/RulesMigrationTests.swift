import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// Migration `v7-subscription-rules`: a database written before subscriptions had rules opens with
/// each subscription's filter as its one rule `$Default`, and sends fan out by it.
@Suite struct RulesMigrationTests {
    @Test func eachFilterBecomesTheDefaultRule() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("herald-rules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("herald.sqlite").path
        let filter = SubscriptionFilter(subject: "Placed", properties: ["region": .string("eu")])
        do {
            // The schema as it was before rules, with a topic and two subscriptions written as then.
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(queue, upTo: "v6-topic-sequence")
            try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO entity (key, kind, name, topic_id, options, filter) VALUES ('events', 'topic', 'events', NULL, ?, NULL)",
                    arguments: [try StoredJSON.encode(EntityOptions())])
                let topic = db.lastInsertedRowID
                for (name, stored) in [("placed", try StoredJSON.encode(filter)), ("all", try StoredJSON.encode(SubscriptionFilter.all))] {
                    try db.execute(
                        sql: "INSERT INTO entity (key, kind, name, topic_id, options, filter) VALUES (?, 'subscription', ?, ?, ?, ?)",
                        arguments: ["events/subscriptions/\(name)", name, topic, try StoredJSON.encode(EntityOptions()), stored])
                }
            }
            try queue.close()
        }
        let broker = try SQLiteBroker.running(path: path)
        let placed = EntityPath.subscription("placed", of: "events")
        #expect(try await broker.rules(of: placed) == [SubscriptionRule(name: "$Default", filter: filter)])
        #expect(try await broker.rules(of: .subscription("all", of: "events")) == [SubscriptionRule(name: "$Default", filter: .all)])
        try await broker.send(Message(messageId: "eu", body: Data(), subject: "Placed", applicationProperties: ["region": .string("eu")]), to: .topic("events"))
        try await broker.send(Message(messageId: "us", body: Data(), subject: "Placed"), to: .topic("events"))
        #expect(try await broker.counts(of: placed).active == 1)
        #expect(try await broker.counts(of: .subscription("all", of: "events")).active == 2)
        await broker.close()
    }
}
