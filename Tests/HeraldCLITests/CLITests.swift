import Foundation
import HeraldCLI
import HeraldCore
import HeraldSQLite
import Synchronization
import Testing

/// The admin commands, run in-process on a temporary data directory.
@Suite("herald admin commands on a data directory")
struct CLITests {
    @Test("stats prints every queue and subscription with its counts")
    func statsTable() async throws {
        let store = try await Store.withData()
        defer { store.remove() }
        let result = await store.herald("stats")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "ENTITY                      ACTIVE  LOCKED  SCHEDULED  DEFERRED  DEAD-LETTERED")
        #expect(lines.contains("events/subscriptions/audit       2       0          0         0              0"))
        #expect(lines.contains("orders                           2       0          1         0              1"))
        #expect(lines.count == 3, "topics hold no messages and are not listed: \(lines)")
    }

    @Test("stats --json is the API's entity list with counts")
    func statsJSON() async throws {
        let store = try await Store.withData()
        defer { store.remove() }
        let result = await store.herald("stats", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.compactMap { $0["path"] as? String } == ["events/subscriptions/audit", "orders"])
        let orders = try #require(items.last?["counts"] as? [String: Int])
        #expect(orders == ["active": 2, "locked": 0, "scheduled": 1, "deferred": 0, "deadLettered": 1])
    }

    @Test("deadletter list prints sequence number, message id, reason, description and deliveries")
    func deadLetterList() async throws {
        let store = try await Store.withData()
        defer { store.remove() }
        let result = await store.herald("deadletter", "list", "orders")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("SEQ  MESSAGE ID  REASON     DESCRIPTION          DELIVERIES  ENQUEUED"))
        #expect(lines[1].hasPrefix("  1  order-1     BadFormat  customer id missing           1  20"))

        let json = await store.herald("deadletter", "list", "orders", "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let messages = try #require(object["messages"] as? [[String: Any]])
        #expect(messages.count == 1)
        #expect(messages.first?["deadLetterReason"] as? String == "BadFormat")
        #expect((messages.first?["message"] as? [String: Any])?["text"] as? String == "first")
    }

    @Test("deadletter resubmit and purge move and drop dead letters")
    func deadLetterResubmitAndPurge() async throws {
        let store = try await Store.withData()
        defer { store.remove() }
        let missing = await store.herald("deadletter", "resubmit", "orders", "99")
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("error: messageNotFound: "))

        let resubmit = await store.herald("deadletter", "resubmit", "orders", "--all")
        #expect(resubmit.status == 0, "\(resubmit.stderr)")
        #expect(resubmit.stdout == "resubmitted 1 dead letter(s) to orders\n")
        let counts = try await store.counts(.queue("orders"))
        #expect(counts.active == 3 && counts.deadLettered == 0)

        let received = await store.herald("receive", "orders", "--max-count", "1", "--settle", "none")
        #expect(received.status == 0)
        try await store.withBroker { broker in
            let message = try #require(try await broker.receive(from: .queue("orders"), maxCount: 1).first)
            try await broker.deadLetter(message.lockToken!, reason: "Poison", description: nil)
        }
        let purge = await store.herald("deadletter", "purge", "orders", "--json")
        #expect(purge.status == 0, "\(purge.stderr)")
        #expect(purge.stdout.contains("\"purged\" : 1"))
        #expect(try await store.counts(.queue("orders")).deadLettered == 0)
    }

    @Test("entity commands create, list, show and delete")
    func entities() async throws {
        let store = Store()
        defer { store.remove() }
        var result = await store.herald("queue", "create", "orders", "--lock-duration", "30s", "--max-delivery-count", "3", "--duplicate-window", "10m")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "created queue orders\n")
        result = await store.herald("queue", "create", "orders")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: entityAlreadyExists: "))

        result = await store.herald("queue", "list")
        #expect(result.stdout.contains("orders   30s             3    -           10m  no"))
        result = await store.herald("queue", "show", "orders", "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((object["options"] as? [String: Any])?["lockDurationMs"] as? Int == 30_000)
        #expect((object["counts"] as? [String: Int])?["active"] == 0)

        _ = await store.herald("topic", "create", "events")
        result = await store.herald("subscription", "create", "events", "billing", "--subject", "OrderPlaced", "--property", "priority:int=5")
        #expect(result.status == 0, "\(result.stderr)")
        result = await store.herald("subscription", "list", "events")
        #expect(result.stdout.contains("subject=OrderPlaced priority:int=5"))
        result = await store.herald("subscription", "show", "events", "billing")
        #expect(result.stdout.contains("Filter:"))

        result = await store.herald("send", "events", "--text", "skipped", "--subject", "OrderPlaced")
        #expect(result.status == 0, "\(result.stderr)")
        result = await store.herald("send", "events", "--text", "placed", "--subject", "OrderPlaced", "--property", "priority:int=5")
        #expect(result.status == 0, "\(result.stderr)")
        result = await store.herald("peek", "events/subscriptions/billing")
        #expect(result.stdout.contains("placed"))
        #expect(!result.stdout.contains("skipped"), "the filter needs the property")
        result = await store.herald("receive", "events/subscriptions/billing", "--json")
        #expect(result.stdout.contains("\"text\" : \"placed\""))
        #expect(try await store.counts(.subscription("billing", of: "events")).active == 0)

        result = await store.herald("queue", "delete", "orders")
        #expect(result.status == 0)
        result = await store.herald("queue", "show", "orders")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: entityNotFound: "))
    }

    @Test("a missing data directory is an error, not a new empty store")
    func missingDataDirectory() async throws {
        let store = Store()
        let result = await store.herald("stats")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: no data directory at "))
        #expect(!FileManager.default.fileExists(atPath: store.directory.path))
    }

    @Test("usage errors and --help")
    func usage() async throws {
        let store = Store()
        let help = await HeraldAdmin.captured(["stats", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("herald stats --data /var/lib/herald"))
        let bad = await store.herald("send", "orders")
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--text or --file"))
    }
}

/// A temporary data directory and a way to run the commands on it.
struct Store {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-cli-\(UUID().uuidString)")

    /// A store holding: queue `orders` (max 2 deliveries) with 2 active messages, 1 scheduled and
    /// 1 dead letter (`order-1`, reason BadFormat); topic `events` with subscription `audit`
    /// holding 2 messages.
    static func withData() async throws -> Store {
        let store = Store()
        try FileManager.default.createDirectory(at: store.directory, withIntermediateDirectories: true)
        try await store.withBroker { broker in
            try await broker.createQueue("orders", options: EntityOptions(maxDeliveryCount: 2))
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            for (index, text) in ["first", "second", "third"].enumerated() {
                try await broker.send(Message(messageId: "order-\(index + 1)", body: Data(text.utf8)), to: .queue("orders"))
            }
            _ = try await broker.schedule(Message(body: Data("later".utf8)), at: Date().addingTimeInterval(3600), to: .queue("orders"))
            _ = try await broker.send([Message(body: Data("a".utf8)), Message(body: Data("b".utf8))], to: .topic("events"))
            let first = try #require(try await broker.receive(from: .queue("orders"), maxCount: 1).first)
            try await broker.deadLetter(first.lockToken!, reason: "BadFormat", description: "customer id missing")
        }
        return store
    }

    func withBroker<T>(_ body: (SQLiteBroker) async throws -> T) async throws -> T {
        let broker = try SQLiteBroker(path: self.directory.appendingPathComponent("herald.sqlite").path)
        do {
            let result = try await body(broker)
            await broker.close()
            return result
        } catch {
            await broker.close()
            throw error
        }
    }

    func counts(_ path: EntityPath) async throws -> EntityCounts {
        try await self.withBroker { try await $0.counts(of: path) }
    }

    /// Runs `herald <arguments> --data <directory>`.
    func herald(_ arguments: String...) async -> HeraldAdmin.Captured {
        await HeraldAdmin.captured(arguments + ["--data", self.directory.path])
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.directory)
    }
}
