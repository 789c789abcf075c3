import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import HeraldTracingTesting
import InMemoryTracing
import Testing
import Tracing

/// The spans of the library and the trace context its messages carry, with an in-memory tracer of
/// each test's own (given in the configurations, or bound to the test's task with `withTracer` when
/// they are made), so that tests running at once do not mix their spans.
@Suite struct TracingTests {
    /// A test's span, the command it sends, the handler that handles it and the command that
    /// handler sends, and that command's handling: parent and child all the way.
    @Test func aHandlerContinuesTheTraceOfTheMessageItHandles() async throws {
        let tracer = TraceRecorder()
        let store = try Store { $0.tracer = tracer }
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        try await broker.createQueue("out")
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            if command.step == 1 { try context.send(Step(commandId: "second", step: 2), to: .queue("out")) }
        }
        _ = try await tracer.withSpan("test") { _ in
            try await CommandBus(broker: broker).send(Step(commandId: "first", step: 1), to: .queue("in"))
        }
        let sent = try await broker.peek(.queue("in"), fromSequenceNumber: 0, maxCount: 1)
        let traceparent = sent.first?.message.applicationProperties["traceparent"]?.description ?? ""
        #expect(traceparent.hasPrefix("00-") && traceparent.count == 55, "the W3C trace context travels in the message's properties")
        try await store.processor(.queue("in"), handlers) { $0.tracer = tracer }.processAvailable()
        try await store.processor(.queue("out"), handlers) { $0.tracer = tracer }.processAvailable()
        let spans = tracer.finishedSpans
        let last = try #require(tracer.span(named: "process out"))
        #expect(
            tracer.ancestry(of: last) == ["process out", "create out", "process in", "send in", "test"],
            "send → process → create → process, each the child of the one before"
        )
        // A receive is a span of its own (of the consumer's poll), linked to what it brought.
        let traced = spans.filter { !$0.operationName.hasPrefix("receive ") }
        #expect(Set(traced.map(\.traceID)).count == 1, "one trace")
        let process = try #require(tracer.span(named: "process in"))
        #expect(process.kind == .consumer)
        #expect(process.attributes["messaging.system"]?.toSpanAttribute() == .string("herald"))
        #expect(process.attributes["messaging.operation.type"]?.toSpanAttribute() == .string("process"))
        #expect(process.attributes["messaging.destination.name"]?.toSpanAttribute() == .string("in"))
        #expect(process.attributes["messaging.message.id"]?.toSpanAttribute() == .string("first"))
        #expect(process.attributes["messaging.herald.message.delivery_count"]?.toSpanAttribute() == .int64(1))
        #expect(tracer.span(named: "create out")?.kind == .producer)
        #expect(
            spans.contains { $0.operationName == "commit" && $0.parentSpanID == process.spanID },
            "the handling's commit (its settlement) is a child of its processing")
        let receive = try #require(tracer.span(named: "receive in"))
        #expect(receive.links.count == 1, "a receive links to the creation context of what it brought")
    }

    /// One trace from a command to its handler, the event the handler appends (published through
    /// the outbox), the process manager that handles the event and schedules a timeout, the
    /// timeout when it fires, and the command the timeout's handler sends.
    @Test func oneTraceFromACommandThroughEventsAndAProcessManagerToATimeoutAndOn() async throws {
        // The store and the processors are made with the tracer bound: they take it by default.
        let tracer = TraceRecorder()
        let store = try withTracer(tracer) { try Store() }
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("orders")
        try await broker.createTopic("order-events")
        try await broker.createSubscription("shipping", topic: "order-events")
        try await broker.createQueue("shipping-timeouts")
        var orders = MessageHandlers()
        orders.on(PlaceOrder.self) { command, context in
            var order = try await context.load(TestOrder.self, id: command.orderId)
            order.raise(OrderPlaced(orderId: command.orderId))
            try context.save(order, publishTo: .topic("order-events"))
        }
        orders.on(ShipOrder.self) { _, _ in }
        var shipping = MessageHandlers()
        shipping.on(OrderPlaced.self) { event, context in
            var process = try await context.loadProcess(Shipping.self, id: event.orderId)
            process.state.waiting = true
            try context.scheduleTimeout(
                ShipmentTimeout(commandId: "timeout-\(event.orderId)", orderId: event.orderId), to: .queue("shipping-timeouts"),
                at: context.clock.now().addingTimeInterval(300)
            )
            try context.save(process)
        }
        shipping.on(ShipmentTimeout.self) { timeout, context in
            var process = try await context.loadProcess(Shipping.self, id: timeout.orderId)
            guard process.state.waiting else { return }
            process.state.waiting = false
            try context.send(ShipOrder(commandId: "ship-\(timeout.orderId)", orderId: timeout.orderId), to: .queue("orders"))
            try context.save(process)
        }
        try await withTracer(tracer) {
            try await CommandBus(broker: broker).send(PlaceOrder(commandId: "place-9", orderId: "9"), to: .queue("orders"))
            try await store.processor(.queue("orders"), orders).processAvailable()
            let published = try await broker.peek(.subscription("shipping", of: "order-events"), fromSequenceNumber: 0, maxCount: 1)
            #expect(published.first?.message.applicationProperties["traceparent"] != nil, "the outbox publishes the event with its trace context")
            #expect(published.first?.message.applicationProperties["stream"] == .string("order-9"))
            try await store.processor(.subscription("shipping", of: "order-events"), shipping).processAvailable()
            let scheduled = try await broker.peek(.queue("shipping-timeouts"), fromSequenceNumber: 0, maxCount: 1)
            #expect(scheduled.first?.state == .scheduled)
            #expect(scheduled.first?.message.applicationProperties["traceparent"] != nil, "the timeout waits with its trace context")
            store.clock.advance(by: .seconds(301))
            try await store.processor(.queue("shipping-timeouts"), shipping).processAvailable()
            try await store.processor(.queue("orders"), orders).processAvailable()
        }
        let spans = tracer.finishedSpans
        let last = try #require(tracer.span(named: "process orders"))
        #expect(
            tracer.ancestry(of: last) == [
                "process orders", "create orders",  // the timeout's handler sends ShipOrder
                "process shipping-timeouts", "create shipping-timeouts",  // the process manager schedules the timeout
                "process order-events/subscriptions/shipping", "create order-events",  // the order's handler appends OrderPlaced
                "process orders", "send orders",  // the command bus sends PlaceOrder
            ]
        )
        let traced = spans.filter { !$0.operationName.hasPrefix("receive ") }
        #expect(Set(traced.map(\.traceID)).count == 1, "one trace: \(Set(traced.map(\.operationName)).sorted())")
        for receive in spans where receive.operationName.hasPrefix("receive ") {
            #expect(receive.links.allSatisfy { $0.context.inMemorySpanContext?.traceID == last.traceID }, "linked into the trace")
        }
        let timeout = try #require(tracer.span(named: "process shipping-timeouts"))
        #expect(timeout.attributes["messaging.message.id"]?.toSpanAttribute() == .string("timeout-9"))
        let pm = try #require(tracer.span(named: "process order-events/subscriptions/shipping"))
        #expect(pm.attributes["messaging.destination.name"]?.toSpanAttribute() == .string("order-events"))
        #expect(pm.attributes["messaging.destination.subscription.name"]?.toSpanAttribute() == .string("shipping"))
        #expect(pm.attributes["messaging.message.id"]?.toSpanAttribute() == .string("order-9@1"))
    }

    /// A process manager's state keeps the trace context of the handling that saved it: a message
    /// of another trace that continues the process links back to it.
    @Test func aProcessContinuedInAnotherTraceLinksToTheOneThatSavedIt() async throws {
        let tracer = TraceRecorder()
        let store = try Store { $0.tracer = tracer }
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("process")
        var handlers = MessageHandlers()
        handlers.on(ShipOrder.self) { command, context in
            var process = try await context.loadProcess(Shipping.self, id: command.orderId)
            process.state.waiting.toggle()
            try context.save(process)
        }
        let processor = store.processor(.queue("process"), handlers) { $0.tracer = tracer }
        let commands = CommandBus(broker: broker)
        try await commands.send(ShipOrder(commandId: "first", orderId: "5"), to: .queue("process"))
        try await processor.processAvailable()
        let saved = try #require(try await broker.document("5", in: "process.shipping"))
        #expect(try MessageCoding.decode(Shipping.self, from: saved.data).waiting, "the state still decodes")
        let started = try #require(tracer.span(named: "process process"))
        try await commands.send(ShipOrder(commandId: "second", orderId: "5"), to: .queue("process"))
        try await processor.processAvailable()

        let load = try #require(tracer.span(named: "load process shipping"))
        let continued = try #require(tracer.finishedSpans.last { $0.operationName == "process process" })
        #expect(load.parentSpanID == continued.spanID && load.traceID != started.traceID, "loaded in the second message's trace")
        #expect(load.links.map { $0.context.inMemorySpanContext?.spanID } == [started.spanID], "linked to the handling that saved the process")
        #expect(try await broker.document("5", in: "process.shipping").map { try MessageCoding.decode(Shipping.self, from: $0.data).waiting } == false)
    }

    @Test func withoutATracerNothingIsAddedToMessages() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("in")
        try await broker.createQueue("out")
        var handlers = MessageHandlers()
        handlers.on(Step.self) { command, context in
            try context.send(Step(commandId: "next", step: command.step + 1), to: .queue("out"))
        }
        try await CommandBus(broker: broker).send(Step(commandId: "first", step: 1), to: .queue("in"))
        #expect(try await broker.peek(.queue("in"), fromSequenceNumber: 0, maxCount: 1).first?.message.applicationProperties == [:])
        try await store.processor(.queue("in"), handlers).processAvailable()
        #expect(try await broker.peek(.queue("out"), fromSequenceNumber: 0, maxCount: 1).first?.message.applicationProperties == [:])
    }

    @Test func aSpanEndsInErrorWhenTheOperationFails() async throws {
        let tracer = TraceRecorder()
        let store = try Store { $0.tracer = tracer }
        defer { Task { await store.close() } }
        await #expect(throws: HeraldError.self) { try await store.broker.send(Message(text: "x"), to: .queue("missing")) }
        let send = try #require(tracer.span(named: "send missing"))
        #expect(send.status?.code == .error)
        #expect(send.errors.count == 1)
    }
}

struct PlaceOrder: Command {
    static let typeName = "test.PlaceOrder"
    var commandId: String
    var orderId: String
}
