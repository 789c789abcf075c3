import Foundation
import HeraldCLI
import HeraldCore
import HeraldSQLite
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    @Test("subscription rule list, add and remove change what a subscription receives")
    func subscriptionRules() async throws {
        let store = Store()
        defer { store.remove() }
        _ = await store.herald("topic", "create", "events")
        var result = await store.herald("subscription", "create", "events", "audit", "--subject", "Placed")
        #expect(result.status == 0, "\(result.stderr)")
        result = await store.herald("subscription", "rule", "list", "events", "audit")
        #expect(result.stdout.contains("$Default  subject=Placed"), "\(result.stdout)")

        result = await store.herald("subscription", "rule", "add", "events", "audit", "eu", "--property", "region=eu", "--content-type", "text/plain")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "added rule eu to events/subscriptions/audit\n")
        result = await store.herald("subscription", "rule", "add", "events", "audit", "eu")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: entityAlreadyExists: "))
        result = await store.herald("subscription", "rule", "add", "events", "audit", String(repeating: "r", count: 51))
        #expect(result.stderr.hasPrefix("error: invalidName: "))
        result = await store.herald("subscription", "rule", "remove", "events", "audit", "$Default")
        #expect(result.status == 0, "\(result.stderr)")
        result = await store.herald("subscription", "rule", "remove", "events", "audit", "$Default")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: entityNotFound: "))
        result = await store.herald("subscription", "rule", "list", "events", "audit", "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.compactMap { $0["name"] as? String } == ["eu"])
        result = await store.herald("subscription", "list", "events")
        #expect(result.stdout.contains("eu: contentType=text/plain region=eu"), "\(result.stdout)")

        _ = await store.herald("send", "events", "--text", "placed", "--subject", "Placed")
        _ = await store.herald("send", "events", "--text", "european", "--property", "region=eu", "--content-type", "text/plain")
        result = await store.herald("peek", "events/subscriptions/audit")
        #expect(result.stdout.contains("european") && !result.stdout.contains("placed"), "\(result.stdout)")

        result = await store.herald("subscription", "rule", "remove", "events", "audit", "eu")
        #expect(result.status == 0)
        result = await store.herald("subscription", "rule", "list", "events", "audit")
        #expect(result.stdout.contains("(none"))
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

    @Test("topic list leaves out what concerns receivers; receive on a session queue names --session-id")
    func topicListAndSessionHint() async throws {
        let store = Store()
        defer { store.remove() }
        _ = await store.herald("topic", "create", "events", "--duplicate-window", "10m")
        var result = await store.herald("topic", "list")
        #expect(result.stdout == "NAME    TTL  DEDUP WINDOW\nevents    -           10m\n", "\(result.stdout)")
        _ = await store.herald("queue", "create", "carts", "--requires-session")
        result = await store.herald("receive", "carts")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: sessionRequired: ") && result.stderr.hasSuffix("; pass --session-id ID\n"), "\(result.stderr)")
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

    @Test("an unreachable server is named, with what to check, and no transport internals")
    func unreachableServer() async throws {
        let server = "http://127.0.0.1:\(try closedPort())"
        let result = await HeraldAdmin.captured(["stats", "--server", server])
        #expect(result.status == 3)
        #expect(result.stderr == "error: cannot reach the server at \(server): connection refused (is herald serve running?)\n")
        let json = await HeraldAdmin.captured(["queue", "list", "--server", server, "--json"])
        #expect(json.status == 3)
        let error = try jsonError(json)
        #expect(error.code == "transport")
        #expect(error.message == "cannot reach the server at \(server): connection refused (is herald serve running?)")
    }

    @Test("a server URL without a scheme suggests the URL meant")
    func serverURLWithoutScheme() async throws {
        let result = await HeraldAdmin.captured(["stats", "--server", "127.0.0.1:18089"])
        #expect(result.status == 3)
        #expect(result.stderr == "error: invalid server URL '127.0.0.1:18089'; did you mean http://127.0.0.1:18089?\n")
    }

    @Test("a data directory a server has open is reported as in use, with --server suggested")
    func dataDirectoryInUse() async throws {
        let store = try await Store.withData()
        defer { store.remove() }
        try await store.withBroker { _ in
            // The broker holds the file open, as `herald serve` on the folder does.
            let result = await store.herald("stats")
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("error: the data directory '\(store.directory.path)' is in use by a running server"), "\(result.stderr)")
            #expect(result.stderr.contains("--server URL"), "\(result.stderr)")
            #expect(!result.stderr.contains("SQLite error"), "\(result.stderr)")
            let json = await store.herald("queue", "list", "--json")
            #expect(json.status == 1)
            let error = try jsonError(json)
            #expect(error.code == "storeInUse")
        }
    }

    @Test(
        "with --json, every failure is a JSON error object on standard error",
        arguments: [
            (["queue", "show", "nowhere", "--json"], "entityNotFound", Int32(1)),
            (["topic", "delete", "nowhere", "--json"], "entityNotFound", 1),
            (["subscription", "list", "nowhere", "--json"], "entityNotFound", 1),
            (["send", "nowhere", "--text", "x", "--json"], "entityNotFound", 1),
            (["receive", "nowhere", "--json"], "entityNotFound", 1),
            (["peek", "nowhere", "--json"], "entityNotFound", 1),
            (["deadletter", "list", "nowhere", "--json"], "entityNotFound", 1),
            (["queue", "create", "not a name", "--json"], "invalidName", 1),
            (["purge", "nowhere", "--yes", "--json"], "entityNotFound", 1),
            (["message", "show", "nowhere", "1", "--json"], "entityNotFound", 1),
            (["cancel-scheduled", "nowhere", "1", "--json"], "entityNotFound", 1),
            (["tail", "nowhere", "--json"], "entityNotFound", 1),
            (["export", "nowhere", "--json"], "entityNotFound", 1),
            (["import", "nowhere", "--input", "/dev/null", "--json"], "entityNotFound", 1),
            (["queue", "update", "nowhere", "--ttl", "1h", "--json"], "entityNotFound", 1),
            (["deadletter", "summary", "nowhere", "--json"], "entityNotFound", 1),
            (["deadletter", "move", "nowhere", "--to", "orders", "--json"], "entityNotFound", 1),
            (["deadletter", "job", "nope", "--json"], "jobNotFound", 1),
            (["stats", "--json"], "commandFailed", 1),
            (["send", "orders", "--json"], "usage", 64),
        ])
    func jsonErrors(_ arguments: [String], _ code: String, _ status: Int32) async throws {
        let store = try await Store.withData()
        defer { store.remove() }
        let result =
            code == "commandFailed"
            ? await HeraldAdmin.captured(arguments + ["--data", store.directory.appendingPathComponent("missing").path])
            : await store.herald(arguments)
        #expect(result.status == status)
        #expect(result.stdout.isEmpty, "nothing but the error: \(result.stdout)")
        let error = try jsonError(result)
        #expect(error.code == code)
        #expect(!error.message.isEmpty)
    }
}

/// A port on 127.0.0.1 that nothing listens on: bound, then closed again.
func closedPort() throws -> Int {
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The `{"error": code, "message": text}` object a `--json` command wrote to standard error.
func jsonError(_ result: HeraldAdmin.Captured) throws -> (code: String, message: String) {
    let object = try #require(
        try? JSONSerialization.jsonObject(with: Data(result.stderr.utf8)) as? [String: Any], "standard error is one JSON object: \(result.stderr)"
    )
    return (try #require(object["error"] as? String), try #require(object["message"] as? String))
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
        try await SQLiteBroker.withBroker(path: self.directory.appendingPathComponent("herald.sqlite").path, body)
    }

    func counts(_ path: EntityPath) async throws -> EntityCounts {
        try await self.withBroker { try await $0.counts(of: path) }
    }

    /// Runs `herald <arguments> --data <directory>`.
    func herald(_ arguments: String...) async -> HeraldAdmin.Captured {
        await self.herald(arguments)
    }

    /// Runs `herald <arguments> --data <directory>`.
    func herald(_ arguments: [String]) async -> HeraldAdmin.Captured {
        await HeraldAdmin.captured(arguments + ["--data", self.directory.path])
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.directory)
    }
}
