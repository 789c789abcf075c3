import Foundation
import HeraldCore
import Tracing

// MARK: - The trace context a process manager's state keeps

extension HandlerContext {
    /// The key of a process's JSON state that holds the trace context of the handling that saved
    /// it; decoding the state ignores it.
    static let traceContextKey = "$heraldTraceContext"

    /// `state` (a JSON object) with the current trace context under ``traceContextKey``; `state`
    /// itself when there is no current context or it is not a JSON object.
    static func keepingTraceContext(in state: Data, tracer: any Tracer) -> Data {
        guard let context = ServiceContext.current, var object = (try? JSONSerialization.jsonObject(with: state)) as? [String: Any] else {
            return state
        }
        var carrier: [String: String] = [:]
        tracer.inject(context, into: &carrier, using: DictionaryCarrier())
        guard !carrier.isEmpty else { return state }
        object[Self.traceContextKey] = carrier
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? state
    }

    /// Records the load of process `id` of `name` in a span linked to the trace context its
    /// `stored` state keeps, if it keeps one.
    func traceLoad(of name: String, id: String, stored: Data, tracer: any Tracer) {
        guard let object = (try? JSONSerialization.jsonObject(with: stored)) as? [String: Any],
            let carrier = object[Self.traceContextKey] as? [String: String]
        else { return }
        var saved = ServiceContext.topLevel
        tracer.extract(carrier, into: &saved, using: DictionaryCarrier())
        guard !saved.isEmpty else { return }
        let span = tracer.startSpan("load process \(name)", ofKind: .internal)
        span.attributes["messaging.herald.process.name"] = name
        span.attributes["messaging.herald.process.id"] = id
        span.addLink(SpanLink(context: saved, attributes: [:]))
        span.end()
    }
}

/// Reads and writes a trace context in a dictionary of strings.
private struct DictionaryCarrier: Injector, Extractor {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }

    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
