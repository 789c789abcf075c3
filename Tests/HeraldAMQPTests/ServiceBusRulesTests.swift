import Foundation
import HeraldAMQP
import HeraldCore
import HeraldSQLite
import HeraldWire
import Testing

@testable import HeraldAMQPServer

/// A subscription's rules over its `$management` node, as the Service Bus SDKs ask for them: the
/// requests parsed at the value level, then added, removed and enumerated through a real listener
/// on a real store, whose later sends fan out by them.
struct ServiceBusRulesTests {
    typealias Failure = ServiceBusManagement.Failure

    /// An add-rule body as the .NET and Java SDKs write it: `rule-name`, and a `rule-description`
    /// map with the filter, `sql-rule-action` (null for none) and the name again.
    static func addRule(_ name: String, _ filter: (String, AMQPValue), action: AMQPValue = .null) -> AMQPMessage {
        ServiceBusManagementTests.request(
            "add-rule",
            [
                ("rule-name", .string(name)),
                (
                    "rule-description",
                    .map([
                        AMQPMapEntry(.string(filter.0), filter.1), AMQPMapEntry(.string("sql-rule-action"), action),
                        AMQPMapEntry(.string("rule-name"), .string(name)),
                    ])
                ),
            ])
    }

    static func sql(_ expression: String) -> (String, AMQPValue) {
        ("sql-filter", .map([AMQPMapEntry(.string("expression"), .string(expression))]))
    }

    /// A correlation filter as the SDKs write it: every field, null when unset, and the properties map.
    static func correlation(label: String? = nil, to: String? = nil, properties: [(String, AMQPValue)] = []) -> (String, AMQPValue) {
        let fields: [(String, String?)] = [
            ("correlation-id", nil), ("message-id", nil), ("to", to), ("reply-to", nil), ("label", label), ("session-id", nil),
            ("reply-to-session-id", nil), ("content-type", nil),
        ]
        let entries = fields.map { AMQPMapEntry(.string($0.0), $0.1.map { .string($0) } ?? .null) }
        return ("correlation-filter", .map(entries + [AMQPMapEntry(.string("properties"), .map(properties.map { AMQPMapEntry(.string($0.0), $0.1) }))]))
    }

    // MARK: Parsing

    @Test func addRuleReadsCorrelationFiltersAndTheTrueAndFalseSQLFilters() throws {
        let correlation = try ServiceBusManagementTests.operation(
            Self.addRule("eu", Self.correlation(label: "OrderPlaced", to: "orders", properties: [("region", .string("eu")), ("tier", .int(2))])))
        #expect(
            correlation
                == .addRule(
                    SubscriptionRule(
                        name: "eu", filter: SubscriptionFilter(subject: "OrderPlaced", properties: ["region": .string("eu"), "tier": .int(2)], to: "orders"))))
        #expect(correlation.right == .manage)
        #expect(try ServiceBusManagementTests.operation(Self.addRule("t", Self.sql("1=1"))) == .addRule(SubscriptionRule(name: "t", filter: .all)))
        #expect(try ServiceBusManagementTests.operation(Self.addRule("f", Self.sql(" 1 = 0 "))) == .addRule(SubscriptionRule(name: "f", filter: .none)))
    }

    @Test func otherSQLFiltersAndRuleActionsAreNotImplemented() {
        for request in [
            Self.addRule("sql", Self.sql("color = 'red'")),
            Self.addRule("action", Self.sql("1=1"), action: .map([AMQPMapEntry(.string("expression"), .string("SET a = 1"))])),
        ] {
            #expect {
                try ServiceBusManagementTests.operation(request)
            } throws: { error in
                let failure = error as? Failure
                return failure?.status == 501 && failure?.condition == AMQPCondition.notImplemented
                    && failure?.description.contains("correlation filters and the SQL filters 1=1 and 1=0") == true
            }
        }
    }

    @Test func malformedRuleRequestsAreRefusedAsInvalid() {
        let requests = [
            ServiceBusManagementTests.request("add-rule", [("rule-name", .string("r"))]),
            ServiceBusManagementTests.request("add-rule", [("rule-name", .string("r")), ("rule-description", .map([]))]),
            Self.addRule("r", ("correlation-filter", .map([AMQPMapEntry(.string("label"), .list([]))]))),
            ServiceBusManagementTests.request("remove-rule", []),
            ServiceBusManagementTests.request("remove-rule", [("rule-name", .long(1))]),
        ]
        for request in requests {
            #expect {
                try ServiceBusManagementTests.operation(request)
            } throws: { error in
                (error as? Failure)?.status == 400 && (error as? Failure)?.condition == AMQPCondition.invalidField
            }
        }
    }

    @Test func enumerateRulesBoundsSkipAndTop() throws {
        let hostile = try ServiceBusManagementTests.operation(
            ServiceBusManagementTests.request("enumerate-rules", [("top", .long(.max)), ("skip", .long(.max))]))
        #expect(hostile == .enumerateRules(skip: HeraldLimits.maxRulesPerSubscription, top: ServiceBusRules.maxTop))
        let negative = try ServiceBusManagementTests.operation(ServiceBusManagementTests.request("enumerate-rules", [("top", .int(-5)), ("skip", .int(-1))]))
        #expect(negative == .enumerateRules(skip: 0, top: 0))
        #expect(negative.right == .manage)
        #expect(
            try ServiceBusManagementTests.operation(ServiceBusManagementTests.request("remove-rule", [("rule-name", .string("$Default"))])).right == .manage)
    }

    @Test func managingRulesNeedsTheManageRightOnTheSubscription() {
        var links = ServiceBusLinks(verifiesTokens: true)
        let audit = ServiceBusEntity(name: "events", subscription: "audit", isDeadLetter: false)
        let now = Date()
        links.addGrant(ClaimsGrants.Grant(path: "events", rights: [.listen, .send], keyEntity: nil, expiry: now + 60), now: now)
        #expect(throws: AMQPError.self) { try links.require(.manage, on: audit, now: now) }
        links.addGrant(ClaimsGrants.Grant(path: "events", rights: [.manage], keyEntity: nil, expiry: now + 60), now: now)
        #expect(throws: Never.self) { try links.require(.manage, on: audit, now: now) }
    }

    @Test func enumeratedRulesAreDescribedAsTheSDKsDecodeThem() {
        let correlation = ServiceBusRules.described(SubscriptionRule(name: "eu", filter: SubscriptionFilter(subject: "S", properties: ["k": .int(1)])))
        guard case .described(.ulong(let code), .list(let fields)) = correlation, fields.count == 4,
            case .described(.ulong(let filterCode), .list(let filter)) = fields[0], case .described(.ulong(let actionCode), .list([])) = fields[1]
        else {
            Issue.record("not a described rule-description list: \(correlation)")
            return
        }
        #expect(code == 0x0000_0137_0000_0004 && filterCode == 0x0000_0137_0000_0009 && actionCode == 0x0000_0137_0000_0005)
        #expect(fields[2] == .string("eu"))
        #expect(filter.count == 9 && filter[4] == .string("S") && filter[0] == .null)
        #expect(filter[8] == .map([AMQPMapEntry(.string("k"), .long(1))]))
        for (rule, expected) in [(SubscriptionFilter.all, UInt64(0x0000_0137_0000_0007)), (.none, 0x0000_0137_0000_0008)] {
            guard case .described(_, .list(let fields)) = ServiceBusRules.described(SubscriptionRule(name: "r", filter: rule)),
                case .described(.ulong(let code), _) = fields[0]
            else {
                Issue.record("not a described rule")
                continue
            }
            #expect(code == expected)
        }
    }

    // MARK: Through a listener

    /// The answer of one `$management` request: its status, condition and body.
    struct Answer {
        var status: Int64?
        var condition: String?
        var body: [String: AMQPValue]
    }

    /// Sends `request` on the management sender link (handle 2) and reads the answer.
    static func ask(_ client: AMQPTestClient, _ request: AMQPMessage, id: UInt32) async throws -> Answer {
        var request = request
        var properties = AMQPMessage.Properties()
        properties.messageId = .string("request-\(id)")
        properties.replyTo = "rules-client"
        request.properties = properties
        try await client.sendTransfer(AMQPTransfer(handle: 2, deliveryId: id, deliveryTag: [UInt8(truncatingIfNeeded: id)], settled: true), message: request)
        while let frame = try await client.readFrame() {
            guard let body = frame.body, case .transfer = try AMQPPerformative(body) else { continue }
            let answer = try AMQPMessage(from: frame.payload)
            #expect(answer.properties?.correlationId == .string("request-\(id)"))
            let application = Dictionary((answer.applicationProperties ?? []).compactMap { entry in entry.key.text.map { ($0, entry.value) } }) { a, _ in a }
            var fields: [String: AMQPValue] = [:]
            if case .value(.map(let entries)) = answer.body {
                fields = Dictionary(entries.compactMap { entry in entry.key.text.map { ($0, entry.value) } }) { a, _ in a }
            }
            return Answer(status: application["statusCode"]?.signed, condition: application["errorCondition"]?.text, body: fields)
        }
        throw AMQPError(condition: AMQPCondition.internalError, description: "the connection closed before the answer")
    }

    /// The names of the rules an enumerate-rules answer lists.
    static func names(_ answer: Answer) -> [String] {
        guard case .list(let items)? = answer.body["rules"] else { return [] }
        return items.compactMap { item in
            guard case .map(let entries) = item, case .described(_, .list(let fields))? = entries.first(where: { $0.key.text == "rule-description" })?.value,
                fields.count > 2
            else { return nil }
            return fields[2].text
        }
    }

    @Test func rulesAreAddedRemovedAndEnumeratedAndLaterSendsFanOutByThem() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createTopic("events")
            try await broker.createSubscription("audit", topic: "events")
            try await ServiceBusSendingTests.serving(broker, verifyingWith: nil) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    #expect(try await ServiceBusSendingTests.putToken("SharedAccessSignature sr=x&sig=AA%3D%3D&se=1&skn=any", client: client) == .int(202))
                    let address = "amqps://localhost/events/Subscriptions/audit/$management"
                    try await client.send(
                        .attach(
                            AMQPAttach(
                                name: "rules-out", handle: 2, role: .sender, source: AMQPSource(address: "rules-client"), target: AMQPTarget(address: address)))
                    )
                    _ = try await client.readPerformative()  // attach
                    _ = try await client.readPerformative()  // flow: credit
                    var answers = AMQPAttach(
                        name: "rules-in", handle: 3, role: .receiver, source: AMQPSource(address: address), target: AMQPTarget(address: "rules-client"))
                    answers.receiverSettleMode = 0
                    try await client.send(.attach(answers))
                    _ = try await client.readPerformative()  // attach
                    var credit = AMQPFlow(nextIncomingId: 1, incomingWindow: 1000, nextOutgoingId: 1, outgoingWindow: 1000)
                    credit.handle = 3
                    credit.deliveryCount = 0
                    credit.linkCredit = 20
                    try await client.send(.flow(credit))

                    let enumerate = ServiceBusManagementTests.request("enumerate-rules", [("top", .int(100)), ("skip", .int(0))])
                    var answer = try await Self.ask(client, enumerate, id: 1)
                    #expect(answer.status == 200 && Self.names(answer) == ["$Default"])

                    answer = try await Self.ask(client, ServiceBusManagementTests.request("remove-rule", [("rule-name", .string("$Default"))]), id: 2)
                    #expect(answer.status == 200)
                    answer = try await Self.ask(client, enumerate, id: 3)
                    #expect(answer.status == 204, "no rules: No Content, as the SDKs expect")
                    try await broker.send(Message(messageId: "while-none", body: Data(), subject: "OrderPlaced"), to: .topic("events"))

                    let eu = Self.addRule("eu", Self.correlation(label: "OrderPlaced", properties: [("region", .string("eu"))]))
                    answer = try await Self.ask(client, eu, id: 4)
                    #expect(answer.status == 200)
                    answer = try await Self.ask(client, Self.addRule("vip", Self.correlation(to: "vip")), id: 5)
                    #expect(answer.status == 200)
                    answer = try await Self.ask(client, eu, id: 6)
                    #expect(answer.status == 409 && answer.condition == "com.microsoft:entity-already-exists")
                    answer = try await Self.ask(client, ServiceBusManagementTests.request("remove-rule", [("rule-name", .string("absent"))]), id: 7)
                    #expect(answer.status == 404 && answer.condition == AMQPCondition.notFound)
                    answer = try await Self.ask(client, Self.addRule("red", Self.sql("color = 'red'")), id: 8)
                    #expect(answer.status == 501 && answer.condition == AMQPCondition.notImplemented)
                    answer = try await Self.ask(client, ServiceBusManagementTests.request("enumerate-rules", [("top", .int(1)), ("skip", .int(1))]), id: 9)
                    #expect(Self.names(answer) == ["vip"], "skip and top page the rules in the order they were added")
                }
            }
            #expect(try await broker.rules(of: .subscription("audit", of: "events")).map(\.name) == ["eu", "vip"])
            var vip = Message(messageId: "vip", body: Data())
            vip.to = "vip"
            for message in [
                Message(messageId: "eu", body: Data(), subject: "OrderPlaced", applicationProperties: ["region": .string("eu")]),
                Message(messageId: "us", body: Data(), subject: "OrderPlaced", applicationProperties: ["region": .string("us")]), vip,
            ] {
                try await broker.send(message, to: .topic("events"))
            }
            let received = try await broker.receive(from: .subscription("audit", of: "events"), maxCount: 10, maxWaitTime: .zero)
            #expect(received.map(\.message.messageId) == ["eu", "vip"], "the sends after the changes fan out by the rules; none while there were none")
        }
    }
}
