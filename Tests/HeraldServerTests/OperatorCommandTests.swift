import Foundation
import HeraldCLI
import HeraldClient
import HeraldCore
import HeraldSQLite
import Synchronization
import Testing

/// Where an operator command runs in a test: directly on a data directory, or against a live
/// server on the same kind of store.
enum CommandTarget: String, CaseIterable, CustomStringConvertible, Sendable {
    case dataDirectory
    case server

    var description: String { self.rawValue }
}

/// A store with data, and the `herald` admin commands run against it one way or the other.
struct OperatorFixture: Sendable {
    let directory: URL
    /// `--data DIR`, or `--server URL`.
    let connection: [String]
    /// The server's broker; `nil` on a data directory (it is opened per look then).
    let serverBroker: SQLiteBroker?

    /// Runs `herald <arguments>` against the store.
    func herald(_ arguments: String...) async -> HeraldAdmin.Captured {
        await HeraldAdmin.captured(arguments + self.connection)
    }

    /// Runs `body` with the store's broker: the server's, or the data directory's, opened for it.
    func withBroker<T: Sendable>(_ body: (SQLiteBroker) async throws -> T) async throws -> T {
        if let broker = self.serverBroker { return try await body(broker) }
        return try await SQLiteBroker.withBroker(path: self.directory.appendingPathComponent("herald.sqlite").path, body)
    }

    /// Runs `body` on a store holding the queue `orders` (max 2 deliveries) with messages
    /// `order-1` (dead-lettered, reason BadFormat), `order-2` and `order-3` (JSON) active, and one
    /// scheduled an hour ahead; the queue `parking`; the topic `events` with subscription `audit`.
    static func run(_ target: CommandTarget, _ body: @Sendable (OperatorFixture) async throws -> Void) async throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let populate: @Sendable (SQLiteBroker) async throws -> Void = { broker in
            try await broker.createQueue("orders", options: EntityOptions(maxDeliveryCount: 2))
            try await broker.createQueue("parking")
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            try await broker.send(Message(messageId: "order-1", text: "first", subject: "OrderPlaced"), to: .queue("orders"))
            try await broker.send(Message(messageId: "order-2", body: Data(#"{"id":2,"items":["a"]}"#.utf8), subject: "OrderPlaced"), to: .queue("orders"))
            try await broker.send(Message(messageId: "order-3", body: Data(#"{"id":3}"#.utf8), subject: "OrderPaid"), to: .queue("orders"))
            _ = try await broker.schedule(Message(messageId: "later", text: "later"), at: Date().addingTimeInterval(3600), to: .queue("orders"))
            let first = try #require(try await broker.receive(from: .queue("orders"), maxCount: 1).first)
            try await broker.deadLetter(try #require(first.lockToken), reason: "BadFormat", description: "customer id missing")
        }
        switch target {
        case .dataDirectory:
            try await SQLiteBroker.withBroker(path: directory.appendingPathComponent("herald.sqlite").path, populate)
            try await body(OperatorFixture(directory: directory, connection: ["--data", directory.path], serverBroker: nil))
        case .server:
            try await ServerHarness.withServer(directory: directory) { server in
                try await populate(server.broker)
                try await body(
                    OperatorFixture(directory: directory, connection: ["--server", "http://127.0.0.1:\(server.port)"], serverBroker: server.broker))
            }
        }
    }
}

/// The operator's commands, each on a data directory and against a server.
@Suite("herald operator commands, on a data directory and against a server")
struct OperatorCommandTests {
    @Test("queue, topic and subscription update change options; a bad value is refused", arguments: CommandTarget.allCases)
    func update(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            var result = await store.herald("queue", "update", "orders", "--lock-duration", "30s", "--ttl", "1h", "--duplicate-window", "10m")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.hasPrefix("updated queue orders\n"), "\(result.stdout)")
            #expect(result.stdout.contains("Lock duration:"), "the details follow: \(result.stdout)")
            result = await store.herald("queue", "update", "orders", "--ttl", "none", "--json")
            #expect(result.status == 0, "\(result.stderr)")
            let options = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])["options"] as? [String: Any]
            #expect(options?["lockDurationMs"] as? Int == 30_000)
            #expect(options?["defaultTimeToLiveMs"] == nil, "the TTL removed")
            #expect(options?["duplicateDetectionWindowMs"] as? Int == 600_000)
            #expect(options?["maxDeliveryCount"] as? Int == 2, "the others kept")

            result = await store.herald("topic", "update", "events", "--max-message-size", "1000")
            #expect(result.status == 0, "\(result.stderr)")
            result = await store.herald("subscription", "update", "events", "audit", "--max-delivery-count", "7", "--dead-letter-on-expiration", "false")
            #expect(result.status == 0, "\(result.stderr)")
            let (topic, subscription) = try await store.withBroker { broker in
                (try await broker.listTopics().first?.options, try await broker.listSubscriptions(topic: "events").first?.options)
            }
            #expect(topic?.maxMessageSize == 1000)
            #expect(subscription?.maxDeliveryCount == 7 && subscription?.deadLetterOnExpiration == false)

            result = await store.herald("queue", "update", "orders", "--lock-duration", "10m")
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("error: invalidOption: lockDuration must lie in"), "\(result.stderr)")
            result = await store.herald("queue", "update", "nowhere", "--lock-duration", "10s", "--json")
            #expect(try jsonError(result).code == "entityNotFound", "the error code")
            result = await store.herald("queue", "update", "orders")
            #expect(result.status == 64, "an update without options is a usage error")
        }
    }

    @Test("purge asks for --yes without a terminal, then deletes only the waiting messages", arguments: CommandTarget.allCases)
    func purge(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            var result = await store.herald("purge", "orders")
            #expect(result.status == 1)
            #expect(result.stderr.contains("confirm with --yes"), "\(result.stderr)")
            result = await store.herald("purge", "orders", "--json")
            #expect(try jsonError(result).code == "confirmationRequired", "the error code")
            #expect(try await store.withBroker { try await $0.counts(of: .queue("orders")) }.active == 2, "nothing purged without confirmation")

            result = await store.herald("purge", "orders", "--yes")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "purged 2 message(s) of orders\n")
            let counts = try await store.withBroker { try await $0.counts(of: .queue("orders")) }
            #expect(counts == EntityCounts(scheduled: 1, deadLettered: 1), "the scheduled message and the dead letter stay")
            result = await store.herald("purge", "orders/$deadletterqueue", "--yes", "--json")
            #expect(result.stdout.contains("\"purged\" : 1"), "\(result.stdout)")
            result = await store.herald("purge", "events", "--yes", "--json")
            #expect(try jsonError(result).code == "entityNotFound", "events is a topic, not a queue")
        }
    }

    @Test("message show prints one whole message; a missing one is messageNotFound", arguments: CommandTarget.allCases)
    func messageShow(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            var result = await store.herald("message", "show", "orders", "2")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("Message id:"), "\(result.stdout)")
            #expect(result.stdout.contains("order-2"))
            #expect(result.stdout.contains("Subject:"))
            #expect(result.stdout.contains("\"items\" : [\n    \"a\"\n  ]"), "the JSON body pretty-printed: \(result.stdout)")
            result = await store.herald("message", "show", "orders/$deadletterqueue", "1", "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(object["deadLetterReason"] as? String == "BadFormat")
            #expect((object["message"] as? [String: Any])?["text"] as? String == "first")
            result = await store.herald("message", "show", "orders", "99")
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("error: messageNotFound: "), "\(result.stderr)")
            result = await store.herald("message", "show", "orders", "99", "--json")
            #expect(try jsonError(result).code == "messageNotFound", "the error code")
        }
    }

    @Test("cancel-scheduled cancels a scheduled message once", arguments: CommandTarget.allCases)
    func cancelScheduled(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            var result = await store.herald("cancel-scheduled", "orders", "4")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "cancelled 1 scheduled message(s) of orders\n")
            let counts = try await store.withBroker { try await $0.counts(of: .queue("orders")) }
            #expect(counts.scheduled == 0, "cancelled")
            result = await store.herald("cancel-scheduled", "orders", "4", "--json")
            #expect(try jsonError(result).code == "messageNotFound", "the error code")
            result = await store.herald("cancel-scheduled", "orders", "2")
            #expect(result.status == 1, "an active message is not scheduled")
        }
    }

    @Test("cancel-scheduled cancels through a topic by the topic's sequence number", arguments: CommandTarget.allCases)
    func cancelScheduledThroughATopic(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            let audit = EntityPath.subscription("audit", of: "events")
            let number = try await store.withBroker { broker in
                try await broker.schedule(Message(text: "later"), at: Date().addingTimeInterval(3600), to: .topic("events"))
            }
            // Without --topic, a name that is no queue is tried as a topic, as `herald send` does.
            var result = await store.herald("cancel-scheduled", "events", "\(number)")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "cancelled 1 scheduled message(s) of events\n", "\(result.stdout)")
            #expect(try await store.withBroker { try await $0.counts(of: audit) }.scheduled == 0, "the subscription's copy is gone")
            result = await store.herald("cancel-scheduled", "events", "\(number)", "--topic", "--json")
            #expect(try jsonError(result).code == "messageNotFound", "the error code")
            result = await store.herald("cancel-scheduled", "nowhere", "1")
            #expect(result.stderr.contains("no queue or topic named 'nowhere'"), "\(result.stderr)")
        }
    }

    @Test("deadletter list shows the body and filters; summary groups", arguments: CommandTarget.allCases)
    func deadLetterListAndSummary(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            var result = await store.herald("deadletter", "list", "orders")
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasSuffix("SUBJECT      BODY") == true, "\(lines)")
            #expect(lines.last?.hasSuffix("OrderPlaced  first") == true, "\(lines)")
            result = await store.herald("deadletter", "list", "orders", "--reason", "Timeout")
            #expect(result.stdout == "(no dead letters)\n", "\(result.stdout)")
            result = await store.herald("deadletter", "list", "orders", "--body-contains", "FIR", "--json")
            #expect(result.stdout.contains("\"text\" : \"first\""), "\(result.stdout)")
            result = await store.herald("deadletter", "summary", "orders")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("1 dead letter(s) of orders"), "\(result.stdout)")
            #expect(result.stdout.contains("BadFormat      1"), "\(result.stdout)")
            #expect(result.stdout.contains("OrderPlaced      1"), "\(result.stdout)")
        }
    }

    @Test("deadletter move, resubmit and purge run as jobs, and jobs lists them", arguments: CommandTarget.allCases)
    func deadLetterJobs(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            var result = await store.herald("deadletter", "move", "orders", "--to", "parking")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "moved 1 dead letter(s) of orders to parking\n", "\(result.stdout)")
            let parked = try await store.withBroker { try await $0.peek(.queue("parking"), fromSequenceNumber: 1, maxCount: 10) }
            #expect(parked.map(\.message.messageId) == ["order-1"])

            // Back to a dead letter of parking, then resubmitted there, then dead again and purged.
            try await store.withBroker { broker in
                let message = try #require(try await broker.receive(from: .queue("parking"), maxCount: 1).first)
                try await broker.deadLetter(try #require(message.lockToken), reason: "Again", description: nil)
            }
            result = await store.herald("deadletter", "resubmit", "parking", "--reason", "Again")
            #expect(result.stdout == "resubmitted 1 dead letter(s) to parking\n", "\(result.stderr)")
            result = await store.herald("deadletter", "resubmit", "parking", "7")
            #expect(result.status == 1)
            #expect(result.stdout.isEmpty, "nothing to report as done: \(result.stdout)")
            #expect(result.stderr.hasPrefix("error: messageNotFound: no dead letter of parking with sequence number 7"), "\(result.stderr)")
            try await store.withBroker { broker in
                let message = try #require(try await broker.receive(from: .queue("parking"), maxCount: 1).first)
                try await broker.deadLetter(try #require(message.lockToken), reason: "Again", description: nil)
            }
            result = await store.herald("deadletter", "purge", "parking", "--json")
            #expect(result.status == 0, "\(result.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(report["purged"] as? Int == 1)
            #expect((report["job"] as? [String: Any])?["state"] as? String == "completed")
            #expect(try await store.withBroker { try await $0.counts(of: .queue("parking")) } == EntityCounts())

            result = await store.herald("deadletter", "jobs")
            #expect(result.status == 0, "\(result.stderr)")
            let rows = result.stdout.split(separator: "\n").map(String.init)
            #expect(rows.count == 4, "a header and three jobs: \(rows)")
            #expect(rows.dropFirst().allSatisfy { $0.contains("completed") }, "\(rows)")
            let jobs = try await store.withBroker { try await $0.bulkJobs() }
            result = await store.herald("deadletter", "job", try #require(jobs.first?.id))
            #expect(result.stdout.split(separator: "\n").contains { $0.hasPrefix("State:") && $0.hasSuffix(" completed") }, "\(result.stdout)")
            result = await store.herald("deadletter", "job", "nope", "--json")
            #expect(try jsonError(result).code == "jobNotFound", "the error code")
            result = await store.herald("deadletter", "move", "orders", "--to", "nowhere", "--json")
            #expect(try jsonError(result).code == "entityNotFound", "the error code")
        }
    }

    @Test("tail shows the messages from a sequence number, bounded by --count and --timeout", arguments: CommandTarget.allCases)
    func tail(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            var result = await store.herald("tail", "orders", "--from", "1", "--count", "2", "--timeout", "5s")
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3, "\(lines)")
            #expect(lines[1].hasPrefix("#2  ") && lines[1].contains("order-2"), "\(lines)")
            #expect(lines[2].hasPrefix("#3  ") && lines[2].contains("order-3"), "\(lines)")
            // From the next message on, nothing arrives: it ends at the timeout, having shown nothing.
            let start = ContinuousClock.now
            result = await store.herald("tail", "orders", "--timeout", "300ms", "--interval", "50ms", "--json")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.isEmpty, "\(result.stdout)")
            #expect(ContinuousClock.now - start >= .milliseconds(250), "it waited for new messages")
            result = await store.herald("tail", "nowhere", "--timeout", "1s", "--json")
            let error = try jsonError(result)
            #expect(error.code == "entityNotFound", "the error code")
        }
    }

    @Test("tail against a server shows a message sent while it waits, without taking it")
    func tailSeesNewMessages() async throws {
        try await OperatorFixture.run(.server) { store in
            let broker = try #require(store.serverBroker)
            // From the next sequence number: the tail must not miss a message sent before it looked.
            let next = try await broker.lastSequenceNumber(of: .queue("orders")) + 1
            async let tailed = store.herald("tail", "orders", "--from", "\(next)", "--count", "1", "--timeout", "20s", "--interval", "50ms", "--json")
            try await Task.sleep(for: .milliseconds(500))
            try await broker.send(Message(messageId: "new", text: "fresh"), to: .queue("orders"))
            let result = await tailed
            #expect(result.status == 0, "\(result.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
            #expect((object["message"] as? [String: Any])?["messageId"] as? String == "new")
            #expect(try await broker.counts(of: .queue("orders")).active == 3, "the message was not taken")
        }
    }

    @Test("tail of a dead-letter queue shows a new dead letter, whose sequence number is older than the last")
    func tailSeesNewDeadLetters() async throws {
        try await OperatorFixture.run(.server) { store in
            let broker = try #require(store.serverBroker)
            _ = try await broker.send((0..<5).map { Message(text: "more \($0)") }, to: .queue("orders"))
            let done = Mutex(false)
            let tailed = Task {
                let result = await store.herald("tail", "orders/$deadletterqueue", "--count", "1", "--timeout", "30s", "--interval", "50ms", "--json")
                done.withLock { $0 = true }
                return result
            }
            // A dead letter a second, until the tail (which may take a moment to start on a loaded
            // machine) has shown one: it must be a new one, never the one there before it started.
            for _ in 0..<6 where !done.withLock({ $0 }) {
                try await Task.sleep(for: .seconds(1))
                let message = try #require(try await broker.receive(from: .queue("orders"), maxCount: 1).first)
                try await broker.deadLetter(try #require(message.lockToken), reason: "Late", description: nil)
            }
            let result = await tailed.value
            #expect(result.status == 0, "\(result.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
            #expect(object["deadLetterReason"] as? String == "Late", "only the new dead letter: \(result.stdout)")
        }
    }

    @Test("session list shows each session's messages, holder, parking and state", arguments: CommandTarget.allCases)
    func sessionList(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            try await store.withBroker { broker in
                try await broker.createQueue("carts", options: EntityOptions(requiresSession: true))
                try await broker.send(Message(text: "x", sessionId: "anna"), to: .queue("carts"))
                try await broker.send(Message(text: "y", sessionId: "bob"), to: .queue("carts"))
            }
            var result = await store.herald("session", "list", "carts")
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(
                lines == [
                    "SESSION  MESSAGES  HELD UNTIL  PARKED  STATE", "anna            1  -           no          -",
                    "bob             1  -           no          -",
                ], "\(lines)")
            result = await store.herald("session", "list", "carts", "--after", "anna", "--json")
            #expect(result.stdout.contains("\"sessionId\" : \"bob\""), "\(result.stdout)")
            #expect(!result.stdout.contains("anna"), "\(result.stdout)")
            result = await store.herald("session", "list", "orders", "--json")
            let error = try jsonError(result)
            #expect(error.code == "sessionNotEnabled", "the error code")
        }
    }

    @Test("export writes every message as JSON lines and import sends them to another queue", arguments: CommandTarget.allCases)
    func exportAndImport(_ target: CommandTarget) async throws {
        try await OperatorFixture.run(target) { store in
            let file = store.directory.appendingPathComponent("orders.jsonl")
            var result = await store.herald("export", "orders", "--format", "jsonl", "--output", file.path)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "exported 3 message(s) of orders to \(file.path)\n")
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 3, "two active messages and the scheduled one")
            result = await store.herald("export", "orders/$deadletterqueue")
            #expect(result.stdout.contains("\"deadLetterReason\":\"BadFormat\""), "to standard output: \(result.stdout)")

            result = await store.herald("import", "parking", "--input", file.path)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "imported 3 message(s) to parking\n")
            let (original, copied) = try await store.withBroker { broker in
                (
                    try await broker.peek(.queue("orders"), fromSequenceNumber: 1, maxCount: 10),
                    try await broker.peek(.queue("parking"), fromSequenceNumber: 1, maxCount: 10)
                )
            }
            #expect(copied.map(\.message) == original.map(\.message), "the same messages, ids, bodies and properties")

            try Data("{\"nonsense\": 1}\n".utf8).write(to: file)
            result = await store.herald("import", "parking", "--input", file.path, "--json")
            #expect(try jsonError(result).code == "invalidFile", "the error code")
            result = await store.herald("export", "nowhere", "--json")
            #expect(try jsonError(result).code == "entityNotFound", "the error code")
            result = await store.herald("export", "orders", "--format", "csv")
            #expect(result.status == 64, "only jsonl")
        }
    }
}

/// The `{"error": code, "message": text}` object a `--json` command wrote to standard error.
func jsonError(_ result: HeraldAdmin.Captured) throws -> (code: String, message: String) {
    let object = try #require(
        try? JSONSerialization.jsonObject(with: Data(result.stderr.utf8)) as? [String: Any], "standard error is one JSON object: \(result.stderr)"
    )
    #expect(result.stdout.isEmpty, "nothing but the error: \(result.stdout)")
    return (try #require(object["error"] as? String), try #require(object["message"] as? String))
}
