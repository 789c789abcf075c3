import Foundation
import HeraldCore
import HeraldPostgres
import HeraldTracingTesting
import InMemoryTracing
import MetricsTestKit
import Testing
import Tracing

/// The PostgreSQL broker's counters and spans, as the SQLite broker's: the same helpers at the
/// same places of its API.
@Suite struct PostgresObservabilityTests {
    @Test func theBrokerCountsAndTracesWhatItDoes() async throws {
        let schema = TestDatabase.schemaName("obs")
        let client = RunningClient(try await TestDatabase.clientConfiguration())
        let metrics = TestMetrics()
        let tracer = TraceRecorder()
        var configuration = PostgresBroker.Configuration(schema: schema)
        configuration.metricsFactory = metrics
        configuration.tracer = tracer
        let running = try RunningBroker(client: client.client, configuration: configuration)
        do {
            let broker = running.broker
            try await broker.createQueue("work")
            _ = try await broker.send([Message(text: "a"), Message(text: "b")], to: .queue("work"))
            let received = try await broker.receive(from: .queue("work"), maxCount: 2)
            try await broker.complete(try #require(received.first?.lockToken))
            try await broker.deadLetter(try #require(received.last?.lockToken), reason: "Poison", description: nil)

            let work = [("messaging.system", "herald"), ("messaging.destination.name", "work")]
            #expect(try metrics.expectCounter("messaging.client.sent.messages", work + [("messaging.operation.name", "send")]).totalValue == 2)
            #expect(try metrics.expectCounter("messaging.client.consumed.messages", work + [("messaging.operation.name", "receive")]).totalValue == 2)
            #expect(try metrics.expectCounter("messaging.herald.completed.messages", work).totalValue == 1)
            #expect(try metrics.expectCounter("messaging.herald.dead_lettered.messages", work).totalValue == 1)

            let send = try #require(tracer.span(named: "send work"))
            #expect(send.attributes["messaging.batch.message_count"]?.toSpanAttribute() == .int64(2))
            let traceparent = "00-\(send.traceID)-\(send.spanID)-01"
            #expect(received.allSatisfy { $0.message.applicationProperties["traceparent"] == .string(traceparent) })
            #expect(tracer.span(named: "receive work")?.links.count == 2)
            #expect(tracer.span(named: "complete work")?.attributes["messaging.operation.type"]?.toSpanAttribute() == .string("settle"))
            #expect(tracer.span(named: "dead_letter work") != nil)
        } catch {
            await running.close()
            await TestDatabase.drop(schema, client: client.client)
            await client.stop()
            throw error
        }
        await running.close()
        await TestDatabase.drop(schema, client: client.client)
        await client.stop()
    }
}
