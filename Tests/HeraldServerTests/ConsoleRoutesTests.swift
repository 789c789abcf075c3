import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldServer
import HeraldWire
import Testing

/// The web console's routes: the page at `/` and its files under `/console/`, with strict security
/// headers, and `GET /v1/whoami`, which tells the console what the presented key may do.
@Suite("Web console routes")
struct ConsoleRoutesTests {
    /// The console's files in the repository, by name.
    static let consoleFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/HeraldServer/Console")

    static func checkSecurityHeaders(_ answer: HTTPConnection.Answer, _ what: String) {
        let policy = answer.headers[.contentSecurityPolicy] ?? ""
        #expect(policy.contains("default-src 'none'"), "\(what): \(policy)")
        #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "\(what): \(policy)")
        #expect(policy.contains("frame-ancestors 'none'"), "\(what): \(policy)")
        #expect(answer.headers[.xContentTypeOptions] == "nosniff", "\(what)")
        #expect(answer.headers[.cacheControl] == "no-cache", "\(what)")
        #expect(answer.headers[HTTPField.Name("X-Frame-Options")!] == "DENY", "\(what)")
    }

    @Test func thePageIsServedWithStrictSecurityHeadersAndNoKey() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let keys = try KeyStore(path: directory.appendingPathComponent("keys.json").path)
        _ = try keys.create(name: "admin", rights: [.manage], entity: nil)
        try await ServerHarness.withServer(keys: keys, directory: directory) { server in
            try await server.withClient { http in
                let page = try await http.request(.get, "/")
                #expect(page.status == 200, "\(page.text)")
                #expect(page.headers[.contentType] == "text/html; charset=utf-8")
                Self.checkSecurityHeaders(page, "/")
                let source = try String(contentsOf: Self.consoleFolder.appendingPathComponent("index.html"), encoding: .utf8)
                let isTheFile = page.text == source
                #expect(isTheFile, "the page is not the repository's index.html")
                // No method but GET.
                #expect(try await http.request(.post, "/", body: []).status == 405)
            }
        }
    }

    /// The files the page loads, and the scripts those scripts import, followed to the end.
    static func referencedFiles() throws -> Set<String> {
        let page = try String(contentsOf: Self.consoleFolder.appendingPathComponent("index.html"), encoding: .utf8)
        var referenced = Set(Self.matches(of: #"/console/([A-Za-z0-9_.-]+)"#, in: page))
        var unread = referenced.filter { $0.hasSuffix(".js") }
        while let script = unread.popFirst() {
            let text = try String(contentsOf: Self.consoleFolder.appendingPathComponent(script), encoding: .utf8)
            for imported in Self.matches(of: #"from '\./([A-Za-z0-9_.-]+)'"#, in: text) where !referenced.contains(imported) {
                referenced.insert(imported)
                unread.insert(imported)
            }
        }
        return referenced
    }

    /// Every file the page and the scripts load is served, with its type; nothing else is.
    @Test func everyReferencedFileIsServedWithItsType() async throws {
        let referenced = try Self.referencedFiles()
        let onDisk = Set(try FileManager.default.contentsOfDirectory(atPath: Self.consoleFolder.path)).subtracting(["index.html"])
        #expect(referenced == onDisk, "files loaded by nothing: \(onDisk.subtracting(referenced)); loaded but missing: \(referenced.subtracting(onDisk))")

        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                for name in referenced.sorted() {
                    let answer = try await http.request(.get, "/console/\(name)")
                    #expect(answer.status == 200, "\(name): \(answer.text)")
                    let expected: String
                    switch name.split(separator: ".").last {
                    case "js": expected = "text/javascript; charset=utf-8"
                    case "css": expected = "text/css; charset=utf-8"
                    case "svg": expected = "image/svg+xml"
                    default: expected = "?"
                    }
                    #expect(answer.headers[.contentType] == expected, "\(name)")
                    Self.checkSecurityHeaders(answer, name)
                    let source = try Data(contentsOf: Self.consoleFolder.appendingPathComponent(name))
                    let isTheFile = answer.body == Array(source)
                    #expect(isTheFile, "\(name) is not the repository's file (\(answer.body.count) bytes served, \(source.count) on disk)")
                }
            }
        }
    }

    /// A browser's copy that is current is answered 304 without a body; a stale one gets the file.
    @Test func aCurrentCopyIsNotSentAgain() async throws {
        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                for path in ["/", "/console/app.js"] {
                    let first = try await http.request(.get, path)
                    let tag = try #require(first.headers[.eTag], "\(path) has no ETag")
                    #expect(tag.hasPrefix("\"") && tag.hasSuffix("\"") && tag.count > 10, "\(path): \(tag)")
                    for current in [tag, "W/\(tag)", "\"other\", \(tag)", "*"] {
                        let again = try await http.request(.get, path, headers: [.ifNoneMatch: current])
                        #expect(again.status == 304 && again.body.isEmpty, "\(path) with If-None-Match: \(current): \(again.status)")
                        #expect(again.headers[.eTag] == tag && again.headers[.cacheControl] == "no-cache")
                    }
                    let stale = try await http.request(.get, path, headers: [.ifNoneMatch: "\"stale\""])
                    #expect(stale.status == 200 && stale.body == first.body, "\(path) with a stale tag: \(stale.status)")
                }
                let page = try await http.request(.get, "/")
                let script = try await http.request(.get, "/console/app.js")
                #expect(page.headers[.eTag] != script.headers[.eTag], "each file has its own tag")
            }
        }
    }

    @Test func unknownFilesAreNotFound() async throws {
        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                for path in ["/console/nothing.js", "/console/", "/console/..%2FPackage.swift", "/console/index.html", "/console/app.js/x", "/index.html"] {
                    let answer = try await http.request(.get, path)
                    #expect(answer.status == 404 && answer.error == "notFound", "\(path): \(answer.status) \(answer.text)")
                }
            }
        }
    }

    /// The page runs no inline script and sets no inline style (the policy would block them),
    /// and the scripts never write markup from strings.
    @Test func theAssetsKeepToThePolicy() throws {
        let page = try String(contentsOf: Self.consoleFolder.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(Self.matches(of: #"<script(?![^>]*\bsrc=)[^>]*>"#, in: page).isEmpty && !page.contains("<script>"), "an inline script")
        #expect(Self.matches(of: #"\s(on[a-z]+|style)\s*="#, in: page).isEmpty, "an inline handler or style")
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.consoleFolder.path) where name.hasSuffix(".js") {
            let text = try String(contentsOf: Self.consoleFolder.appendingPathComponent(name), encoding: .utf8)
            for forbidden in [".innerHTML", ".outerHTML", "insertAdjacentHTML(", "document.write(", "eval(", "new Function("] {
                let uses = text.contains(forbidden)
                #expect(!uses, "\(name) uses \(forbidden)")
            }
        }
    }

    @Test func whoAmIDescribesTheKeyAndItsScope() async throws {
        let directory = try ServerHarness.temporaryDirectory()
        let keys = try KeyStore(path: directory.appendingPathComponent("keys.json").path)
        let admin = try keys.create(name: "admin", rights: [.manage], entity: nil)
        let ordersReader = try keys.create(name: "orders-reader", rights: [.listen, .send], entity: "orders")
        let eventsReader = try keys.create(name: "events-reader", rights: [.listen], entity: "events")
        let nothing = try keys.create(name: "nothing-yet", rights: [.send], entity: "missing")
        try await ServerHarness.withServer(keys: keys, directory: directory) { server in
            try await server.broker.createQueue("orders")
            try await server.broker.createQueue("payments")
            try await server.broker.createTopic("events")
            try await server.broker.createSubscription("audit", topic: "events")
            try await server.withClient { http in
                for key in [nil, "garbage"] {
                    let refused = try await http.request(.get, "/v1/whoami", key: key)
                    #expect(refused.status == 401 && refused.error == "unauthorized", "\(key ?? "no key"): \(refused.text)")
                }
                let adminAnswer = try await http.request(.get, "/v1/whoami", key: admin.secret)
                #expect(adminAnswer.status == 200, "\(adminAnswer.text)")
                #expect(
                    try adminAnswer.decode(WhoAmIResponse.self)
                        == WhoAmIResponse(keysRequired: true, id: admin.key.id, name: "admin", rights: [.manage], scope: nil, entities: nil))

                let orders = try await http.request(.get, "/v1/whoami", key: ordersReader.secret).decode(WhoAmIResponse.self)
                #expect(
                    orders
                        == WhoAmIResponse(
                            keysRequired: true, id: ordersReader.key.id, name: "orders-reader", rights: [.send, .listen], scope: "orders",
                            entities: [WireEntity(.queue("orders"))]))

                let events = try await http.request(.get, "/v1/whoami", key: eventsReader.secret).decode(WhoAmIResponse.self)
                #expect(events.scope == "events")
                #expect(events.entities == [WireEntity(.topic("events")), WireEntity(.subscription("audit", of: "events"))])

                let missing = try await http.request(.get, "/v1/whoami", key: nothing.secret).decode(WhoAmIResponse.self)
                #expect(missing.scope == "missing" && missing.entities == [])
            }
        }
    }

    @Test func whoAmIWithoutKeysAllowsEverything() async throws {
        try await ServerHarness.withServer { server in
            try await server.withClient { http in
                let answer = try await http.request(.get, "/v1/whoami")
                #expect(answer.status == 200, "\(answer.text)")
                #expect(
                    try answer.decode(WhoAmIResponse.self)
                        == WhoAmIResponse(keysRequired: false, id: nil, name: nil, rights: AccessRight.allCases, scope: nil, entities: nil))
            }
        }
    }

    /// The console's send rate is the change of each entity's last sequence number in `/v1/stats`.
    @Test func statsCarryEachEntitysLastSequenceNumber() async throws {
        try await ServerHarness.withServer { server in
            try await server.broker.createQueue("orders")
            try await server.broker.createTopic("events")
            try await server.broker.createSubscription("audit", topic: "events")
            for index in 0..<3 { try await server.broker.send(Message(messageId: "o\(index)", text: "x"), to: .queue("orders")) }
            try await server.broker.send(Message(messageId: "e", text: "x"), to: .topic("events"))
            try await server.withClient { http in
                let items = try await http.request(.get, "/v1/stats").decode(WireEntityList.self).items
                let last = Dictionary(uniqueKeysWithValues: items.map { ($0.path, $0.lastSequenceNumber) })
                #expect(last["orders"] == 3, "\(items)")
                #expect(last["events"] == 1, "\(items)")
                #expect(last["events/subscriptions/audit"] == 1, "\(items)")
            }
        }
    }

    static func matches(of pattern: String, in text: String) -> [String] {
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return [] }
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
            return Range(range, in: text).map { String(text[$0]) }
        }
    }
}
