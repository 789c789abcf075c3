import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldWire
import Testing

/// Shared access keys: no key or a bad key is 401, a key without the right or outside its scope is
/// 403, a key within its right and scope is served, and a key revoked in the file (by another
/// `KeyStore`, as `herald keys revoke` does) is refused once the server reloads the file.
@Suite("Access keys")
struct AuthTests {
    static func send(_ queue: String, id: String) -> [String: Any] {
        ["entity": ["queue": queue], "messages": [["messageId": id, "text": "hi"]]]
    }

    @Test func keysAreCheckedForPresenceRightAndScope() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let keyFile = directory.appendingPathComponent("keys.json").path
        let keys = try KeyStore(path: keyFile)
        let admin = try keys.create(name: "admin", rights: [.manage], entity: nil).secret
        let sendOther = try keys.create(name: "other-sender", rights: [.send], entity: "other").secret
        let sendOrders = try keys.create(name: "orders-sender", rights: [.send], entity: "orders").secret
        let listenOrders = try keys.create(name: "orders-listener", rights: [.listen], entity: "orders").secret
        let listenEvents = try keys.create(name: "events-listener", rights: [.listen], entity: "events").secret
        let manageOrders = try keys.create(name: "orders-admin", rights: [.manage], entity: "orders").secret

        try await ServerHarness.withServer(keys: keys, directory: directory) { server in
            try await server.broker.createQueue("orders", options: EntityOptions())
            try await server.broker.createTopic("events", options: EntityOptions())
            try await server.broker.createSubscription("audit", topic: "events", options: EntityOptions(), filter: .all)
            try await server.withClient { http in
                // No key, a malformed key, a well-formed key with a wrong secret: 401.
                let presented = try #require(PresentedKeyParts(sendOrders))
                let wrongSecret = "hk_\(presented.id)_\(String(repeating: "0", count: 64))"
                for key in [nil, "garbage", wrongSecret] {
                    let send = try await http.request(.post, "/v1/messages/send", json: Self.send("orders", id: "x"), key: key)
                    #expect(send.status == 401 && send.error == "unauthorized", "key \(key ?? "none"): \(send.text)")
                    let list = try await http.request(.get, "/v1/queues", key: key)
                    #expect(list.status == 401 && list.error == "unauthorized", "key \(key ?? "none"): \(list.text)")
                }
                // Health is open; metrics name every entity, so they need a namespace manage key.
                #expect(try await http.request(.get, "/health").status == 200)
                #expect(try await http.request(.get, "/metrics").status == 401)
                #expect(try await http.request(.get, "/metrics", key: sendOrders).status == 403)
                #expect(try await http.request(.get, "/metrics", key: manageOrders).status == 403)
                #expect(try await http.request(.get, "/metrics", key: admin).status == 200)

                // A send key scoped to another entity: 403; a send key on its own entity: 200.
                let elsewhere = try await http.request(.post, "/v1/messages/send", json: Self.send("orders", id: "a"), key: sendOther)
                #expect(elsewhere.status == 403 && elsewhere.error == "forbidden", "\(elsewhere.text)")
                let own = try await http.request(.post, "/v1/messages/send", json: Self.send("orders", id: "b"), key: sendOrders)
                #expect(own.status == 200, "\(own.text)")
                let viaHeader = try await http.request(
                    .post, "/v1/messages/send", json: Self.send("orders", id: "c"), headers: [HTTPField.Name("X-Herald-Key")!: sendOrders])
                #expect(viaHeader.status == 200, "X-Herald-Key: \(viaHeader.text)")

                // Rights: a send key cannot receive or manage; a listen key cannot send.
                let receiveWithSendKey = try await http.request(.post, "/v1/messages/receive", json: ["entity": ["queue": "orders"]], key: sendOrders)
                #expect(receiveWithSendKey.status == 403, "\(receiveWithSendKey.text)")
                #expect(try await http.request(.get, "/v1/queues/orders", key: sendOrders).status == 403)
                #expect(try await http.request(.post, "/v1/messages/send", json: Self.send("orders", id: "d"), key: listenOrders).status == 403)

                // A listen key on its queue receives and settles; its token's entity is in scope.
                let received = try await http.request(.post, "/v1/messages/receive", json: ["entity": ["queue": "orders"], "maxCount": 1], key: listenOrders)
                #expect(received.status == 200, "\(received.text)")
                let token = try received.decode(MessagesResponse.self).messages.first?.lockToken
                let lockToken = try #require(token)
                #expect(try await http.request(.post, "/v1/locks/complete", json: ["lockTokens": [lockToken]], key: sendOther).status == 403)
                #expect(try await http.request(.post, "/v1/locks/complete", json: ["lockTokens": [lockToken]], key: listenEvents).status == 403)
                #expect(try await http.request(.post, "/v1/locks/complete", json: ["lockTokens": [lockToken]], key: listenOrders).status == 204)

                // A topic's scope covers its subscriptions, not other queues.
                let subscription: [String: Any] = ["entity": ["topic": "events", "subscription": "audit"]]
                #expect(try await http.request(.post, "/v1/messages/counts", json: subscription, key: listenEvents).status == 200)
                #expect(try await http.request(.post, "/v1/messages/counts", json: ["entity": ["queue": "orders"]], key: listenEvents).status == 403)

                // Manage scoped to one entity: that entity, not the namespace's lists.
                #expect(try await http.request(.get, "/v1/queues/orders", key: manageOrders).status == 200)
                #expect(try await http.request(.get, "/v1/queues", key: manageOrders).status == 403)
                #expect(try await http.request(.put, "/v1/queues/payments", key: manageOrders).status == 403)
                #expect(try await http.request(.get, "/v1/queues", key: admin).status == 200)
                #expect(try await http.request(.get, "/v1/stats", key: admin).status == 200)
                #expect(try await http.request(.put, "/v1/queues/payments", key: admin).status == 201)
            }
        }
    }

    @Test func aRevokedKeyIsRefusedAfterTheServerReloadsTheFile() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let keyFile = directory.appendingPathComponent("keys.json").path
        let serverKeys = try KeyStore(path: keyFile)
        let created = try serverKeys.create(name: "orders-sender", rights: [.send], entity: "orders")
        try await ServerHarness.withServer(keys: serverKeys, directory: directory) { server in
            try await server.broker.createQueue("orders", options: EntityOptions())
            try await server.withClient { http in
                #expect(try await http.request(.post, "/v1/messages/send", json: Self.send("orders", id: "1"), key: created.secret).status == 200)
                // Another process's view of the file, as `herald keys revoke` has.
                let cli = try KeyStore(path: keyFile)
                #expect(try cli.revoke(id: created.key.id)?.id == created.key.id)
                #expect(try cli.revoke(id: created.key.id) == nil)
                let deadline = ContinuousClock.now + .seconds(5)
                var status = 200
                var attempt = 0
                while status != 401 && ContinuousClock.now < deadline {
                    attempt += 1
                    status = try await http.request(.post, "/v1/messages/send", json: Self.send("orders", id: "r\(attempt)"), key: created.secret).status
                    if status != 401 { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(status == 401, "the revoked key was still accepted after 5 s")
            }
        }
    }

    @Test func theKeyFileIsPrivateAndHoldsNoSecrets() throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("data/keys.json").path
        let keys = try KeyStore(path: path)
        let created = try keys.create(name: "svc", rights: [.send, .listen], entity: "orders")
        #expect(created.secret.hasPrefix("hk_\(created.key.id)_"))
        #expect(created.key.rights == [.send, .listen])
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(permissions?.intValue == 0o600)
        let contents = try String(contentsOfFile: path, encoding: .utf8)
        let secret = String(created.secret.split(separator: "_").last!)
        #expect(!contents.contains(secret), "the key file holds the secret")
        #expect(try KeyStore(path: path).keys.map(\.id) == [created.key.id])
        #expect(throws: HeraldError.self) { try keys.create(name: "bad", rights: [.send], entity: "bad name!") }
        #expect(throws: HeraldError.self) { try keys.create(name: "none", rights: [], entity: nil) }
    }

    /// AMQP clients sign their tokens with the key's shared access key, so the file keeps it (a
    /// key file written before Herald spoke AMQP still loads: its keys have none).
    @Test func aKeyHasASharedAccessKeyForAMQPClients() throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("keys.json").path
        let created = try KeyStore(path: path).create(name: "svc", rights: [.send], entity: nil)
        let shared = try #require(created.key.sharedAccessKey)
        #expect(Data(base64Encoded: shared)?.count == 32)
        #expect(
            created.connectionString(host: "broker.local", amqpPort: 5673)
                == "Endpoint=sb://broker.local:5673;SharedAccessKeyName=\(created.key.id);SharedAccessKey=\(shared);UseDevelopmentEmulator=true")
        let reopened = try KeyStore(path: path)
        #expect(reopened.sharedAccessKey(named: created.key.id)?.sharedAccessKey == Array(shared.utf8))
        #expect(reopened.sharedAccessKey(named: "nope") == nil)

        // A key file of an earlier version: no sharedAccessKey field.
        var json = try String(contentsOfFile: path, encoding: .utf8)
        json = json.replacingOccurrences(of: "\"sharedAccessKey\"", with: "\"unknownField\"")
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        let old = try KeyStore(path: path)
        #expect(old.keys.map(\.id) == [created.key.id])
        #expect(old.sharedAccessKey(named: created.key.id) == nil)
    }
}

/// The id and secret of `hk_<id>_<secret>`.
struct PresentedKeyParts {
    let id: String
    let secret: String

    init?(_ text: String) {
        let parts = text.split(separator: "_")
        guard parts.count == 3, parts[0] == "hk" else { return nil }
        self.id = String(parts[1])
        self.secret = String(parts[2])
    }
}
