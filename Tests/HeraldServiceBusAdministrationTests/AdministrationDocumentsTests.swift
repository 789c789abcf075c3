import Foundation
import HeraldCore
import Testing

@testable import HeraldServiceBusAdministration

/// The administration API's documents without I/O: the entries the Python SDK's
/// ServiceBusAdministrationClient sends (captured from azure-servicebus 7.15), what Herald refuses,
/// and the answers read back.
struct AdministrationDocumentsTests {
    static func entry(_ description: String, xsi: Bool = false) -> Data {
        let namespaces =
            #"xmlns:ns0="http://www.w3.org/2005/Atom" xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect""#
            + (xsi ? #" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""# : "")
        return Data(
            #"<?xml version='1.0' encoding='utf-8'?><ns0:entry \#(namespaces)><ns0:content type="application/xml">\#(description)</ns0:content></ns0:entry>"#
                .utf8)
    }

    @Test func aQueueEntryWithEveryHeraldSettingIsRead() throws {
        let body = try AdministrationDocuments.body(
            of: Self.entry(
                "<QueueDescription><LockDuration>PT45S</LockDuration><RequiresDuplicateDetection>true</RequiresDuplicateDetection>"
                    + "<RequiresSession>true</RequiresSession><DefaultMessageTimeToLive>P1D</DefaultMessageTimeToLive>"
                    + "<DeadLetteringOnMessageExpiration>false</DeadLetteringOnMessageExpiration>"
                    + "<DuplicateDetectionHistoryTimeWindow>PT5M</DuplicateDetectionHistoryTimeWindow><MaxDeliveryCount>5</MaxDeliveryCount>"
                    + "<MaxMessageSizeInKilobytes>1024</MaxMessageSizeInKilobytes><EnableBatchedOperations>true</EnableBatchedOperations>"
                    + "<AutoDeleteOnIdle>P10675199DT2H48M5.4775807S</AutoDeleteOnIdle><Status>Active</Status></QueueDescription>"))
        #expect(
            body
                == .queue(
                    EntityOptionsChange(
                        lockDuration: .seconds(45), maxDeliveryCount: 5, defaultTimeToLive: .some(.seconds(86_400)), deadLetterOnExpiration: false,
                        duplicateDetectionWindow: .some(.seconds(300)), maxMessageSize: 1024 * 1024, requiresSession: true)))
    }

    @Test func anEmptyDescriptionChangesNothingAndNeverMeansNoTimeToLive() throws {
        #expect(try AdministrationDocuments.body(of: Self.entry("<TopicDescription />")) == .topic(EntityOptionsChange()))
        let never = try AdministrationDocuments.body(
            of: Self.entry("<QueueDescription><DefaultMessageTimeToLive>P10675199DT2H48M5.4775807S</DefaultMessageTimeToLive></QueueDescription>"))
        #expect(never == .queue(EntityOptionsChange(defaultTimeToLive: .some(nil))))
        let detectionOff = try AdministrationDocuments.body(
            of: Self.entry("<QueueDescription><RequiresDuplicateDetection>false</RequiresDuplicateDetection></QueueDescription>"))
        #expect(detectionOff == .queue(EntityOptionsChange(duplicateDetectionWindow: .some(nil))))
        let detectionOn = try AdministrationDocuments.body(
            of: Self.entry("<QueueDescription><RequiresDuplicateDetection>true</RequiresDuplicateDetection></QueueDescription>"))
        #expect(detectionOn == .queue(EntityOptionsChange(duplicateDetectionWindow: .some(.seconds(600)))))
    }

    @Test func rulesAsTheSDKWritesThem() throws {
        let correlation = try AdministrationDocuments.body(
            of: Self.entry(
                #"<RuleDescription><Filter xsi:type="CorrelationFilter"><CorrelationId>c</CorrelationId><MessageId>m</MessageId><To>x</To><ReplyTo>rt</ReplyTo><Label>L</Label><SessionId>sid</SessionId><ReplyToSessionId>rsid</ReplyToSessionId><ContentType>ct</ContentType><Properties>"#
                    + #"<KeyValueOfstringanyType><Key>color</Key><Value xsi:type="d6p1:string" xmlns:d6p1="http://www.w3.org/2001/XMLSchema">red</Value></KeyValueOfstringanyType>"#
                    + #"<KeyValueOfstringanyType><Key>n</Key><Value xsi:type="d6p1:int" xmlns:d6p1="http://www.w3.org/2001/XMLSchema">2</Value></KeyValueOfstringanyType>"#
                    + #"<KeyValueOfstringanyType><Key>b</Key><Value xsi:type="d6p1:boolean" xmlns:d6p1="http://www.w3.org/2001/XMLSchema">true</Value></KeyValueOfstringanyType>"#
                    + #"<KeyValueOfstringanyType><Key>f</Key><Value xsi:type="d6p1:double" xmlns:d6p1="http://www.w3.org/2001/XMLSchema">1.5</Value></KeyValueOfstringanyType>"#
                    + #"</Properties></Filter><Action xsi:type="EmptyRuleAction" /><Name>r1</Name></RuleDescription>"#, xsi: true))
        var expected = SubscriptionFilter(
            subject: "L", correlationId: "c", contentType: "ct", properties: ["color": .string("red"), "n": .int(2), "b": .bool(true), "f": .double(1.5)])
        expected.messageId = "m"
        expected.to = "x"
        expected.replyTo = "rt"
        expected.sessionId = "sid"
        expected.replyToSessionId = "rsid"
        #expect(correlation == .rule(expected))
        func sql(_ type: String, _ expression: String) throws -> AdministrationBody {
            try AdministrationDocuments.body(
                of: Self.entry(
                    #"<RuleDescription><Filter xsi:type="\#(type)"><SqlExpression>\#(expression)</SqlExpression><CompatibilityLevel>20</CompatibilityLevel></Filter><Action xsi:type="EmptyRuleAction" /><Name>r</Name></RuleDescription>"#,
                    xsi: true))
        }
        #expect(try sql("TrueFilter", "1=1") == .rule(.all))
        #expect(try sql("SqlFilter", "1=1") == .rule(.all))
        #expect(try sql("FalseFilter", "1&gt;1") == .rule(.none))
        #expect(throws: AdministrationFailure.self) { try sql("SqlFilter", "color = 'red'") }
    }

    @Test func whatHeraldCannotHonourIsRefusedNotIgnored() {
        func refusal(_ description: String) -> AdministrationFailure? {
            do {
                _ = try AdministrationDocuments.body(of: Self.entry(description, xsi: true))
                return nil
            } catch { return error }
        }
        #expect(refusal("<QueueDescription><ForwardTo>elsewhere</ForwardTo></QueueDescription>")?.status == 501)
        #expect(refusal("<QueueDescription><EnablePartitioning>true</EnablePartitioning></QueueDescription>")?.status == 501)
        #expect(refusal("<QueueDescription><AutoDeleteOnIdle>PT1H</AutoDeleteOnIdle></QueueDescription>")?.status == 501)
        #expect(refusal("<QueueDescription><Status>Disabled</Status></QueueDescription>")?.status == 501)
        #expect(refusal("<QueueDescription><UserMetadata>notes</UserMetadata></QueueDescription>")?.status == 501)
        #expect(refusal("<QueueDescription><LockDuration>P1M</LockDuration></QueueDescription>")?.status == 400)
        #expect(refusal("<QueueDescription><MaxDeliveryCount>many</MaxDeliveryCount></QueueDescription>")?.status == 400)
        #expect(refusal("<QueueDescription><MaxMessageSizeInKilobytes>102400</MaxMessageSizeInKilobytes></QueueDescription>")?.status == 400)
        #expect(
            refusal(
                #"<RuleDescription><Filter xsi:type="TrueFilter"><SqlExpression>1=1</SqlExpression></Filter><Action xsi:type="SqlRuleAction"><SqlExpression>SET a=1</SqlExpression></Action></RuleDescription>"#
            )?
            .status == 501)
        #expect(refusal("<NamespaceDescription />")?.status == 400)
    }

    @Test func hostileBodiesAreRefusedWithAReason() {
        func refusal(_ text: String) -> AdministrationFailure? {
            do {
                _ = try AdministrationDocuments.body(of: Data(text.utf8))
                return nil
            } catch { return error }
        }
        // Entity expansion (a "billion laughs") never starts: a document type is refused outright.
        let laughs =
            #"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><entry xmlns="http://www.w3.org/2005/Atom"><content>&lol2;</content></entry>"#
        #expect(refusal(laughs)?.detail.contains("document type") == true)
        let deep = String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100)
        #expect(refusal(deep)?.detail.contains("deeper") == true)
        #expect(refusal("<entry><content>")?.status == 400)
        #expect(refusal("")?.status == 400)
        #expect(refusal("not xml at all")?.status == 400)
        let many = #"<entry xmlns="http://www.w3.org/2005/Atom"><content>"# + String(repeating: "<x/>", count: 5000) + "</content></entry>"
        #expect(refusal(many)?.detail.contains("elements") == true)
    }

    @Test func answersAreWellFormedAndReadBack() throws {
        var filter = SubscriptionFilter(correlationId: "c<&>", properties: ["n": .int(7), "big": .int(1 << 40), "ok": .bool(true), "name": .string("a&b")])
        filter.to = "x"
        let document = AdministrationDocuments.entryDocument(
            .init(title: "r", resource: .rule(topic: "t", subscription: "s", name: "r"), description: .rule(SubscriptionRule(name: "r", filter: filter))),
            base: "https://localhost:5443/")
        let root = try XMLTreeParser.parse(Data(document.utf8))
        let rule = try #require(root.child("content")?.child("RuleDescription"))
        let written = try #require(rule.child("Filter"))
        #expect(written.typeAttribute == "CorrelationFilter")
        #expect(written.text(of: "CorrelationId") == "c<&>")
        let properties = written.child("Properties")?.children ?? []
        let types = Dictionary(uniqueKeysWithValues: properties.map { ($0.text(of: "Key") ?? "", $0.child("Value")?.typeAttribute ?? "") })
        #expect(types == ["n": "int", "big": "long", "ok": "boolean", "name": "string"])
        // What Herald writes, it reads back as the same filter.
        #expect(try AdministrationDocuments.filter(of: rule) == filter)
        #expect(root.text(of: "id") == "https://localhost:5443/t/Subscriptions/s/Rules/r")
    }

    @Test func aFeedLinksItsNextPageOnlyWhenThereIsOne() throws {
        let entries = (0..<2).map {
            AdministrationDocuments.Entry(title: "q\($0)", resource: .entity("q\($0)"), description: .queue(EntityOptions(), EntityCounts()))
        }
        let more = try XMLTreeParser.parse(
            Data(
                AdministrationDocuments.feedDocument(title: "Queues", resource: .list(.queues), entries: entries, next: "$skip=2&$top=2", base: "https://h/")
                    .utf8))
        #expect(more.children.filter { $0.name == "link" }.map { $0.attributes["rel"] } == ["self", "next"])
        #expect(more.children.filter { $0.name == "entry" }.count == 2)
        let last = try XMLTreeParser.parse(
            Data(AdministrationDocuments.feedDocument(title: "Queues", resource: .list(.queues), entries: entries, next: nil, base: "https://h/").utf8))
        #expect(last.children.filter { $0.name == "link" }.count == 1)
    }

    @Test func durations() {
        #expect(XMLDuration.parse("PT1M") == .seconds(60))
        #expect(XMLDuration.parse("P1DT2H3M4.5S") == .seconds(93_784) + .milliseconds(500))
        #expect(XMLDuration.parse("P2W") == .seconds(14 * 86_400))
        #expect(XMLDuration.parse("P10675199DT2H48M5.4775807S").map { $0 >= XMLDuration.neverThreshold } == true)
        for invalid in ["", "P", "PT", "1M", "P1M", "P1Y", "PT1D", "P1H", "-PT1S", "PT1.2.3S", "P1DT", "PTS"] {
            #expect(XMLDuration.parse(invalid) == nil, "\(invalid)")
        }
        #expect(XMLDuration.format(.seconds(60)) == "PT1M")
        #expect(XMLDuration.format(.zero) == "PT0S")
        #expect(XMLDuration.format(.seconds(86_400 + 3661) + .milliseconds(250)) == "P1DT1H1M1.25S")
        for duration: Duration in [.seconds(45), .seconds(600), .seconds(7 * 86_400), .milliseconds(1500)] {
            #expect(XMLDuration.parse(XMLDuration.format(duration)) == duration)
        }
    }

    @Test func resourcePaths() {
        #expect(AdministrationResource(path: "/orders") == .entity("orders"))
        #expect(AdministrationResource(path: "/$namespaceinfo") == .namespace)
        #expect(AdministrationResource(path: "/$Resources/Queues") == .list(.queues))
        #expect(AdministrationResource(path: "/$Resources/topics") == .list(.topics))
        #expect(AdministrationResource(path: "/events/subscriptions") == .subscriptions(topic: "events"))
        #expect(AdministrationResource(path: "/events/Subscriptions/audit") == .subscription(topic: "events", name: "audit"))
        #expect(AdministrationResource(path: "/events/subscriptions/audit/rules") == .rules(topic: "events", subscription: "audit"))
        #expect(AdministrationResource(path: "/events/subscriptions/audit/rules/%24Default") == .rule(topic: "events", subscription: "audit", name: "$Default"))
        for unknown in ["/", "/$Resources/namespaces", "/$other", "/a/b", "/a/subscriptions/b/c", "/a/subscriptions/b/rules/c/d", "/a/%zz"] {
            #expect(AdministrationResource(path: unknown) == nil, "\(unknown)")
        }
    }
}
