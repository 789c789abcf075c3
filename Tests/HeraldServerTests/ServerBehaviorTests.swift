import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldWire
import Logging
import ServiceLifecycle
import Testing

/// The API end to end on a server without keys: entity management, messaging, sessions, errors,
/// health, metrics and the OpenAPI document.
@Suite("HTTP API")
struct ServerBehaviorTests {
    static var orders: [String: Any] { ["queue": "orders"] }

    @Test func entitiesAreCreatedReadListedAndDeleted() async throws {
        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                let created = try await http.request(.put, "/v1/queues/orders", json: ["maxDeliveryCount": 3, "lockDurationMs": 5000])
                #expect(created.status == 201, "\(created.text)")
                let info = try created.decode(WireEntityInfo.self)
                #expect(info.kind == "queue" && info.path == "orders" && info.options.maxDeliveryCount == 3 && info.counts?.active == 0)
                let again = try await http.request(.put, "/v1/queues/orders")
                #expect(again.status == 409 && again.error == "entityAlreadyExists")
                #expect(try await http.request(.put, "/v1/topics/events").status == 201)
                let subscription = try await http.request(.put, "/v1/topics/events/subscriptions/audit", json: ["filter": ["subject": "Created"]])
                #expect(subscription.status == 201, "\(subscription.text)")
                #expect(try subscription.decode(WireEntityInfo.self).filter?.subject == "Created")
                #expect(try await http.request(.get, "/v1/topics/events").decode(WireEntityInfo.self).counts == nil)
                #expect(
                    try await http.request(.get, "/v1/topics/events/subscriptions").decode(WireEntityList.self).items.map(\.path) == [
                        "events/subscriptions/audit"
                    ])
                #expect(try await http.request(.get, "/v1/queues").decode(WireEntityList.self).items.map(\.path) == ["orders"])
                let stats = try await http.request(.get, "/v1/stats").decode(WireEntityList.self)
                #expect(stats.items.map(\.path) == ["orders", "events", "events/subscriptions/audit"])
                #expect(stats.items.map { $0.counts != nil } == [true, false, true])

                let missing = try await http.request(.get, "/v1/queues/nothing")
                #expect(missing.status == 404 && missing.error == "entityNotFound")
                #expect(try await http.request(.delete, "/v1/topics/events/subscriptions/audit").status == 204)
                #expect(try await http.request(.delete, "/v1/queues/orders").status == 204)
                #expect(try await http.request(.delete, "/v1/queues/orders").status == 404)
            }
        }
    }

    @Test func unknownRoutesAndWrongMethods() async throws {
        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                let unknown = try await http.request(.get, "/v1/nothing")
                #expect(unknown.status == 404 && unknown.error == "notFound")
                let wrongMethod = try await http.request(.get, "/v1/messages/send")
                #expect(wrongMethod.status == 405 && wrongMethod.error == "methodNotAllowed")
                #expect(wrongMethod.headers[.allow] == "POST")
                let post = try await http.request(.post, "/v1/queues/orders")
                #expect(post.status == 405 && post.headers[.allow] == "PUT, GET, DELETE, PATCH")
            }
        }
    }

    @Test func sendReceiveSettleAndSessions() async throws {
        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                #expect(try await http.request(.put, "/v1/queues/orders").status == 201)
                let messages: [[String: Any]] = [["messageId": "a", "text": "one"], ["messageId": "b", "body": "AAEC", "subject": "S"]]
                let sent = try await http.request(.post, "/v1/messages/send", json: ["entity": Self.orders, "messages": messages])
                #expect(try sent.decode(SendResponse.self).receipts.map(\.isDuplicate) == [false, false], "\(sent.text)")
                let counts = try await http.request(.post, "/v1/messages/counts", json: ["entity": Self.orders]).decode(WireCounts.self)
                #expect(counts.active == 2)
                let peeked = try await http.request(.post, "/v1/messages/peek", json: ["entity": Self.orders, "maxCount": 10]).decode(MessagesResponse.self)
                #expect(peeked.messages.map(\.message.messageId) == ["a", "b"] && peeked.messages.allSatisfy { $0.lockToken == nil })

                let received = try await http.request(.post, "/v1/messages/receive", json: ["entity": Self.orders, "maxCount": 2]).decode(MessagesResponse.self)
                let tokens = received.messages.compactMap(\.lockToken)
                #expect(tokens.count == 2 && received.messages.first?.message.body == Data("one".utf8).base64EncodedString())
                let renewed = try await http.request(.post, "/v1/locks/renew", json: ["lockToken": tokens[1]])
                #expect(renewed.status == 200 && (try? renewed.decode(RenewLockResponse.self)) != nil, "\(renewed.text)")
                #expect(try await http.request(.post, "/v1/locks/complete", json: ["lockTokens": [tokens[0]]]).status == 204)
                #expect(try await http.request(.post, "/v1/locks/dead-letter", json: ["lockToken": tokens[1], "reason": "bad"]).status == 204)
                // Completing again is a retry: 200 with alreadySettled (counted once); another settlement is lockLost.
                let retried = try await http.request(.post, "/v1/locks/complete", json: ["lockTokens": [tokens[0]]])
                #expect(retried.status == 200 && (try? retried.decode(SettlementResponse.self)) == SettlementResponse(alreadySettled: true), "\(retried.text)")
                let lost = try await http.request(.post, "/v1/locks/abandon", json: ["lockToken": tokens[0]])
                #expect(lost.status == 410 && lost.error == "lockLost")

                // A session queue: accept, receive, state, release.
                #expect(try await http.request(.put, "/v1/queues/sessions", json: ["requiresSession": true]).status == 201)
                let sessions: [String: Any] = ["queue": "sessions"]
                _ = try await http.request(.post, "/v1/messages/send", json: ["entity": sessions, "messages": [["text": "x", "sessionId": "s1"]]])
                let accepted = try await http.request(.post, "/v1/sessions/accept", json: ["entity": sessions, "sessionId": "s1"])
                #expect(accepted.status == 200, "\(accepted.text)")
                let lock = try JSONSerialization.jsonObject(with: Data(accepted.body))
                let inSession = try await http.request(.post, "/v1/sessions/receive", json: ["session": lock, "maxCount": 5]).decode(MessagesResponse.self)
                #expect(inSession.messages.count == 1)
                #expect(try await http.request(.post, "/v1/sessions/set-state", json: ["session": lock, "state": "AQID"]).status == 204)
                let state = try await http.request(.post, "/v1/sessions/get-state", json: ["session": lock]).decode(SessionStateBody.self)
                #expect(state.state == "AQID" && state.session == nil)
                #expect(try await http.request(.post, "/v1/sessions/renew", json: ["session": lock]).status == 200)
                #expect(try await http.request(.post, "/v1/sessions/release", json: ["session": lock]).status == 204)
                let afterRelease = try await http.request(.post, "/v1/sessions/get-state", json: ["session": lock])
                #expect(afterRelease.status == 410 && afterRelease.error == "sessionLockLost", "\(afterRelease.text)")

                // Metrics count what happened, per entity, and refresh the gauges.
                let metrics = try await http.request(.get, "/metrics").text
                for line in [
                    #"herald_messages_sent_total{entity="orders"} 2"#, #"herald_messages_delivered_total{entity="orders"} 2"#,
                    #"herald_messages_completed_total{entity="orders"} 1"#, #"herald_messages_dead_lettered_total{entity="orders"} 1"#,
                    #"herald_lock_lost_total{entity="orders"} 1"#, #"herald_lock_lost_total{entity="sessions"} 1"#,
                    #"herald_entity_messages{entity="orders",state="dead_letter"} 1.0"#,
                ] {
                    #expect(metrics.contains(line), "missing \(line) in\n\(metrics)")
                }
                #expect(metrics.contains("herald_http_request_duration_seconds_bucket{operation=\"send\",status=\"2xx\""))
            }
        }
    }

    @Test func healthMetricsAndTheDocument() async throws {
        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                let health = try await http.request(.get, "/health")
                #expect(health.status == 200)
                #expect(try health.decode(HealthResponse.self) == HealthResponse(status: "ok", store: "sqlite"))
                let document = try await http.request(.get, "/openapi.yaml")
                #expect(document.status == 200 && document.headers[.contentType] == "application/yaml" && document.text.contains("openapi:"))
                let metrics = try await http.request(.get, "/metrics")
                #expect(metrics.status == 200 && metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
                // A closed store: health says so, and calls answer 503 storeClosed.
                await server.broker.close()
                let failed = try await http.request(.get, "/health")
                #expect(failed.status == 503)
                #expect(try failed.decode(HealthResponse.self).status == "failed")
                let closed = try await http.request(.put, "/v1/queues/orders")
                #expect(closed.status == 503 && closed.error == "storeClosed", "\(closed.text)")
            }
        }
    }

    @Test func otherErrorsAre500WithoutDetails() async throws {
        try await FailingBroker.serving(SecretDetailError()) { http in
            let answer = try await http.request(.get, "/v1/queues")
            #expect(answer.status == 500 && answer.error == "internal")
            #expect(!answer.text.contains("hunter2") && !answer.text.contains("secret"), "\(answer.text)")
            #expect(try await http.request(.get, "/health").status == 503)
        }
    }

    @Test func aKeyWithTooManyRequestsInFlightGets429() async throws {
        try await ServerHarness.withServer(configure: { $0.maxRequestsInFlightPerKey = 1 }) { server in
            try await server.broker.createQueue("orders", options: EntityOptions())
            let port = server.port
            try await withThrowingTaskGroup(of: Int.self) { group in
                // A long poll holds the only slot.
                group.addTask {
                    try await HTTPConnection.with(port: port) { http in
                        try await http.request(.post, "/v1/messages/receive", json: ["entity": Self.orders, "maxWaitMs": 3000]).status
                    }
                }
                // Once the poll is in flight (on a loaded machine it takes a moment to arrive), a second request is refused.
                try await Task.sleep(for: .seconds(1))
                let refused = try await server.withClient { http in try await http.request(.post, "/v1/messages/counts", json: ["entity": Self.orders]) }
                #expect(refused.status == 429 && refused.error == "quotaExceeded", "\(refused.text)")
                #expect(try await group.next() == 200)
                let served = try await server.withClient { http in try await http.request(.post, "/v1/messages/counts", json: ["entity": Self.orders]) }
                #expect(served.status == 200)
            }
        }
    }

    @Test func stoppingTheServerAnswersLongPollsAndInFlightRequests() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let broker = try SQLiteBroker.running(path: directory.appendingPathComponent("herald.sqlite").path)
        try await broker.createQueue("orders", options: EntityOptions())
        var logger = Logger(label: "herald.server.test")
        logger.logLevel = .warning
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = HeraldHTTPServer(broker: broker, configuration: .init(port: 0, keys: nil, logger: logger) { continuation.yield($0) })
        let group = LiveServer.serviceGroup(running: server, logger: logger)
        let running = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let poll = Task {
            try await HTTPConnection.with(port: port) { http in
                try await http.request(.post, "/v1/messages/receive", json: ["entity": Self.orders, "maxWaitMs": 30_000])
            }
        }
        // Let the poll reach the server (a loaded machine can take a while) before stopping it.
        try await Task.sleep(for: .seconds(1))
        let stopping = ContinuousClock.now
        await group.triggerGracefulShutdown()
        let answer = try await poll.value
        let answered = ContinuousClock.now - stopping
        try await running.value
        // The poll is answered at once, not when the 10 s grace cancels what is left (room for a
        // loaded machine); the whole stop takes less than the poll would have waited.
        #expect(answered < .seconds(9), "the long poll was answered \(answered) after the stop began")
        #expect(ContinuousClock.now - stopping < .seconds(30), "stopping took \(ContinuousClock.now - stopping)")
        #expect(answer.status == 200 && (try? answer.decode(MessagesResponse.self).messages.isEmpty) == true, "\(answer.text)")
        await broker.close()
    }
}
