import AsyncHTTPClient
import Crypto
import Foundation
import HeraldAMQPServer
import HeraldCore
import HeraldSQLite
import HeraldWire
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@testable import HeraldServiceBusAdministration

/// The administration API through a real server on a real store, over plain HTTP, with tokens
/// signed as the SDKs sign them: what it creates is the broker's, and it refuses what it must.
@Suite(.timeLimit(.minutes(1)))
struct ServiceBusAdministrationServerTests {
    static let secret = Array("admin-secret".utf8)

    /// A token as the SDKs make it: HMAC-SHA256 of the URL-encoded resource, a newline and the expiry.
    static func token(resource: String = "http://localhost", key: String = "admin", secret: [UInt8] = Self.secret, expiry: Date = .now + 3600) -> String {
        let encoded = resource.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? resource
        let seconds = Int64(expiry.timeIntervalSince1970)
        let signature = HMAC<SHA256>.authenticationCode(for: Array("\(encoded)\n\(seconds)".utf8), using: SymmetricKey(data: secret))
        let signed = Data(signature).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return "SharedAccessSignature sr=\(encoded)&sig=\(signed)&se=\(seconds)&skn=\(key)"
    }

    /// Serves `broker` with three keys (`admin`: manage; `sender`: send; `scoped`: manage on `orders`)
    /// while `body` runs.
    static func serving(_ broker: SQLiteBroker, _ body: @Sendable (Int) async throws -> Void) async throws {
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "herald.admin.test")
        logger.logLevel = .critical
        let backend = AMQPBackend(broker: broker) { name in
            switch name {
            case "admin": AMQPCredential(sharedAccessKey: Self.secret, rights: [.manage], entity: nil)
            case "sender": AMQPCredential(sharedAccessKey: Self.secret, rights: [.send], entity: nil)
            case "scoped": AMQPCredential(sharedAccessKey: Self.secret, rights: [.manage], entity: "orders")
            default: nil
            }
        }
        let server = ServiceBusAdministrationServer(
            configuration: .init(port: 0, maxRequestBodySize: 16 * 1024) { portContinuation.yield($0) }, backend: backend, logger: logger)
        let group = ServiceGroup(services: [server], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do { try await body(port) } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    static func request(
        _ method: HTTPMethod, _ path: String, port: Int, body: String? = nil, authorization: String? = Self.token(), headers: [(String, String)] = []
    ) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/atom+xml")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
        let bytes = try await response.body.collect(upTo: 4 * 1024 * 1024)
        return (Int(response.status.code), String(buffer: bytes))
    }

    static func queueEntry(_ settings: String = "") -> String {
        #"<entry xmlns="http://www.w3.org/2005/Atom"><content type="application/xml"><QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect">\#(settings)</QueueDescription></content></entry>"#
    }

    @Test func aQueueIsCreatedReadUpdatedListedAndDeletedOnTheStore() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await Self.serving(broker) { (port: Int) async throws in
                let created = try await Self.request(
                    .PUT, "/orders?api-version=2021-05", port: port, body: Self.queueEntry("<MaxDeliveryCount>3</MaxDeliveryCount>"))
                #expect(created.status == 201)
                #expect(try await broker.listQueues().map(\.options.maxDeliveryCount) == [3])
                #expect(try await Self.request(.PUT, "/orders?api-version=2021-05", port: port, body: Self.queueEntry()).status == 409)
                let read = try await Self.request(.GET, "/orders?enrich=false&api-version=2021-05", port: port)
                #expect(read.status == 200 && read.body.contains("<MaxDeliveryCount>3</MaxDeliveryCount>"))
                let updated = try await Self.request(
                    .PUT, "/orders?api-version=2021-05", port: port, body: Self.queueEntry("<LockDuration>PT20S</LockDuration>"), headers: [("If-Match", "*")])
                #expect(updated.status == 200)
                #expect(try await broker.listQueues().map(\.options.lockDuration) == [.seconds(20)])
                _ = try await broker.send(Message(body: Data("m".utf8)), to: .queue("orders"))
                let listed = try await Self.request(.GET, "/$Resources/queues?$skip=0&$top=100&api-version=2021-05", port: port)
                #expect(listed.status == 200 && listed.body.contains("<d2p1:ActiveMessageCount>1</d2p1:ActiveMessageCount>"))
                #expect(try await Self.request(.DELETE, "/orders?api-version=2021-05", port: port).status == 200)
                #expect(try await broker.listQueues().isEmpty)
                #expect(try await Self.request(.GET, "/orders?api-version=2021-05", port: port).status == 404)
            }
        }
    }

    @Test func rulesAreTheSubscriptionsRules() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            try await Self.serving(broker) { (port: Int) async throws in
                let rule =
                    #"<entry xmlns="http://www.w3.org/2005/Atom" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><content type="application/xml"><RuleDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"><Filter i:type="CorrelationFilter"><Label>invoice</Label></Filter></RuleDescription></content></entry>"#
                #expect(try await Self.request(.PUT, "/events/subscriptions/audit/rules/invoices?api-version=2021-05", port: port, body: rule).status == 201)
                #expect(try await Self.request(.DELETE, "/events/subscriptions/audit/rules/%24Default?api-version=2021-05", port: port).status == 200)
                #expect(
                    try await broker.rules(of: .subscription("audit", of: "events")) == [
                        SubscriptionRule(name: "invoices", filter: SubscriptionFilter(subject: "invoice"))
                    ])
                let listed = try await Self.request(.GET, "/events/subscriptions/audit/rules?$skip=0&$top=100&api-version=2021-05", port: port)
                #expect(listed.status == 200 && listed.body.contains("<title type=\"text\">invoices</title>") && listed.body.contains("<Label>invoice</Label>"))
                let update = try await Self.request(
                    .PUT, "/events/subscriptions/audit/rules/invoices?api-version=2021-05", port: port, body: rule, headers: [("If-Match", "*")])
                #expect(update.status == 501)
                #expect(try await Self.request(.GET, "/events/subscriptions/audit/rules/gone?api-version=2021-05", port: port).status == 404)
            }
        }
    }

    @Test func tokensAreVerifiedWithTheirRightsAndScopes() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await Self.serving(broker) { (port: Int) async throws in
                let entry = Self.queueEntry()
                #expect(try await Self.request(.PUT, "/orders", port: port, body: entry, authorization: nil).status == 401)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: entry, authorization: "Bearer hk_x").status == 401)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: entry, authorization: Self.token(secret: Array("forged".utf8))).status == 401)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: entry, authorization: Self.token(expiry: .now - 10)).status == 401)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: entry, authorization: Self.token(key: "unknown")).status == 401)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: entry, authorization: Self.token(key: "sender")).status == 403)
                #expect(try await broker.listQueues().isEmpty)
                // A key limited to `orders` manages `orders`, and nothing else, not even the list.
                #expect(try await Self.request(.PUT, "/orders", port: port, body: entry, authorization: Self.token(key: "scoped")).status == 201)
                #expect(try await Self.request(.PUT, "/billing", port: port, body: entry, authorization: Self.token(key: "scoped")).status == 403)
                #expect(try await Self.request(.GET, "/$Resources/queues", port: port, authorization: Self.token(key: "scoped")).status == 403)
                // A token for one entity does not reach another.
                let ordersToken = Self.token(resource: "http://localhost/orders")
                #expect(try await Self.request(.GET, "/orders", port: port, authorization: ordersToken).status == 200)
                #expect(try await Self.request(.PUT, "/billing", port: port, body: entry, authorization: ordersToken).status == 403)
                #expect(try await broker.listQueues().map(\.path.name) == ["orders"])
            }
        }
    }

    @Test func hostileRequestsGetAStatusAndChangeNothing() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await Self.serving(broker) { (port: Int) async throws in
                let large = Self.queueEntry(String(repeating: "<EnableBatchedOperations>true</EnableBatchedOperations>", count: 1000))
                #expect(try await Self.request(.PUT, "/orders", port: port, body: large).status == 413)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: "<entry").status == 400)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: #"<!DOCTYPE x [<!ENTITY a "b">]><entry/>"#).status == 400)
                #expect(try await Self.request(.PUT, "/orders", port: port, body: Self.queueEntry("<LockDuration>PT1H</LockDuration>")).status == 400)
                #expect(try await Self.request(.PUT, "/bad%20name", port: port, body: Self.queueEntry()).status == 400)
                #expect(try await Self.request(.GET, "/a/b/c/d/e/f", port: port).status == 404)
                #expect(try await Self.request(.POST, "/orders", port: port, body: Self.queueEntry()).status == 405)
                #expect(try await Self.request(.GET, "/$Resources/queues?$top=-1", port: port).status == 400)
                #expect(try await broker.listQueues().isEmpty)
                // The server still answers.
                #expect(try await Self.request(.GET, "/$namespaceinfo", port: port).status == 200)
            }
        }
    }
}
