import Foundation
import HeraldCLI
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldWire
import Testing

/// The admin commands against a live server with data, through `--server` and `--key`.
@Suite("herald admin commands against a server")
struct AdminOverHTTPTests {
    @Test("stats and deadletter list print readable tables from a server")
    func statsAndDeadLettersOverHTTP() async throws {
        let keyDirectory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: keyDirectory) }
        let keys = try KeyStore(path: keyDirectory.appendingPathComponent("keys.json").path)
        let admin = try keys.create(name: "admin", rights: [.manage], entity: nil).secret
        let sender = try keys.create(name: "orders-sender", rights: [.send], entity: "orders").secret
        try await ServerHarness.withServer(keys: keys) { server in
            let broker = server.broker
            try await broker.createQueue("orders", options: EntityOptions(maxDeliveryCount: 2))
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            for index in 1...3 {
                _ = try await broker.send(Message(messageId: "order-\(index)", text: "order \(index)"), to: .queue("orders"))
            }
            _ = try await broker.send([Message(text: "a"), Message(text: "b")], to: .topic("events"))
            let first = try #require(try await broker.receive(from: .queue("orders"), maxCount: 1).first)
            try await broker.deadLetter(first.lockToken!, reason: "BadFormat", description: "customer id missing")
            let url = "http://127.0.0.1:\(server.port)"

            let stats = await HeraldAdmin.captured(["stats", "--server", url, "--key", admin])
            #expect(stats.status == 0, "\(stats.stderr)")
            let lines = stats.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "ENTITY                      ACTIVE  LOCKED  SCHEDULED  DEFERRED  DEAD-LETTERED", "\(lines)")
            #expect(lines.contains("events/subscriptions/audit       2       0          0         0              0"), "\(lines)")
            #expect(lines.contains("orders                           2       0          0         0              1"), "\(lines)")

            let deadLetters = await HeraldAdmin.captured(["deadletter", "list", "orders", "--server", url, "--key", admin])
            #expect(deadLetters.status == 0, "\(deadLetters.stderr)")
            let rows = deadLetters.stdout.split(separator: "\n").map(String.init)
            #expect(rows.count == 2, "\(rows)")
            #expect(rows.first?.hasPrefix("SEQ  MESSAGE ID  REASON     DESCRIPTION          DELIVERIES  ENQUEUED") == true, "\(rows)")
            #expect(rows.last?.hasPrefix("  1  order-1     BadFormat  customer id missing           1  20") == true, "\(rows)")

            // The CLI reports a refused key, and a key without the right, as errors.
            let anonymous = await HeraldAdmin.captured(["stats", "--server", url])
            #expect(anonymous.status != 0)
            #expect(anonymous.stderr.contains("unauthorized"), "\(anonymous.stderr)")
            let forbidden = await HeraldAdmin.captured(["stats", "--server", url, "--key", sender])
            #expect(forbidden.status != 0)
            #expect(forbidden.stderr.contains("forbidden"), "\(forbidden.stderr)")
        }
    }
}
