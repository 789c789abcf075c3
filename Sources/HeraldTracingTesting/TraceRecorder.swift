public import InMemoryTracing
public import Tracing

/// A tracer for tests: swift-distributed-tracing's `InMemoryTracer`, propagating the trace context
/// as OpenTelemetry's W3C propagator does (`traceparent: 00-<32 hex>-<16 hex>-01`, with hex ids),
/// so that a test sees in message properties and HTTP headers what a swift-otel tracer puts there.
///
/// Bind it to the test's task with `withTracer(_:_:)` (rather than `InstrumentationSystem.bootstrap`,
/// which a process can call once): everything the test does in that task and the tasks it starts
/// reports to it, and tests running at once keep their spans apart.
///
/// ```swift
/// let tracer = TraceRecorder()
/// try await withTracer(tracer) {
///     try await CommandBus(broker: broker).send(PlaceOrder(commandId: "c-1"), to: .queue("orders"))
///     try await processor.processAvailable()
/// }
/// let process = try #require(tracer.span(named: "process orders"))
/// #expect(tracer.ancestry(of: process) == ["process orders", "send orders"])
/// ```
public struct TraceRecorder: Tracer {
    /// The spans are `InMemoryTracer`'s.
    public typealias Span = InMemorySpan

    /// The tracer that records the spans.
    public let recorder = InMemoryTracer(
        idGenerator: InMemoryTracer.IDGenerator(
            nextTraceID: { TraceRecorder.hex(UInt64.random(in: 1...UInt64.max)) + TraceRecorder.hex(UInt64.random(in: 1...UInt64.max)) },
            nextSpanID: { TraceRecorder.hex(UInt64.random(in: 1...UInt64.max)) }
        )
    )

    /// A tracer that records.
    public init() {}

    /// The spans that ended, in the order they ended.
    public var finishedSpans: [FinishedInMemorySpan] { self.recorder.finishedSpans }

    /// The last span called `name` to end, if any.
    public func span(named name: String) -> FinishedInMemorySpan? {
        self.finishedSpans.last { $0.operationName == name }
    }

    /// The names of the spans from `span` up to its root, following the parents.
    public func ancestry(of span: FinishedInMemorySpan) -> [String] {
        let spans = self.finishedSpans
        var names = [span.operationName]
        var current = span
        while let parent = current.parentSpanID, let next = spans.first(where: { $0.spanID == parent }) {
            names.append(next.operationName)
            current = next
        }
        return names
    }

    /// Starts a span, as `InMemoryTracer` does.
    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> InMemorySpan {
        self.recorder.startSpan(operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    /// Does nothing: the spans are in memory.
    public func forceFlush() {}

    /// Writes the span context of `context` as `traceparent`.
    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject("00-\(span.traceID)-\(span.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    /// Reads a `traceparent` into `context`; a malformed one is ignored.
    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = value.split(separator: "-")
        guard parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16 else { return }
        context.inMemorySpanContext = InMemorySpanContext(traceID: String(parts[1]), spanID: String(parts[2]), parentSpanID: nil)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
