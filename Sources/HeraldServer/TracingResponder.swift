import HTTPTypes
import HeraldCore
import HeraldWire
import Hummingbird
import Tracing

/// Answers through `base`; with a tracer bootstrapped, in a server span `<method> <route>` that
/// continues the caller's trace from the request's headers (W3C `traceparent` and `tracestate`
/// with swift-otel). The broker's own spans (send, receive, settle, commit) are its children, and a
/// message sent without a trace context of its own gets the broker's send span's, so the trace
/// goes on to whoever processes it. Without a tracer it only calls `base`.
struct TracingResponder<Base: HTTPResponder>: HTTPResponder where Base.Context == HeraldRequestContext {
    typealias Context = HeraldRequestContext

    let base: Base
    let routes: RouteTable
    let tracer: (any Tracer)?

    func respond(to request: Request, context: Context) async throws -> Response {
        guard let tracer = self.tracer else { return try await self.base.respond(to: request, context: context) }
        var parent = ServiceContext.current ?? .topLevel
        tracer.extract(request.headers, into: &parent, using: FieldsExtractor())
        let method = request.method.rawValue
        let route: String
        if case .matched(let matched, _) = self.routes.resolve(method: method, path: request.uri.path) {
            route = matched.path
        } else {
            route = "unknown"
        }
        return try await MessagingTracing.withSpan("\(method) \(route)", ofKind: .server, parent: parent, tracer: tracer) { span in
            span.attributes["http.request.method"] = method
            span.attributes["http.route"] = route
            span.attributes["url.path"] = request.uri.path
            let response = try await self.base.respond(to: request, context: context)
            span.attributes["http.response.status_code"] = Int(response.status.code)
            if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
            return response
        }
    }
}

/// Reads the trace context from a request's headers.
private struct FieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}
