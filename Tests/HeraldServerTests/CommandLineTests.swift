import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldServer
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `herald serve` refuses to serve without keys except on a loopback address with
/// `--insecure-local`, and `herald keys` creates, lists and revokes keys.
@Suite("herald serve and herald keys")
struct CommandLineTests {
    @Test(arguments: ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1"])
    func loopbackHostsMayServeWithoutKeys(_ host: String) throws {
        #expect(HeraldHTTPServer.Configuration.isLoopback(host))
        try HeraldHTTPServer.Configuration(host: host, keys: nil).validate()
    }

    @Test(arguments: ["0.0.0.0", "::", "192.168.1.10", "example.com", "127.0.0.1.example.com", "128.0.0.1", ""])
    func otherHostsNeedKeys(_ host: String) async throws {
        #expect(!HeraldHTTPServer.Configuration.isLoopback(host))
        #expect(throws: HeraldError.self) { try HeraldHTTPServer.Configuration(host: host, keys: nil).validate() }
        // The server itself refuses too, before it binds.
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = try KeyStore(path: directory.appendingPathComponent("keys.json").path)
        try HeraldHTTPServer.Configuration(host: host.isEmpty ? "0.0.0.0" : host, keys: keys).validate()
        let broker = FailingBroker(error: HeraldError(.storeFailed, "never called"))
        await #expect(throws: HeraldError.self) {
            try await HeraldHTTPServer(broker: broker, configuration: .init(host: host, port: 0, keys: nil)).run()
        }
    }

    @Test func serveInsecureLocalRefusesANonLoopbackHost() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try await HeraldProcess.run(["serve", "--insecure-local", "--host", "0.0.0.0", "--port", "0", "--data", directory.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--insecure-local") && result.stderr.contains("loopback"), "stderr: \(result.stderr)")
        #expect(!result.stdout.contains("listening"), "stdout: \(result.stdout)")
    }

    @Test func serveOnAPortInUseSaysSo() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try HeraldProcess(["serve", "--insecure-local", "--port", "0", "--data", directory.appendingPathComponent("first").path])
        defer { first.signal(SIGTERM) }
        let port = try await first.waitUntilListening()
        let second = try await HeraldProcess.run(["serve", "--insecure-local", "--port", "\(port)", "--data", directory.appendingPathComponent("second").path])
        #expect(second.status != 0)
        // The last line is the one for the user (log lines at --log-level may come before it).
        let last = second.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("herald serve: cannot listen on 127.0.0.1:\(port): the address is already in use"), "stderr: \(second.stderr)")
        #expect(!last.contains("errno"), "stderr: \(second.stderr)")
    }

    @Test func serveRefusesToStartWithoutKeys() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try await HeraldProcess.run(["serve", "--port", "0", "--data", directory.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no access keys"), "stderr: \(result.stderr)")
    }

    /// `--min-free-disk` sets the embedded store's watermark: below it a send is answered 507
    /// Insufficient Storage while receives still run; a size it cannot read is refused.
    @Test func serveMinFreeDiskRefusesSendsBelowTheWatermark() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = SQLiteBroker.Configuration()
        configuration.minimumFreeDiskBytes = 0
        let broker = try SQLiteBroker.running(path: directory.appendingPathComponent("herald.sqlite").path, configuration: configuration)
        try await broker.createQueue("orders")
        try await broker.send(Message(messageId: "before", text: "stored before"), to: .queue("orders"))
        await broker.close()

        let refused = try await HeraldProcess.run(["serve", "--insecure-local", "--port", "0", "--data", directory.path, "--min-free-disk", "lots"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("min-free-disk"), "stderr: \(refused.stderr)")

        // No disk has a million TiB free.
        let server = try HeraldProcess(["serve", "--insecure-local", "--port", "0", "--data", directory.path, "--min-free-disk", "1000000TiB"])
        defer { server.signal(SIGKILL) }
        let port = try await server.waitUntilListening()
        try await HTTPConnection.with(port: port) { http in
            let send = try await http.request(.post, "/v1/messages/send", json: ["entity": ["queue": "orders"], "messages": [["text": "x"]]])
            #expect(send.status == 507, "\(send.text)")
            #expect(send.error == "insufficientStorage")
            let receive = try await http.request(
                .post, "/v1/messages/receive", json: ["entity": ["queue": "orders"], "maxCount": 10, "mode": "receiveAndDelete"])
            #expect(receive.status == 200 && receive.text.contains("before"), "\(receive.text)")
        }
    }

    @Test func keysCreateListRevoke() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data").path
        let created = try await HeraldProcess.run([
            "keys", "create", "--name", "orders-service", "--rights", "send,listen", "--entity", "orders", "--data", data,
        ])
        #expect(created.status == 0, "stderr: \(created.stderr)")
        let secret = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = try #require(PresentedKeyParts(secret), "stdout: \(created.stdout)")
        #expect(created.stderr.contains("Endpoint=sb://localhost:5672;SharedAccessKeyName=\(parts.id);SharedAccessKey="), "\(created.stderr)")
        let elsewhere = try await HeraldProcess.run([
            "keys", "create", "--name", "amqp", "--rights", "send", "--amqp-host", "mq.example", "--amqp-port", "5673", "--data", data,
        ])
        #expect(elsewhere.stderr.contains("Endpoint=sb://mq.example:5673;SharedAccessKeyName="), "\(elsewhere.stderr)")
        #expect(!elsewhere.stdout.contains("Endpoint"), "stdout holds the key alone: \(elsewhere.stdout)")
        let elsewhereId = try #require(PresentedKeyParts(elsewhere.stdout.trimmingCharacters(in: .whitespacesAndNewlines))).id
        #expect(try await HeraldProcess.run(["keys", "revoke", elsewhereId, "--data", data]).status == 0)

        let table = try await HeraldProcess.run(["keys", "list", "--data", data])
        #expect(table.status == 0)
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("ID") == true && lines.count == 2, "\(table.stdout)")
        #expect(lines.last?.contains(parts.id) == true && lines.last?.contains("send,listen") == true && lines.last?.contains("orders") == true)
        #expect(!table.stdout.contains(parts.secret))

        let json = try await HeraldProcess.run(["keys", "list", "--json", "--data", data])
        let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.first?["id"] as? String == parts.id && rows?.first?["scope"] as? String == "orders", "\(json.stdout)")

        let bad = try await HeraldProcess.run(["keys", "create", "--name", "x", "--rights", "send,write", "--data", data])
        #expect(bad.status != 0 && bad.stderr.contains("write"), "\(bad.stderr)")

        let revoked = try await HeraldProcess.run(["keys", "revoke", parts.id, "--data", data])
        #expect(revoked.status == 0, "\(revoked.stderr)")
        #expect(try KeyStore(path: KeyStore.path(inDataDirectory: data)).keys.isEmpty)
        let again = try await HeraldProcess.run(["keys", "revoke", parts.id, "--data", data])
        #expect(again.status != 0)
    }
}
