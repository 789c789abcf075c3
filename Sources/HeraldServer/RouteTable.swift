import Foundation
import HeraldWire

/// Finds the ``HeraldWire/WireRoute`` of a request from its method and path, with the values of the
/// path's `{parameters}`.
struct RouteTable: Sendable {
    /// What a request's method and path resolve to.
    enum Resolution: Equatable {
        case matched(WireRoute, parameters: [String: String])
        /// The path exists with other methods.
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    private struct Template: Sendable {
        let route: WireRoute
        /// The path's segments, each a literal or a `{parameter}`.
        let segments: [Segment]
    }

    private enum Segment: Sendable {
        case literal(Substring)
        case parameter(String)
    }

    /// The templates by their number of segments, each list in the order of the routes.
    private let templatesBySegmentCount: [Int: [Template]]

    init(_ routes: [WireRoute] = WireRoute.all) {
        var templates: [Int: [Template]] = [:]
        for route in routes {
            // Split as requests are, so that `/` (one empty segment) is a template too.
            let segments = route.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { segment -> Segment in
                segment.hasPrefix("{") && segment.hasSuffix("}") ? .parameter(String(segment.dropFirst().dropLast())) : .literal(segment)
            }
            templates[segments.count, default: []].append(Template(route: route, segments: segments))
        }
        self.templatesBySegmentCount = templates
    }

    func resolve(method: String, path: String) -> Resolution {
        let segments = Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
        var allowed: [String] = []
        for template in self.templatesBySegmentCount[segments.count] ?? [] {
            guard let parameters = Self.match(template.segments, segments) else { continue }
            if template.route.method == method { return .matched(template.route, parameters: parameters) }
            allowed.append(template.route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    /// The parameters when `segments` (as many as the template's) fit `template`, percent-decoded.
    private static func match(_ template: [Segment], _ segments: [Substring]) -> [String: String]? {
        // The literals first: most templates differ from the path in one, and nothing is decoded then.
        for (expected, actual) in zip(template, segments) {
            if case .literal(let literal) = expected, literal != actual { return nil }
        }
        var parameters: [String: String] = [:]
        for (expected, actual) in zip(template, segments) {
            guard case .parameter(let name) = expected else { continue }
            guard !actual.isEmpty, let value = String(actual).removingPercentEncoding else { return nil }
            parameters[name] = value
        }
        return parameters
    }
}
