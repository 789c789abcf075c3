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
        /// The path's segments; a parameter is `{name}`.
        let segments: [Substring]
    }

    private let templates: [Template]

    init(_ routes: [WireRoute] = WireRoute.all) {
        // Split as requests are, so that `/` (one empty segment) is a template too.
        self.templates = routes.map { Template(route: $0, segments: Array($0.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())) }
    }

    func resolve(method: String, path: String) -> Resolution {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var allowed: [String] = []
        for template in self.templates {
            guard let parameters = Self.match(template.segments, Array(segments)) else { continue }
            if template.route.method == method { return .matched(template.route, parameters: parameters) }
            allowed.append(template.route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    /// The parameters when `segments` fit `template`, percent-decoded.
    private static func match(_ template: [Substring], _ segments: [Substring]) -> [String: String]? {
        guard template.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (expected, actual) in zip(template, segments) {
            if expected.hasPrefix("{") && expected.hasSuffix("}") {
                guard !actual.isEmpty, let value = String(actual).removingPercentEncoding else { return nil }
                parameters[String(expected.dropFirst().dropLast())] = value
            } else if expected != actual {
                return nil
            }
        }
        return parameters
    }
}
