import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldWire
import Testing

/// Every route that takes a body refuses malformed JSON, wrong types, unknown fields, oversized
/// bodies and invalid names with the documented status and `error`, and none of them reaches the
/// store: a queue with 3 messages and a subscription with 2 keep them, unlocked and undelivered.
@Suite("Malformed requests never reach the store")
struct MalformedRequestTests {
    static let maxBodySize = 4096
    static let nonce = "8D1F6A52-3C4B-4E0F-9A6B-2B6A1D1F0C11"

    /// A valid body for each route that takes one, naming the fixtures' entities.
    static func validBody(_ route: WireRoute) -> [String: Any]? {
        let queue: [String: Any] = ["queue": "orders"]
        let session: [String: Any] = ["entity": queue, "sessionId": "s1", "nonce": Self.nonce, "lockedUntil": 1_900_000_000_000]
        let token = "orders#1@\(Self.nonce)"
        let message: [String: Any] = ["messageId": "m-new", "text": "hello", "applicationProperties": ["n": ["int": 1]]]
        switch route {
        case .createQueue, .createTopic: return ["lockDurationMs": 30_000, "maxDeliveryCount": 5]
        case .createSubscription: return ["options": ["maxDeliveryCount": 5], "filter": ["subject": "Created"]]
        case .addRule: return ["filter": ["subject": "Created", "to": "orders"]]
        case .send: return ["entity": queue, "messages": [message]]
        case .cancelScheduled, .receiveDeferred: return ["entity": queue, "sequenceNumbers": [1]]
        case .receive: return ["entity": queue, "maxCount": 10, "maxWaitMs": 0, "mode": "receiveAndDelete"]
        case .peek: return ["entity": queue, "fromSequenceNumber": 0, "maxCount": 10]
        case .counts: return ["entity": queue]
        case .complete: return ["lockTokens": [token]]
        case .abandon: return ["lockToken": token, "delayMs": 10]
        case .deferMessage, .renewLock, .resubmit: return ["lockToken": token]
        case .deadLetter: return ["lockToken": token, "reason": "r", "description": "d"]
        case .acceptSession: return ["entity": queue, "sessionId": "s1", "maxWaitMs": 0]
        case .receiveFromSession: return ["session": session, "maxCount": 1, "maxWaitMs": 0]
        case .receiveDeferredFromSession: return ["session": session, "sequenceNumbers": [1]]
        case .getSessionState, .renewSessionLock, .releaseSession: return ["session": session]
        case .setSessionState: return ["session": session, "state": "AAEC"]
        case .commit: return ["completions": [token], "sends": [["entity": queue, "message": message]]]
        case .getDocument: return ["collection": "c", "key": "k"]
        case .listDocuments: return ["collection": "c"]
        case .inboxContains: return ["handler": "h", "messageId": "m"]
        case .readStream: return ["stream": "s", "fromVersion": 0, "maxCount": 10]
        case .readAll: return ["fromPosition": 0, "maxCount": 10]
        case .purge: return ["entity": queue]
        case .getMessage: return ["entity": queue, "sequenceNumber": 1]
        case .searchDeadLetters: return ["entity": queue, "filter": ["reason": "r"], "fromSequenceNumber": 0, "maxCount": 10]
        case .summarizeDeadLetters: return ["entity": queue, "filter": ["subject": "s"]]
        case .startBulkJob: return ["entity": queue, "action": "purge", "filter": ["reason": "r"]]
        case .listSessions: return ["entity": queue, "after": "a", "maxCount": 10]
        default: return nil
        }
    }

    /// The same body with every entity renamed to `bad name!` (PUT routes carry the name in the
    /// path); `nil` for routes that name no entity.
    static func badlyNamed(_ route: WireRoute) -> (path: String, body: [String: Any]?)? {
        let bad: [String: Any] = ["queue": "bad name!"]
        let badToken = "bad name!#1@\(Self.nonce)"
        let badSession: [String: Any] = ["entity": bad, "sessionId": "s1", "nonce": Self.nonce, "lockedUntil": 1_900_000_000_000]
        switch route {
        case .createQueue: return ("/v1/queues/bad%20name!", nil)
        case .createTopic: return ("/v1/topics/bad%20name!", nil)
        case .createSubscription: return ("/v1/topics/events/subscriptions/bad%20name!", nil)
        case .addRule: return ("/v1/topics/events/subscriptions/audit/rules/bad%2Fname", nil)
        case .getDocument, .listDocuments, .inboxContains, .readStream, .readAll: return nil
        case .commit: return (route.path, ["sends": [["entity": bad, "message": ["text": "x"]]]])
        case .complete: return (route.path, ["lockTokens": [badToken]])
        case .abandon, .deferMessage, .deadLetter, .renewLock, .resubmit:
            var body = Self.validBody(route)!
            body["lockToken"] = badToken
            return (route.path, body)
        case .receiveFromSession, .receiveDeferredFromSession, .getSessionState, .setSessionState, .renewSessionLock, .releaseSession:
            var body = Self.validBody(route)!
            body["session"] = badSession
            return (route.path, body)
        default:
            var body = Self.validBody(route)!
            body["entity"] = bad
            return (route.path, body)
        }
    }

    /// The route's path with the fixtures' names in its parameters (PUT routes create new entities).
    static func concretePath(_ route: WireRoute) -> String {
        route.path.replacingOccurrences(of: "{queue}", with: "fresh-queue").replacingOccurrences(of: "{topic}", with: "events")
            .replacingOccurrences(of: "{subscription}", with: "fresh-subscription").replacingOccurrences(of: "{rule}", with: "fresh-rule")
    }

    /// `value` with a type no field of the API has at that place.
    static func wrongTypeValue(for value: Any) -> Any {
        value is String ? 12_345 : "not the right type"
    }

    struct Snapshot: Equatable {
        var queues: [String]
        var topics: [String]
        var subscriptions: [String]
        var counts: [EntityCounts]
        var messages: [String]
    }

    static func snapshot(_ broker: some MessageBroker) async throws -> Snapshot {
        let orders = EntityPath.queue("orders")
        let audit = EntityPath.subscription("audit", of: "events")
        var messages: [String] = []
        for entity in [orders, audit, orders.deadLetter, audit.deadLetter] {
            for received in try await broker.peek(entity, fromSequenceNumber: 0, maxCount: 100) {
                messages.append("\(entity) \(received.sequenceNumber) \(received.message.messageId) \(received.deliveryCount) \(received.state)")
            }
        }
        return Snapshot(
            queues: try await broker.listQueues().map(\.path.description),
            topics: try await broker.listTopics().map(\.path.description),
            subscriptions: try await broker.listSubscriptions(topic: "events").map(\.path.description),
            counts: [try await broker.counts(of: orders), try await broker.counts(of: audit)],
            messages: messages
        )
    }

    @Test func everyRouteWithABodyRefusesBadInputAndLeavesTheStoreUnchanged() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let keys = try KeyStore(path: directory.appendingPathComponent("keys.json").path)
        let admin = try keys.create(name: "admin", rights: [.manage], entity: nil).secret
        try await ServerHarness.withServer(keys: keys, directory: directory, configure: { $0.maxRequestBodySize = Self.maxBodySize }) { server in
            let broker = server.broker
            try await broker.createQueue("orders", options: EntityOptions())
            try await broker.createQueue(
                "sessions",
                options: {
                    var options = EntityOptions()
                    options.requiresSession = true
                    return options
                }())
            try await broker.createTopic("events", options: EntityOptions())
            try await broker.createSubscription("audit", topic: "events", options: EntityOptions(), filter: .all)
            for index in 1...3 { try await broker.send(Message(messageId: "o\(index)", body: Data("order \(index)".utf8)), to: .queue("orders")) }
            for index in 1...2 { try await broker.send(Message(messageId: "e\(index)", body: Data("event \(index)".utf8)), to: .topic("events")) }
            let before = try await Self.snapshot(broker)
            #expect(before.counts[0].active == 3 && before.counts[1].active == 2)

            let routes = WireRoute.all.filter { $0.method == "PUT" || $0.method == "POST" }
            #expect(routes.count >= 21, "routes with a body: \(routes.map(\.operationId))")
            let checked = try await server.withClient { http in
                var checked = 0
                for route in routes {
                    guard let valid = Self.validBody(route) else {
                        Issue.record("no sample body for \(route.operationId); add one so that it is checked")
                        continue
                    }
                    let path = Self.concretePath(route)
                    func expect(_ answer: HTTPConnection.Answer, _ status: Int, _ error: String, _ what: String) {
                        #expect(
                            answer.status == status && answer.error == error,
                            "\(route.operationId), \(what): got \(answer.status) \(answer.text.prefix(300))"
                        )
                    }
                    let method = route.method == "PUT" ? HTTPRequest.Method.put : .post

                    for malformed in ["{\"entity\":", "not json", "[1,2", "{\"a\" 1}", "\u{0}"] {
                        expect(
                            try await http.request(method, path, body: Array(malformed.utf8), key: admin), 400, "invalidArgument",
                            "malformed \(malformed.debugDescription)")
                    }
                    if route.method == "POST" {
                        expect(try await http.request(method, path, body: [], key: admin), 400, "invalidArgument", "empty body")
                        expect(try await http.request(method, path, json: [1, 2], key: admin), 400, "invalidArgument", "an array")
                    }
                    for field in valid.keys.sorted() {
                        var body = valid
                        body[field] = Self.wrongTypeValue(for: valid[field]!)
                        expect(try await http.request(method, path, json: body, key: admin), 400, "invalidArgument", "wrong type of \(field)")
                    }
                    for field in valid.keys.sorted() {
                        var body = valid
                        body[field] = NSNull()
                        expect(try await http.request(method, path, json: body, key: admin), 400, "invalidArgument", "\(field) null")
                    }
                    var unknown = valid
                    unknown["bogus"] = true
                    expect(try await http.request(method, path, json: unknown, key: admin), 400, "invalidArgument", "unknown top-level field")
                    if let nested = valid.first(where: { $0.value is [String: Any] }) {
                        var inner = nested.value as! [String: Any]
                        inner["bogus"] = 1
                        var body = valid
                        body[nested.key] = inner
                        expect(try await http.request(method, path, json: body, key: admin), 400, "invalidArgument", "unknown field in \(nested.key)")
                    }

                    var oversized = valid
                    oversized["padding"] = String(repeating: "x", count: Self.maxBodySize)
                    // A body too large closes its connection (the rest of it is not read): a connection of its own.
                    let oversizedBytes = Array(try JSONSerialization.data(withJSONObject: oversized))
                    let tooLarge = try await server.withClient { try await $0.request(method, path, body: oversizedBytes, key: admin) }
                    expect(tooLarge, 413, "payloadTooLarge", "oversized body")
                    #expect(tooLarge.headers[.connection] == "close", "\(route.operationId): a 413 closes its connection")

                    if let (badPath, badBody) = Self.badlyNamed(route) {
                        let answer =
                            if let badBody { try await http.request(method, badPath, json: badBody, key: admin) } else {
                                try await http.request(method, badPath, key: admin)
                            }
                        expect(answer, 400, "invalidName", "invalid entity name")
                    }
                    checked += 1
                }
                return checked
            }
            #expect(checked == routes.count)
            let after = try await Self.snapshot(broker)
            #expect(after == before, "the store changed: before \(before), after \(after)")
        }
    }

    @Test func outOfRangeWaitsAndBadTokensAreInvalidArguments() async throws {
        try await ServerHarness.withServer { server in
            try await server.broker.createQueue("orders", options: EntityOptions())
            try await server.withClient { http in
                let entity: [String: Any] = ["queue": "orders"]
                for wait in [-1, 60_001] {
                    let answer = try await http.request(.post, "/v1/messages/receive", json: ["entity": entity, "maxWaitMs": wait])
                    #expect(answer.status == 400 && answer.error == "invalidArgument", "maxWaitMs \(wait): \(answer.text)")
                }
                let token = try await http.request(.post, "/v1/locks/complete", json: ["lockTokens": ["not a token"]])
                #expect(token.status == 400 && token.error == "invalidArgument", "\(token.text)")
                let both = try await http.request(.post, "/v1/messages/send", json: ["entity": entity, "messages": [["body": "AA==", "text": "x"]]])
                #expect(both.status == 400 && both.error == "invalidArgument", "\(both.text)")
                let noSession = try await http.request(.post, "/v1/sessions/set-state", json: ["state": "AA=="])
                #expect(noSession.status == 400 && noSession.error == "invalidArgument", "\(noSession.text)")
            }
            let counts = try await server.broker.counts(of: .queue("orders"))
            #expect(counts == EntityCounts())
        }
    }
}
