import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldWire
import Testing

/// The operator's routes over raw HTTP (GUARANTEES.md §6): the rights and scopes each needs, the
/// shapes of their answers, and strict bodies. Their semantics run in the conformance suite
/// through `HeraldClient`.
@Suite("Operator routes over HTTP")
struct ManagementRoutesTests {
    @Test func rightsAndScopes() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let keys = try KeyStore(path: directory.appendingPathComponent("keys.json").path)
        let admin = try keys.create(name: "admin", rights: [.manage], entity: nil).secret
        let manageOrders = try keys.create(name: "orders-admin", rights: [.manage], entity: "orders").secret
        let listenOrders = try keys.create(name: "orders-listener", rights: [.listen], entity: "orders").secret
        let manageOther = try keys.create(name: "other-admin", rights: [.manage], entity: "other").secret

        try await ServerHarness.withServer(keys: keys, directory: directory) { server in
            try await server.broker.createQueue("orders")
            try await server.broker.createQueue("other")
            try await server.broker.send(Message(messageId: "m", text: "poison", subject: "S"), to: .queue("orders"))
            let message = try #require(try await server.broker.receive(from: .queue("orders"), maxCount: 1).first)
            try await server.broker.deadLetter(try #require(message.lockToken), reason: "Bad", description: nil)
            try await server.withClient { http in
                // PATCH needs manage, and a scope covering the entity.
                let change: [String: Any] = ["lockDurationMs": 30_000]
                #expect(try await http.request(.patch, "/v1/queues/orders", json: change, key: listenOrders).status == 403)
                #expect(try await http.request(.patch, "/v1/queues/orders", json: change, key: manageOther).status == 403)
                let patched = try await http.request(.patch, "/v1/queues/orders", json: change, key: manageOrders)
                #expect(patched.status == 200, "\(patched.text)")
                let info = try patched.decode(WireEntityInfo.self)
                #expect(info.options.lockDurationMs == 30_000)
                #expect(info.lastSequenceNumber == 1)
                #expect(info.counts?.deadLettered == 1)

                // Reading one message and searching dead letters need listen on the entity.
                let get = try await http.request(
                    .post, "/v1/messages/get", json: ["entity": ["queue": "orders", "deadLetter": true], "sequenceNumber": 1], key: listenOrders)
                #expect(get.status == 200, "\(get.text)")
                #expect(try get.decode(WireReceivedMessage.self).deadLetterReason == "Bad")
                let search = try await http.request(
                    .post, "/v1/dead-letters/search", json: ["entity": ["queue": "orders"], "filter": ["subject": "S"]], key: listenOrders)
                #expect(try search.decode(DeadLetterSearchResponse.self).messages.count == 1, "\(search.text)")
                let summary = try await http.request(.post, "/v1/dead-letters/summary", json: ["entity": ["queue": "orders"]], key: listenOrders)
                #expect(try summary.decode(DeadLetterSummaryResponse.self).reasons == [WireGroup(value: "Bad", count: 1)], "\(summary.text)")
                let elsewhere = try await http.request(.post, "/v1/dead-letters/search", json: ["entity": ["queue": "other"]], key: listenOrders)
                #expect(elsewhere.status == 403)

                // Purges and bulk jobs need manage; a move needs the target in scope as well.
                #expect(try await http.request(.post, "/v1/messages/purge", json: ["entity": ["queue": "orders"]], key: listenOrders).status == 403)
                let move: [String: Any] = ["entity": ["queue": "orders"], "action": "move", "target": ["queue": "other"]]
                #expect(try await http.request(.post, "/v1/dead-letters/jobs", json: move, key: manageOrders).status == 403)
                let started = try await http.request(.post, "/v1/dead-letters/jobs", json: move, key: admin)
                #expect(started.status == 202, "\(started.text)")
                let job = try started.decode(WireBulkJob.self)
                #expect(job.total == 1 && job.action == "move")

                // A scoped key sees only the jobs of its entities; another's job is unknown to it.
                let resubmit: [String: Any] = ["entity": ["queue": "other"], "action": "resubmit", "sequenceNumbers": [1]]
                #expect(try await http.request(.post, "/v1/dead-letters/jobs", json: resubmit, key: manageOther).status == 202)
                let all = try await http.request(.get, "/v1/dead-letters/jobs", key: admin).decode(BulkJobList.self)
                #expect(all.jobs.count == 2)
                let mine = try await http.request(.get, "/v1/dead-letters/jobs", key: manageOther).decode(BulkJobList.self)
                #expect(mine.jobs.map(\.action) == ["resubmit"], "only the job on other: \(mine.jobs)")
                let hidden = try await http.request(.get, "/v1/dead-letters/jobs/\(job.id)", key: manageOther)
                #expect(hidden.status == 404 && hidden.error == "jobNotFound", "\(hidden.text)")
                #expect(try await http.request(.get, "/v1/dead-letters/jobs/\(job.id)", key: admin).status == 200)
                let cancel = try await http.request(.delete, "/v1/dead-letters/jobs/\(job.id)", key: admin)
                #expect(cancel.status == 200, "\(cancel.text)")
            }
        }
    }

    @Test func subscriptionRulesNeedManageOnTheirTopic() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let keys = try KeyStore(path: directory.appendingPathComponent("keys.json").path)
        let manageEvents = try keys.create(name: "events-admin", rights: [.manage], entity: "events").secret
        let listenEvents = try keys.create(name: "events-listener", rights: [.listen, .send], entity: "events").secret
        let manageOther = try keys.create(name: "other-admin", rights: [.manage], entity: "other").secret

        try await ServerHarness.withServer(keys: keys, directory: directory) { server in
            try await server.broker.createTopic("events")
            try await server.broker.createSubscription("audit", topic: "events")
            try await server.withClient { http in
                let rules = "/v1/topics/events/subscriptions/audit/rules"
                let add: [String: Any] = ["filter": ["subject": "OrderPlaced", "to": "orders"]]
                for key in [listenEvents, manageOther] {
                    #expect(try await http.request(.get, rules, key: key).status == 403)
                    #expect(try await http.request(.put, "\(rules)/placed", json: add, key: key).status == 403)
                    #expect(try await http.request(.delete, "\(rules)/%24Default", key: key).status == 403)
                }
                let added = try await http.request(.put, "\(rules)/placed", json: add, key: manageEvents)
                #expect(added.status == 201, "\(added.text)")
                #expect(try added.decode(WireRule.self).filter.to == "orders")
                let again = try await http.request(.put, "\(rules)/placed", json: add, key: manageEvents)
                #expect(again.status == 409 && again.error == "entityAlreadyExists", "\(again.text)")
                #expect(try await http.request(.delete, "\(rules)/%24Default", key: manageEvents).status == 204)
                let absent = try await http.request(.delete, "\(rules)/%24Default", key: manageEvents)
                #expect(absent.status == 404 && absent.error == "entityNotFound", "\(absent.text)")
                let unknownField = try await http.request(.put, "\(rules)/other", json: ["filter": ["sql": "1=1"]], key: manageEvents)
                #expect(unknownField.status == 400, "\(unknownField.text)")
                let listed = try await http.request(.get, rules, key: manageEvents).decode(WireRuleList.self)
                #expect(listed.items.map(\.name) == ["placed"])
                let subscription = try await http.request(.get, "/v1/topics/events/subscriptions/audit", key: manageEvents).decode(WireEntityInfo.self)
                #expect(subscription.rules?.map(\.name) == ["placed"] && subscription.filter?.matchesNothing == true)
            }
        }
    }

    @Test func bodiesAreStrictAndErrorsTyped() async throws {
        try await ServerHarness.withServer { server in
            try await server.broker.createQueue("orders", options: EntityOptions(defaultTimeToLive: .seconds(60)))
            try await server.withClient { http in
                for body in [#"{"lockDurationMs": null}"#, #"{"lockDuration": 5}"#, #"{"lockDurationMs": "5"}"#, "", "[]"] {
                    let answer = try await http.request(.patch, "/v1/queues/orders", body: Array(body.utf8))
                    #expect(answer.status == 400 && answer.error == "invalidArgument", "\(body): \(answer.text)")
                }
                let tooLong = try await http.request(.patch, "/v1/queues/orders", json: ["lockDurationMs": 600_000])
                #expect(tooLong.status == 400 && tooLong.error == "invalidOption", "\(tooLong.text)")
                let sessions = try await http.request(.patch, "/v1/queues/orders", json: ["requiresSession": true])
                #expect(sessions.status == 400 && sessions.error == "invalidOption", "\(sessions.text)")
                let missing = try await http.request(.patch, "/v1/queues/nowhere", json: ["maxDeliveryCount": 3])
                #expect(missing.status == 404 && missing.error == "entityNotFound", "\(missing.text)")
                let cleared = try await http.request(.patch, "/v1/queues/orders", json: ["defaultTimeToLiveMs": 0]).decode(WireEntityInfo.self)
                #expect(cleared.options.defaultTimeToLiveMs == nil, "0 removes the default time-to-live")

                let both: [String: Any] = ["entity": ["queue": "orders"], "action": "purge", "filter": [:] as [String: Any], "sequenceNumbers": [1]]
                let ambiguous = try await http.request(.post, "/v1/dead-letters/jobs", json: both)
                #expect(ambiguous.status == 400 && ambiguous.error == "invalidArgument", "\(ambiguous.text)")
                let unknown = try await http.request(.post, "/v1/dead-letters/jobs", json: ["entity": ["queue": "orders"], "action": "explode"])
                #expect(unknown.status == 400 && unknown.error == "invalidArgument", "\(unknown.text)")
                let noTarget = try await http.request(.post, "/v1/dead-letters/jobs", json: ["entity": ["queue": "orders"], "action": "move"])
                #expect(noTarget.status == 400, "\(noTarget.text)")
                let noJob = try await http.request(.get, "/v1/dead-letters/jobs/nope")
                #expect(noJob.status == 404 && noJob.error == "jobNotFound", "\(noJob.text)")
                let noMessage = try await http.request(.post, "/v1/messages/get", json: ["entity": ["queue": "orders"], "sequenceNumber": 5])
                #expect(noMessage.status == 404 && noMessage.error == "messageNotFound", "\(noMessage.text)")
                let topic = try await http.request(.post, "/v1/dead-letters/search", json: ["entity": ["topic": "orders"]])
                #expect(topic.status == 400, "a topic has no dead letters: \(topic.text)")
            }
        }
    }
}
