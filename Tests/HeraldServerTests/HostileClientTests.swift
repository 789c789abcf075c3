import Foundation
import HeraldServer
import HeraldTestSupport
import HeraldWire
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `herald serve`, as a real process, against clients that attack it or misbehave: numbers at the
/// ends of their types, idle and slow connections past the connection cap under a small
/// descriptor limit, long polls whose clients leave, peeks of far more than an answer should hold,
/// malformed and oversized requests, and scrapes without a key. After each attack the server
/// answers `/health` at once, and every message acknowledged before it is still there.
@Suite("Hostile clients against a real herald serve", .serialized)
struct HostileClientTests {
    /// A running `herald serve` with a manage key.
    struct Served {
        let process: HeraldProcess
        let port: Int
        let directory: URL
        let admin: String
        let host: String

        /// One request on a connection of its own; `(status, body)`.
        func call(_ method: String = "POST", _ path: String, _ json: String? = nil, key: String?? = .none, timeout: Duration = .seconds(30)) throws -> (
            status: Int, body: String
        ) {
            let socket = try RawSocket(host: self.host, port: self.port)
            defer { socket.close() }
            let key = key ?? self.admin
            var request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            if let key { request += "Authorization: Bearer \(key)\r\n" }
            if let json { request += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)" } else { request += "\r\n" }
            socket.send(request)
            let response = socket.readResponse(timeout: timeout)
            return (response.status, response.body)
        }

        func json(_ body: String) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }

        /// `GET /health` on a fresh connection: its status and how long it took.
        func health() throws -> (status: Int, took: Duration) {
            let start = ContinuousClock.now
            let status = try self.call("GET", "/health").status
            return (status, ContinuousClock.now - start)
        }

        func stop() {
            self.process.signal(SIGKILL)
            try? FileManager.default.removeItem(at: self.directory)
        }
    }

    static func serve(_ extra: [String] = [], descriptorLimit: Int? = nil, host: String = "127.0.0.1") async throws -> Served {
        let directory = try ServerHarness.temporaryDirectory()
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let admin = try KeyStore(path: KeyStore.path(inDataDirectory: data.path)).create(name: "admin", rights: [.manage], entity: nil).secret
        let process = try HeraldProcess(
            ["serve", "--data", data.path, "--host", host, "--port", "0", "--log-level", "error"] + extra, descriptorLimit: descriptorLimit)
        let port = try await process.waitUntilListening()
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        return Served(process: process, port: port, directory: directory, admin: admin, host: bare)
    }

    static let emptyNonce = "00000000-0000-4000-8000-000000000000"

    // MARK: Item 1: numbers at the ends of their types

    @Test func abandonDelaysAtTheEndsOfInt64AreRefusedAndTheServerLives() async throws {
        let served = try await Self.serve()
        defer { served.stop() }
        #expect(try served.call("PUT", "/v1/queues/work", "{}").status == 201)
        #expect(try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"work"},"messages":[{"text":"a"}]}"#).status == 200)
        let received = try served.call("POST", "/v1/messages/receive", #"{"entity":{"queue":"work"}}"#)
        let messages = served.json(received.body)["messages"] as? [[String: Any]] ?? []
        let token = try #require(messages.first?["lockToken"] as? String, "\(received)")
        for delay in ["9223372036854775807", "-9223372036854775808", "-1", "315360000001", "9223372036854775806"] {
            let answer = try served.call("POST", "/v1/locks/abandon", #"{"lockToken":"\#(token)","delayMs":\#(delay)}"#)
            #expect(answer.status == 400 && answer.body.contains("invalidArgument"), "delayMs \(delay): \(answer)")
        }
        for field in [#""maxWaitMs":9223372036854775807"#, #""maxWaitMs":-9223372036854775808"#, #""maxCount":9223372036854775807"#] {
            let answer = try served.call("POST", "/v1/messages/receive", #"{"entity":{"queue":"work"},\#(field)}"#)
            #expect(answer.status == 400, "\(field): \(answer)")
        }
        #expect(served.process.process.isRunning, "the server died: \(served.process.standardError.suffix(2000))")
        #expect(try served.call("POST", "/v1/locks/complete", #"{"lockTokens":["\#(token)"]}"#).status == 204, "the lock survived the refused abandons")
        #expect(try served.health().status == 200)
    }

    // MARK: Items 2 and 3: connections past the cap, under a small descriptor limit

    @Test func idleAndSlowConnectionsCannotExhaustTheStoreOrRepeatIds() async throws {
        // 192 descriptors, soft and hard: the server keeps 128 for itself and serves 64 connections.
        let served = try await Self.serve(["--idle-timeout", "2", "--request-read-timeout", "2"], descriptorLimit: 192)
        defer { served.stop() }
        #expect(try served.call("PUT", "/v1/queues/dedup", #"{"duplicateDetectionWindowMs": 600000}"#).status == 201)
        #expect(try served.call("PUT", "/v1/queues/work", "{}").status == 201)
        #expect(try served.call("PUT", "/v1/queues/ledger", "{}").status == 201)
        for index in 0..<10 {
            #expect(
                try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"ledger"},"messages":[{"messageId":"l\#(index)","text":"kept"}]}"#).status
                    == 200)
        }

        // 200 connections that never send a byte (more than the descriptor limit): the cap takes 64,
        // the listen backlog the rest.
        var idle: [RawSocket] = []
        for _ in 0..<200 { idle.append(try RawSocket(port: served.port)) }
        // Requests wait in the backlog until the idle timeout frees places; none may fail.
        var duplicates: [Bool] = []
        for _ in 0..<3 {
            let sent = try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"dedup"},"messages":[{"text":"no id"}]}"#)
            #expect(sent.status == 200, "\(sent)")
            let receipts = served.json(sent.body)["receipts"] as? [[String: Any]] ?? []
            duplicates += receipts.compactMap { $0["isDuplicate"] as? Bool }
        }
        #expect(duplicates == [false, false, false], "three sends without a messageId are three messages")
        #expect(try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"work"},"messages":[{"text":"a"},{"text":"b"}]}"#).status == 200)
        var tokens: [String] = []
        for _ in 0..<2 {
            let received = try served.call("POST", "/v1/messages/receive", #"{"entity":{"queue":"work"}}"#)
            tokens += (served.json(received.body)["messages"] as? [[String: Any]] ?? []).compactMap { $0["lockToken"] as? String }
        }
        #expect(tokens.count == 2 && Set(tokens).count == 2, "two deliveries, two lock tokens: \(tokens)")
        #expect(!tokens.contains { $0.hasSuffix(Self.emptyNonce) }, "\(tokens)")
        for socket in idle { socket.close() }

        // A head sent a byte at a time never completes: the idle timeout closes the connection.
        let slowHead = try RawSocket(port: served.port)
        let head = Array("POST /v1/messages/send HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".utf8)
        var closedAfter: Duration?
        let start = ContinuousClock.now
        for byte in head + Array(repeating: UInt8(ascii: "a"), count: 40) {
            if !slowHead.send([byte]) || slowHead.read(timeout: .milliseconds(200)).closed {
                closedAfter = ContinuousClock.now - start
                break
            }
        }
        #expect(closedAfter != nil && closedAfter! < .seconds(6), "a slow request head is cut off: \(String(describing: closedAfter))")

        // A body sent a byte at a time: 408 once the read timeout passes, and the connection closes.
        let slowBody = try RawSocket(port: served.port)
        slowBody.send(
            "POST /v1/messages/send HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(served.admin)\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        var answer = ""
        for _ in 0..<40 {
            _ = slowBody.send(" ")
            let read = slowBody.read(timeout: .milliseconds(200))
            answer += read.text
            if read.closed { break }
        }
        #expect(answer.hasPrefix("HTTP/1.1 408"), "a slow body: \(answer)")

        #expect(served.process.process.isRunning, "the server died: \(served.process.standardError.suffix(2000))")
        _ = try served.health()
        let health = try served.health()
        #expect(health.status == 200 && health.took < .milliseconds(100), "health after the attack: \(health)")
        let ledger = try served.call("POST", "/v1/messages/receive", #"{"entity":{"queue":"ledger"},"maxCount":100,"mode":"receiveAndDelete"}"#)
        #expect((served.json(ledger.body)["messages"] as? [Any])?.count == 10, "every acknowledged message is still there: \(ledger.body.prefix(300))")
    }

    // MARK: Item 4: long polls whose client left

    @Test func aLongPollWhoseClientLeftTakesNothing() async throws {
        let served = try await Self.serve()
        defer { served.stop() }
        #expect(try served.call("PUT", "/v1/queues/work", "{}").status == 201)
        for (round, mode) in ["receiveAndDelete", "receiveAndDelete", "receiveAndDelete", "peekLock", "peekLock"].enumerated() {
            let poll = try RawSocket(port: served.port)
            poll.send(RawSocket.post("/v1/messages/receive", json: #"{"entity":{"queue":"work"},"maxWaitMs":60000,"mode":"\#(mode)"}"#, key: served.admin))
            try await Task.sleep(for: .milliseconds(300))
            poll.close()
            try await Task.sleep(for: .milliseconds(300))
            #expect(
                try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"work"},"messages":[{"messageId":"m\#(round)","text":"x"}]}"#).status == 200)
            try await Task.sleep(for: .milliseconds(500))
            let peeked = try served.call("POST", "/v1/messages/peek", #"{"entity":{"queue":"work"},"maxCount":10}"#)
            let messages = served.json(peeked.body)["messages"] as? [[String: Any]] ?? []
            #expect(messages.count == 1, "round \(round) (\(mode)): the message sent after the client left is still there: \(peeked.body.prefix(400))")
            #expect(messages.first?["deliveryCount"] as? Int == 0, "round \(round) (\(mode)): nobody took it: \(peeked.body.prefix(400))")
            #expect(try served.call("POST", "/v1/messages/receive", #"{"entity":{"queue":"work"},"mode":"receiveAndDelete"}"#).status == 200)
        }

        // 300 polls that all leave: each ends when its client does, so the key's 256 places are free again.
        var polls: [RawSocket] = []
        for _ in 0..<300 {
            let poll = try RawSocket(port: served.port)
            poll.send(RawSocket.post("/v1/messages/receive", json: #"{"entity":{"queue":"work"},"maxWaitMs":60000}"#, key: served.admin))
            polls.append(poll)
        }
        try await Task.sleep(for: .milliseconds(500))
        for poll in polls { poll.close() }
        try await Task.sleep(for: .seconds(1))
        let after = try served.call("POST", "/v1/messages/counts", #"{"entity":{"queue":"work"}}"#)
        #expect(after.status == 200, "after 300 abandoned polls: \(after)")
        #expect(try served.health().status == 200)
    }

    // MARK: Item 5: answers within a budget

    @Test func peeksAndReceivesOfHugeCountsStayWithinTheAnswerBudget() async throws {
        let budget = 1024 * 1024
        let served = try await Self.serve(["--max-response-size", String(budget)])
        defer { served.stop() }
        #expect(try served.call("PUT", "/v1/queues/big", "{}").status == 201)
        let body = Data(repeating: 0x61, count: 100 * 1024).base64EncodedString()
        for _ in 0..<5 {
            let batch = Array(repeating: #"{"body":"\#(body)"}"#, count: 4).joined(separator: ",")
            #expect(try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"big"},"messages":[\#(batch)]}"#).status == 200)
        }
        for (path, json) in [
            ("/v1/messages/peek", #"{"entity":{"queue":"big"},"maxCount":1000}"#),
            ("/v1/messages/receive", #"{"entity":{"queue":"big"},"maxCount":1000}"#),
            ("/v1/messages/receive", #"{"entity":{"queue":"big"},"maxCount":1000,"mode":"receiveAndDelete"}"#),
        ] {
            let answer = try served.call("POST", path, json)
            let count = (served.json(answer.body)["messages"] as? [Any])?.count ?? 0
            #expect(answer.status == 200 && answer.body.utf8.count <= budget, "\(path): \(answer.body.utf8.count) bytes")
            #expect(count >= 1 && count < 20, "\(path) \(json): \(count) messages")
        }
        let counts = served.json(try served.call("POST", "/v1/messages/counts", #"{"entity":{"queue":"big"}}"#).body)
        #expect((counts["active"] as? Int ?? 0) > 0, "the rest stays in the queue: \(counts)")
    }

    // MARK: Item 6: metrics need a key

    @Test func metricsNeedAManageKeyUnlessPublic() async throws {
        let served = try await Self.serve()
        defer { served.stop() }
        let keys = try KeyStore(path: KeyStore.path(inDataDirectory: served.directory.appendingPathComponent("data").path))
        let sender = try keys.create(name: "sender", rights: [.send, .listen], entity: nil).secret
        let scoped = try keys.create(name: "orders-admin", rights: [.manage], entity: "orders").secret
        // The server reads keys.json when it changes.
        try await Task.sleep(for: .milliseconds(1200))
        #expect(try served.call("GET", "/metrics", key: .some(nil)).status == 401)
        #expect(try served.call("GET", "/metrics", key: .some(sender)).status == 403)
        #expect(try served.call("GET", "/metrics", key: .some(scoped)).status == 403)
        #expect(try served.call("GET", "/metrics").status == 200)

        let open = try await Self.serve(["--metrics-public"])
        defer { open.stop() }
        #expect(try open.call("GET", "/metrics", key: .some(nil)).status == 200)
    }

    // MARK: Item 7: malformed HTTP, refused bodies, file modes, IPv6 loopback

    @Test func malformedChunksAre400AndRefusedBodiesCloseTheConnection() async throws {
        let served = try await Self.serve(["--max-body-size", "65536"])
        defer { served.stop() }
        #expect(try served.call("PUT", "/v1/queues/work", "{}").status == 201)

        let badChunk = try RawSocket(port: served.port)
        badChunk.send(
            "POST /v1/messages/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(served.admin)\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n")
        let chunkAnswer = badChunk.readResponse(timeout: .seconds(5))
        #expect(chunkAnswer.status == 400, "a bad chunk size: \(chunkAnswer)")

        let badEncoding = try RawSocket(port: served.port)
        badEncoding.send("POST /v1/messages/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(served.admin)\r\nTransfer-Encoding: gzip\r\n\r\nabc")
        let encodingAnswer = badEncoding.readResponse(timeout: .seconds(5))
        #expect((400..<500).contains(encodingAnswer.status) || encodingAnswer.status == 501, "a bad Transfer-Encoding: \(encodingAnswer)")

        // 100 MB announced, refused at once (413, and 401 without a key); the server then stops reading.
        for key in [served.admin, nil] {
            let huge = try RawSocket(port: served.port)
            var head = "POST /v1/messages/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n"
            if let key { head += "Authorization: Bearer \(key)\r\n" }
            huge.send(head + "\r\n")
            let chunk = [UInt8](repeating: UInt8(ascii: " "), count: 64 * 1024)
            var refused = ""
            var closed = false
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(5) {
                if !huge.send(chunk) {
                    closed = true
                    break
                }
                let read = huge.read(timeout: .milliseconds(5))
                refused += read.text
                if read.closed {
                    closed = true
                    break
                }
            }
            let expected = key == nil ? "HTTP/1.1 401" : "HTTP/1.1 413"
            #expect(refused.hasPrefix(expected) || refused.isEmpty, "\(key == nil ? "no key" : "too large"): \(refused.prefix(200))")
            #expect(closed, "\(key == nil ? "no key" : "too large"): the connection is closed within 5 s, not read to its end")
        }
        #expect(try served.health().status == 200)
    }

    @Test func theDataFolderAndDatabaseAreTheOwnersOnly() async throws {
        let served = try await Self.serve()
        defer { served.stop() }
        #expect(try served.call("PUT", "/v1/queues/work", "{}").status == 201)
        #expect(try served.call("POST", "/v1/messages/send", #"{"entity":{"queue":"work"},"messages":[{"text":"a"}]}"#).status == 200)
        let data = served.directory.appendingPathComponent("data")
        func mode(_ url: URL) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int ?? -1) & 0o777
        }
        let folder = served.directory.appendingPathComponent("fresh")
        let fresh = try HeraldProcess(["serve", "--data", folder.path, "--port", "0", "--insecure-local"])
        defer { fresh.signal(SIGKILL) }
        _ = try await fresh.waitUntilListening()
        #expect(try mode(folder) == 0o700, "a data folder serve creates")
        for name in ["herald.sqlite", "herald.sqlite-wal"] {
            #expect(try mode(data.appendingPathComponent(name)) == 0o600, "\(name)")
            #expect(try mode(folder.appendingPathComponent(name)) == 0o600, "fresh \(name)")
        }
    }

    @Test func aBracketedIPv6LoopbackServes() async throws {
        let served = try await Self.serve(host: "[::1]")
        defer { served.stop() }
        #expect(served.process.standardOutput.contains("http://[::1]:\(served.port)"), "\(served.process.standardOutput)")
        #expect(try served.health().status == 200)
    }
}
