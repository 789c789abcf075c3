import AsyncHTTPClient
import Foundation
import HTTPTypes
import HeraldClient
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldTracingTesting
import InMemoryTracing
import Testing
import Tracing

/// Traces across the HTTP API, and the store's metrics at `GET /metrics` of `herald serve`.
@Suite struct ObservabilityTests {
    /// A client's send over HTTP: the client's span, the server's (continuing the `traceparent`
    /// header), the store's; the message keeps the client's context for whoever processes it.
    @Test func aTraceGoesFromTheClientThroughTheServerIntoTheMessage() async throws {
        let tracer = TraceRecorder()
        try await withTracer(tracer) {
            try await ServerHarness.withServer { server in
                try await server.broker.createQueue("orders")
                let httpClient = HeraldClient.makeHTTPClient()
                do {
                    let client = try HeraldClient(baseURL: "http://127.0.0.1:\(server.port)", httpClient: httpClient)
                    try await client.send(Message(messageId: "m-1", text: "hello"), to: .queue("orders"))
                } catch {
                    try await httpClient.shutdown()
                    throw error
                }
                try await httpClient.shutdown()
                let stored = try await server.broker.peek(.queue("orders"), fromSequenceNumber: 0, maxCount: 1)
                let clientSend = try #require(tracer.spans(named: "send orders").first { $0.parentSpanID == nil }, "the client's send is the root")
                #expect(stored.first?.message.applicationProperties["traceparent"] == .string("00-\(clientSend.traceID)-\(clientSend.spanID)-01"))
            }
        }
        let serverSpan = try #require(tracer.span(named: "POST /v1/messages/send"))
        #expect(serverSpan.kind == .server)
        // AsyncHTTPClient traces too (its tracer is the one bound when the HTTP client was made): its
        // span of the request stands between the client's send and the server's span.
        #expect(tracer.ancestry(of: serverSpan) == ["POST /v1/messages/send", "POST", "send orders"], "the server continues the header's trace")
        let storeSend = try #require(tracer.finishedSpans.first { $0.operationName == "send orders" && $0.parentSpanID == serverSpan.spanID })
        #expect(storeSend.traceID == serverSpan.traceID)
    }

    /// An HTTP client made before the tracer was bound does not trace: the ``HeraldClient`` writes
    /// the `traceparent` header itself, and the server continues the client's send span.
    @Test func aClientWhoseHTTPClientDoesNotTraceSendsTheHeaderItself() async throws {
        let tracer = TraceRecorder()
        let httpClient = HeraldClient.makeHTTPClient()
        do {
            try await withTracer(tracer) {
                try await ServerHarness.withServer { server in
                    try await server.broker.createQueue("orders")
                    let client = try HeraldClient(baseURL: "http://127.0.0.1:\(server.port)", httpClient: httpClient)
                    try await client.send(Message(messageId: "m-1", text: "hello"), to: .queue("orders"))
                }
            }
        } catch {
            try await httpClient.shutdown()
            throw error
        }
        try await httpClient.shutdown()
        let serverSpan = try #require(tracer.span(named: "POST /v1/messages/send"))
        #expect(tracer.ancestry(of: serverSpan) == ["POST /v1/messages/send", "send orders"])
    }

    /// A plain HTTP caller with a `traceparent` header and a message without trace context: the
    /// message gets the context of the store's send span, in the caller's trace.
    @Test func aMessageSentOverHTTPWithoutContextJoinsTheRequestsTrace() async throws {
        let tracer = TraceRecorder()
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        try await withTracer(tracer) {
            try await ServerHarness.withServer { server in
                try await server.withClient { http in
                    #expect(try await http.request(.put, "/v1/queues/work").status == 201)
                    var headers = HTTPFields()
                    headers[HTTPField.Name("traceparent")!] = "00-\(traceID)-00f067aa0ba902b7-01"
                    let sent = try await http.request(
                        .post, "/v1/messages/send", json: ["entity": ["queue": "work"], "messages": [["text": "x"]]], headers: headers)
                    #expect(sent.status == 200)
                }
                let stored = try await server.broker.peek(.queue("work"), fromSequenceNumber: 0, maxCount: 1)
                let traceparent = stored.first?.message.applicationProperties["traceparent"]?.description ?? ""
                #expect(traceparent.hasPrefix("00-\(traceID)-"), "\(traceparent)")
            }
        }
        let serverSpan = try #require(tracer.span(named: "POST /v1/messages/send"))
        #expect(serverSpan.traceID == traceID && serverSpan.parentSpanID == "00f067aa0ba902b7")
        #expect(serverSpan.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(200))
    }

    /// An appended event's application properties (its trace context) cross the HTTP API in a
    /// transaction and reach the message it is published as; the stored event is without them.
    @Test func anEventsPropertiesCrossTheHTTPAPIIntoThePublishedMessage() async throws {
        try await ServerHarness.withServer { server in
            try await server.broker.createTopic("events")
            try await server.broker.createSubscription("all", topic: "events")
            let httpClient = HeraldClient.makeHTTPClient()
            do {
                let client = try HeraldClient(baseURL: "http://127.0.0.1:\(server.port)", httpClient: httpClient)
                var transaction = BrokerTransaction()
                let traceparent = PropertyValue.string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                transaction.append(
                    [EventData(type: "E", data: Data("{}".utf8), applicationProperties: ["traceparent": traceparent])], to: "s",
                    expectedVersion: .noStream, publishTo: .topic("events"))
                _ = try await client.commit(transaction)
                let published = try await server.broker.peek(.subscription("all", of: "events"), fromSequenceNumber: 0, maxCount: 1)
                #expect(published.first?.message.applicationProperties == ["traceparent": traceparent, "stream": .string("s"), "version": .int(1)])
                #expect(try await client.readStream("s", from: 1, maxCount: 1).first?.event.applicationProperties == [:], "not stored with the event")
            } catch {
                try await httpClient.shutdown()
                throw error
            }
            try await httpClient.shutdown()
        }
    }

    /// `herald serve` renders its store's `messaging_*` metrics at `GET /metrics`, beside its own.
    @Test func heraldServeExportsTheStoresMetrics() async throws {
        let served = try await HostileClientTests.serve()
        defer { served.stop() }
        #expect(try served.call("PUT", "/v1/queues/work", "{}").status == 201)
        #expect(try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"work"},"messages":[{"text":"a"},{"text":"b"}]}"#).status == 200)
        let received = try served.call("POST", "/v1/messages/receive", #"{"entity":{"queue":"work"},"maxCount":1}"#)
        let token = try #require((served.json(received.body)["messages"] as? [[String: Any]])?.first?["lockToken"] as? String)
        #expect(try served.call("POST", "/v1/locks/complete", #"{"lockTokens":["\#(token)"]}"#).status == 204)
        let metrics = try served.call("GET", "/metrics")
        #expect(metrics.status == 200)
        let lines = metrics.body.split(separator: "\n").map(String.init)
        func value(_ name: String) -> String? {
            lines.first { $0.hasPrefix(name + "{") && $0.contains(#"messaging_destination_name="work""#) }?.split(separator: " ").last.map(String.init)
        }
        #expect(value("messaging_client_sent_messages") == "2", "\(metrics.body)")
        #expect(value("messaging_client_consumed_messages") == "1")
        #expect(value("messaging_herald_completed_messages") == "1")
        #expect(lines.contains(#"herald_messages_sent_total{entity="work"} 2"#), "the server's own metrics stay")
    }
}

extension TraceRecorder {
    /// Every span called `name` that ended.
    func spans(named name: String) -> [FinishedInMemorySpan] {
        self.finishedSpans.filter { $0.operationName == name }
    }
}
