import Foundation
import HeraldWire
import Testing

@testable import HeraldServer

/// How a request's method and path find their route, checked against every route of the API:
/// each template resolves to itself, its parameters percent-decoded.
@Suite struct RouteTableTests {
    let table = RouteTable()

    @Test func everyRouteResolvesToItself() {
        for route in WireRoute.all {
            let path = route.path.replacingOccurrences(of: "{", with: "p-").replacingOccurrences(of: "}", with: "")
            guard case .matched(let matched, let parameters) = self.table.resolve(method: route.method, path: path) else {
                Issue.record("\(route.method) \(path) did not resolve")
                continue
            }
            #expect(matched == route, "\(route.method) \(path)")
            for (name, value) in parameters { #expect(value == "p-\(name)", "\(route.path)") }
        }
    }

    @Test func parametersArePercentDecodedAndNeverEmpty() {
        #expect(
            self.table.resolve(method: "GET", path: "/v1/topics/a%20b/subscriptions/c%2Fd")
                == .matched(.getSubscription, parameters: ["topic": "a b", "subscription": "c/d"]))
        #expect(self.table.resolve(method: "GET", path: "/v1/queues/") == .notFound)
        #expect(self.table.resolve(method: "GET", path: "/v1/queues/%zz") == .notFound, "not percent-encoding")
        #expect(self.table.resolve(method: "GET", path: "/") == .matched(.console, parameters: [:]))
    }

    @Test func anotherMethodOfAKnownPathIsNotAllowed() {
        #expect(self.table.resolve(method: "POST", path: "/v1/queues/orders") == .methodNotAllowed(allowed: ["PUT", "GET", "DELETE", "PATCH"]))
        #expect(self.table.resolve(method: "GET", path: "/v1/messages/send") == .methodNotAllowed(allowed: ["POST"]))
        #expect(self.table.resolve(method: "GET", path: "/v1/nothing/here") == .notFound)
        #expect(self.table.resolve(method: "GET", path: "/v1/queues/orders/more") == .notFound)
    }
}
