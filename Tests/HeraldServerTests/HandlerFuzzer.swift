import Foundation
import HTTPTypes
import HeraldWire
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization

/// A JSON value written by hand, so that the fuzzer can send numbers no encoder would write
/// (`1e999`, `9223372036854775808`, `-0`) and keys in any order.
indirect enum FuzzJSON: Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([FuzzJSON])
    case object([(String, FuzzJSON)])

    static func int(_ value: some BinaryInteger) -> FuzzJSON { .number("\(value)") }

    var text: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .number(let literal): literal
        case .string(let string): Self.quoted(string)
        case .array(let items): "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let fields): "{" + fields.map { Self.quoted($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    private static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// SplitMix64: small, fast and seedable, so that a failing run can be replayed from its seed.
struct FuzzRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }
}

/// What the fuzzer learned from the server's answers: lock tokens, session locks and sequence
/// numbers, so that generated requests reach the handlers' deeper paths (an abandon needs a
/// token the server handed out).
final class FuzzHarvest: Sendable {
    private struct Pools {
        var tokens: [String] = []
        var sessions: [FuzzJSON] = []
        var sequenceNumbers: [Int64] = []
    }
    private let pools = Mutex(Pools())
    static let capacity = 256

    func add(from body: [UInt8]) {
        guard body.first == UInt8(ascii: "{"), let object = try? JSONSerialization.jsonObject(with: Data(body)) else { return }
        var tokens: [String] = []
        var sessions: [FuzzJSON] = []
        var numbers: [Int64] = []
        func visit(_ value: Any) {
            if let dictionary = value as? [String: Any] {
                if let token = dictionary["lockToken"] as? String { tokens.append(token) }
                if let number = dictionary["sequenceNumber"] as? Int64 { numbers.append(number) }
                if let sessionId = dictionary["sessionId"] as? String, let nonce = dictionary["nonce"] as? String,
                    let entity = dictionary["entity"] as? [String: Any], let lockedUntil = dictionary["lockedUntil"] as? Int64
                {
                    let entityFields = entity.compactMap { key, value -> (String, FuzzJSON)? in
                        if let string = value as? String { return (key, .string(string)) }
                        if let bool = value as? Bool { return (key, .bool(bool)) }
                        return nil
                    }
                    sessions.append(
                        .object([
                            ("entity", .object(entityFields)), ("sessionId", .string(sessionId)), ("nonce", .string(nonce)),
                            ("lockedUntil", .int(lockedUntil)),
                        ])
                    )
                }
                dictionary.values.forEach(visit)
            } else if let array = value as? [Any] {
                array.forEach(visit)
            }
        }
        visit(object)
        guard !tokens.isEmpty || !sessions.isEmpty || !numbers.isEmpty else { return }
        self.pools.withLock { pools in
            pools.tokens = Array((pools.tokens + tokens).suffix(Self.capacity))
            pools.sessions = Array((pools.sessions + sessions).suffix(Self.capacity))
            pools.sequenceNumbers = Array((pools.sequenceNumbers + numbers).suffix(Self.capacity))
        }
    }

    func token(_ random: inout FuzzRandom) -> String? {
        let tokens = self.pools.withLock { $0.tokens }
        return tokens.isEmpty ? nil : random.pick(tokens)
    }

    func session(_ random: inout FuzzRandom) -> FuzzJSON? {
        let sessions = self.pools.withLock { $0.sessions }
        return sessions.isEmpty ? nil : random.pick(sessions)
    }

    func sequenceNumber(_ random: inout FuzzRandom) -> Int64? {
        let numbers = self.pools.withLock { $0.sequenceNumbers }
        return numbers.isEmpty ? nil : random.pick(numbers)
    }
}

/// One generated request.
struct FuzzRequest: Sendable, CustomStringConvertible {
    var method: HTTPRequest.Method
    var path: String
    var body: [UInt8]?
    var headers: HTTPFields = [:]

    var description: String {
        "\(self.method) \(self.path) \(self.body.map { String(decoding: $0.prefix(600), as: UTF8.self) } ?? "")"
    }
}

/// Generates requests for every route of the API: mostly well-formed bodies naming the
/// fixtures' entities and harvested tokens, with fields replaced by hostile values (the extremes
/// of every integer type, numbers beyond them, wrong types, huge arrays, long and odd strings),
/// dropped or added; some raw bytes. Waits stay short so that the run is not spent sleeping.
struct HandlerFuzzer {
    static let queue = "fuzz-q"
    static let sessionQueue = "fuzz-s"
    static let topic = "fuzz-t"
    static let subscription = "all"

    var random: FuzzRandom
    let harvest: FuzzHarvest

    static let hostileIntegers: [String] = [
        "0", "1", "-1", "2", "7", "10", "100", "256", "1000", "5000", "60000", "60001", "300001", "2147483647", "-2147483648",
        "4294967295", "4294967296", "9007199254740993", "9223372036854775807", "-9223372036854775808", "9223372036854775806",
        "-9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615", "99999999999999999999999",
        "1e308", "-1e308", "1e999", "-1e999", "0.5", "-0", "-0.0", "1.5e19", "3.0", "1E3", "253402300800000", "-62135596800001",
        "315569520000", "315569520001", "31536000000000",
    ]

    static let hostileStrings: [String] = [
        "", " ", "a", "fuzz-q", "fuzz-s", "fuzz-t", "all", "$deadletterqueue", "fuzz-q/$deadletterqueue", "fuzz-t/subscriptions/all",
        "bad name!", "../../etc/passwd", "%00", "\u{0}", "é", "🙂", String(repeating: "a", count: 129), String(repeating: "x", count: 5000),
        "peekLock", "receiveAndDelete", "Created", "AAEC", "not base64!", "==", "null", "true", "0", "-1",
        "fuzz-q#1@8D1F6A52-3C4B-4E0F-9A6B-2B6A1D1F0C11", "fuzz-q#9223372036854775807@8D1F6A52-3C4B-4E0F-9A6B-2B6A1D1F0C11",
        "fuzz-q#-1@00000000-0000-0000-0000-000000000000", "exact", "any", "none", "version",
    ]

    mutating func integer() -> FuzzJSON {
        if self.random.chance(0.7) { return .number(self.random.pick(Self.hostileIntegers)) }
        return .int(Int64.random(in: -1_000_000...1_000_000, using: &self.random))
    }

    mutating func string() -> FuzzJSON { .string(self.random.pick(Self.hostileStrings)) }

    /// Any value at all, of any type.
    mutating func anything(depth: Int = 0) -> FuzzJSON {
        switch Int.random(in: 0..<(depth > 2 ? 4 : 7), using: &self.random) {
        case 0: return .null
        case 1: return .bool(self.random.chance(0.5))
        case 2: return self.integer()
        case 3: return self.string()
        case 4: return .array((0..<Int.random(in: 0...3, using: &self.random)).map { _ in self.anything(depth: depth + 1) })
        case 5:
            let count = self.random.pick([0, 1, 2, 101, 1001, 5000])
            let element = self.anything(depth: 3)
            return .array(Array(repeating: element, count: count))
        default:
            return .object((0..<Int.random(in: 0...3, using: &self.random)).map { _ in (self.random.pick(Self.fieldNames), self.anything(depth: depth + 1)) })
        }
    }

    static let fieldNames = [
        "entity", "queue", "topic", "subscription", "deadLetter", "messages", "maxCount", "maxWaitMs", "mode", "sequenceNumbers",
        "fromSequenceNumber", "lockToken", "lockTokens", "delayMs", "reason", "description", "session", "sessionId", "nonce",
        "lockedUntil", "state", "timeToLiveMs", "scheduledEnqueueTime", "senderId", "senderSequence", "body", "text", "messageId",
        "applicationProperties", "int", "double", "string", "bool", "completions", "settlements", "sends", "cancellations",
        "documentWrites", "inboxEntries", "appends", "expectedVersion", "version", "expect", "fromVersion", "fromPosition",
        "collection", "key", "data", "stream", "events", "type", "options", "filter", "lockDurationMs", "maxDeliveryCount",
        "defaultTimeToLiveMs", "duplicateDetectionWindowMs", "maxMessageSize", "requiresSession", "deadLetterOnExpiration",
        "subject", "correlationId", "properties", "handler", "publishTo", "message",
    ]

    /// A field's value: usually the well-formed one, sometimes a hostile replacement.
    mutating func field(_ good: FuzzJSON, number: Bool = false) -> FuzzJSON {
        guard self.random.chance(number ? 0.35 : 0.12) else { return good }
        return number && self.random.chance(0.7) ? self.integer() : self.anything()
    }

    /// An object with some fields dropped and some unknown ones added.
    mutating func object(_ fields: [(String, FuzzJSON)]) -> FuzzJSON {
        var fields = fields.filter { _ in !self.random.chance(0.05) }
        if self.random.chance(0.04) { fields.append((self.random.pick(Self.fieldNames), self.anything())) }
        if self.random.chance(0.02), let first = fields.first { fields.append(first) }  // a repeated key
        return .object(fields)
    }

    mutating func entity() -> FuzzJSON {
        let entities: [[(String, FuzzJSON)]] = [
            [("queue", .string(Self.queue))], [("queue", .string(Self.sessionQueue))],
            [("topic", .string(Self.topic)), ("subscription", .string(Self.subscription))],
            [("queue", .string(Self.queue)), ("deadLetter", .bool(true))],
            [("topic", .string(Self.topic)), ("subscription", .string(Self.subscription)), ("deadLetter", .bool(true))],
            [("topic", .string(Self.topic))], [("queue", .string("missing"))],
        ]
        return self.field(self.object(self.random.pick(entities)))
    }

    /// A wait that is mostly zero or a few milliseconds, and sometimes out of range.
    mutating func wait() -> FuzzJSON {
        if self.random.chance(0.25) {
            return self.random.pick([
                .number("-1"), .number("60001"), .number("9223372036854775807"), .number("-9223372036854775808"), .number("1e30"), .string("5"),
            ])
        }
        return .int(self.random.pick([0, 0, 0, 1, 5, 20]))
    }

    mutating func token() -> FuzzJSON {
        if self.random.chance(0.8), let token = self.harvest.token(&self.random) { return self.field(.string(token)) }
        return self.string()
    }

    mutating func session() -> FuzzJSON {
        if self.random.chance(0.85), let session = self.harvest.session(&self.random) {
            guard case .object(var fields) = session else { return session }
            if self.random.chance(0.3), let index = fields.indices.randomElement(using: &self.random) {
                fields[index].1 = fields[index].0 == "lockedUntil" ? self.integer() : self.anything()
            }
            return .object(fields)
        }
        return self.object([
            ("entity", self.entity()), ("sessionId", self.string()), ("nonce", .string("8D1F6A52-3C4B-4E0F-9A6B-2B6A1D1F0C11")),
            ("lockedUntil", self.integer()),
        ])
    }

    mutating func sequenceNumber() -> FuzzJSON {
        if self.random.chance(0.6), let number = self.harvest.sequenceNumber(&self.random) { return .int(number) }
        return self.integer()
    }

    mutating func message() -> FuzzJSON {
        var fields: [(String, FuzzJSON)] = [("text", self.field(.string("hello")))]
        if self.random.chance(0.5) { fields.append(("messageId", self.field(.string("m-\(Int.random(in: 0..<50, using: &self.random))")))) }
        if self.random.chance(0.4) { fields.append(("sessionId", self.field(.string(self.random.pick(["s1", "s2", "s3"]))))) }
        if self.random.chance(0.2) { fields.append(("timeToLiveMs", self.field(.int(60_000), number: true))) }
        if self.random.chance(0.2) {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            fields.append(("scheduledEnqueueTime", self.field(.int(now + Int64.random(in: -1000...5000, using: &self.random)), number: true)))
        }
        if self.random.chance(0.15) {
            fields.append(("senderId", .string("sender")))
            fields.append(("senderSequence", self.field(.int(1), number: true)))
        }
        if self.random.chance(0.2) {
            fields.append(
                (
                    "applicationProperties",
                    self.field(.object([("n", .object([(self.random.pick(["int", "double", "string", "bool"]), self.anything(depth: 3))]))]))
                ))
        }
        if self.random.chance(0.05) { fields.append(("body", self.field(.string("AAEC")))) }
        return self.object(fields)
    }

    mutating func messages() -> FuzzJSON {
        let count = self.random.chance(0.03) ? self.random.pick([0, 101, 1000]) : Int.random(in: 1...3, using: &self.random)
        if count > 10 { return .array(Array(repeating: self.message(), count: count)) }
        return .array((0..<count).map { _ in self.message() })
    }

    mutating func options() -> [(String, FuzzJSON)] {
        var fields: [(String, FuzzJSON)] = []
        for (name, good) in [
            ("lockDurationMs", 30_000), ("maxDeliveryCount", 5), ("defaultTimeToLiveMs", 60_000), ("duplicateDetectionWindowMs", 60_000),
            ("maxMessageSize", 4096),
        ]
        where self.random.chance(0.3) {
            fields.append((name, self.field(.int(good), number: true)))
        }
        if self.random.chance(0.2) { fields.append(("requiresSession", self.field(.bool(self.random.chance(0.5))))) }
        if self.random.chance(0.2) { fields.append(("deadLetterOnExpiration", self.field(.bool(true)))) }
        return fields
    }

    mutating func name() -> String {
        self.random.chance(0.8)
            ? "f\(Int.random(in: 0..<20, using: &self.random))"
            : self.random.pick(["", "%20", "a%2Fb", String(repeating: "n", count: 300), "%FF%FE", "..", "$deadletterqueue", "x?y=1"])
    }

    /// The body for `route`, well-formed but mutated.
    mutating func body(for route: WireRoute) -> FuzzJSON? {
        switch route {
        case .createQueue, .createTopic: return self.object(self.options())
        case .createSubscription:
            var fields: [(String, FuzzJSON)] = [("options", self.object(self.options()))]
            if self.random.chance(0.5) { fields.append(("filter", self.field(.object([("subject", .string("Created"))])))) }
            return self.object(fields)
        case .send: return self.object([("entity", self.entity()), ("messages", self.field(self.messages()))])
        case .cancelScheduled, .receiveDeferred:
            return self.object([("entity", self.entity()), ("sequenceNumbers", self.field(.array([self.sequenceNumber(), self.sequenceNumber()])))])
        case .receive:
            return self.object([
                ("entity", self.entity()), ("maxCount", self.field(.int(self.random.pick([1, 5, 100])), number: true)), ("maxWaitMs", self.wait()),
                ("mode", self.field(.string(self.random.chance(0.8) ? "peekLock" : "receiveAndDelete"))),
            ])
        case .peek:
            return self.object([
                ("entity", self.entity()), ("fromSequenceNumber", self.field(.int(0), number: true)), ("maxCount", self.field(.int(10), number: true)),
            ])
        case .counts: return self.object([("entity", self.entity())])
        case .complete: return self.object([("lockTokens", self.field(.array([self.token()])))])
        case .abandon: return self.object([("lockToken", self.token()), ("delayMs", self.field(.int(self.random.pick([0, 10, 1000])), number: true))])
        case .deferMessage, .renewLock, .resubmit: return self.object([("lockToken", self.token())])
        case .deadLetter: return self.object([("lockToken", self.token()), ("reason", self.field(.string("r"))), ("description", self.field(.string("d")))])
        case .acceptSession:
            var fields: [(String, FuzzJSON)] = [("entity", self.entity()), ("maxWaitMs", self.wait())]
            if self.random.chance(0.5) { fields.append(("sessionId", self.field(.string(self.random.pick(["s1", "s2", "s3"]))))) }
            return self.object(fields)
        case .receiveFromSession:
            return self.object([("session", self.session()), ("maxCount", self.field(.int(5), number: true)), ("maxWaitMs", self.wait())])
        case .receiveDeferredFromSession:
            return self.object([("session", self.session()), ("sequenceNumbers", self.field(.array([self.sequenceNumber(), self.sequenceNumber()])))])
        case .getSessionState, .renewSessionLock, .releaseSession: return self.object([("session", self.session())])
        case .setSessionState: return self.object([("session", self.session()), ("state", self.field(.string("AAEC")))])
        case .commit:
            var fields: [(String, FuzzJSON)] = []
            if self.random.chance(0.5) { fields.append(("completions", self.field(.array([self.token()])))) }
            if self.random.chance(0.3) {
                fields.append(("settlements", .array([self.object([("lockToken", self.token()), ("deadLetterReason", self.string())])])))
            }
            if self.random.chance(0.5) {
                fields.append(("sends", self.field(.array([self.object([("entity", self.entity()), ("message", self.message())])]))))
            }
            if self.random.chance(0.2) {
                fields.append(("cancellations", .array([self.object([("entity", self.entity()), ("sequenceNumber", self.sequenceNumber())])])))
            }
            if self.random.chance(0.3) {
                fields.append(
                    (
                        "documentWrites",
                        .array([
                            self.object([
                                ("collection", .string("c")), ("key", self.string()), ("data", .string("AAEC")),
                                ("expectedVersion", self.field(.int(0), number: true)),
                            ])
                        ])
                    ))
            }
            if self.random.chance(0.2) { fields.append(("inboxEntries", .array([self.object([("handler", .string("h")), ("messageId", self.string())])]))) }
            if self.random.chance(0.3) {
                fields.append(
                    (
                        "appends",
                        .array([
                            self.object([
                                ("stream", self.field(.string("s-\(Int.random(in: 0..<5, using: &self.random))"))),
                                ("events", self.field(.array([self.object([("type", .string("E")), ("data", .string("AAEC"))])]))),
                                ("expect", self.field(.string(self.random.pick(["any", "exact", "none"])))), ("version", self.field(.int(0), number: true)),
                            ])
                        ])
                    )
                )
            }
            return self.object(fields)
        case .getDocument: return self.object([("collection", self.field(.string("c"))), ("key", self.string())])
        case .listDocuments: return self.object([("collection", self.field(.string("c")))])
        case .inboxContains: return self.object([("handler", self.field(.string("h"))), ("messageId", self.string())])
        case .readStream:
            return self.object([
                ("stream", self.field(.string("s-1"))), ("fromVersion", self.field(.int(0), number: true)), ("maxCount", self.field(.int(10), number: true)),
            ])
        case .readAll: return self.object([("fromPosition", self.field(.int(0), number: true)), ("maxCount", self.field(.int(10), number: true))])
        case .updateQueue, .updateTopic, .updateSubscription: return self.object(self.options())
        case .purge: return self.object([("entity", self.entity())])
        case .listSessions: return self.object([("entity", self.entity()), ("maxCount", self.field(.int(10), number: true))])
        case .getMessage: return self.object([("entity", self.entity()), ("sequenceNumber", self.sequenceNumber())])
        case .searchDeadLetters, .summarizeDeadLetters:
            var fields: [(String, FuzzJSON)] = [("entity", self.entity())]
            if self.random.chance(0.5) {
                fields.append(("filter", self.field(.object([("reason", self.string()), ("bodyContains", self.field(.string("order")))]))))
            }
            return self.object(fields)
        case .startBulkJob:
            var fields: [(String, FuzzJSON)] = [
                ("entity", self.entity()), ("action", self.field(.string(self.random.pick(["resubmit", "purge", "move", "explode"])))),
            ]
            if self.random.chance(0.5) { fields.append(("target", self.entity())) }
            if self.random.chance(0.3) { fields.append(("sequenceNumbers", self.field(.array([self.sequenceNumber()])))) }
            return self.object(fields)
        default: return nil
        }
    }

    /// The next request.
    mutating func next() -> FuzzRequest {
        if self.random.chance(0.03) { return self.raw() }
        let route = self.random.pick(WireRoute.all.filter { $0 != .metrics && $0 != .openAPI })
        var path = route.path
        for parameter in ["{queue}", "{topic}", "{subscription}", "{rule}"] { path = path.replacingOccurrences(of: parameter, with: self.name()) }
        var request = FuzzRequest(method: HTTPRequest.Method(route.method)!, path: path)
        if let body = self.body(for: route) { request.body = Array(body.text.utf8) }
        return request
    }

    /// A request whose body is not JSON, or not an object, or cut short.
    mutating func raw() -> FuzzRequest {
        let route = self.random.pick([WireRoute.send, .receive, .abandon, .commit, .peek])
        var bytes: [UInt8]
        switch Int.random(in: 0..<4, using: &self.random) {
        case 0: bytes = (0..<Int.random(in: 0...64, using: &self.random)).map { _ in UInt8.random(in: 0...255, using: &self.random) }
        case 1: bytes = Array(self.anything().text.utf8)
        case 2: bytes = Array((self.body(for: route)?.text ?? "{").utf8).dropLast(Int.random(in: 1...5, using: &self.random)).map { $0 }
        default: bytes = Array(String(repeating: "[", count: 5000).utf8)
        }
        return FuzzRequest(method: .post, path: route.path, body: bytes)
    }
}
