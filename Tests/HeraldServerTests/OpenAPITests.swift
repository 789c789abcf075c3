import Foundation
import HeraldCore
import HeraldWire
import Testing
import Yams

/// `openapi.yaml` and the implementation must agree: the same operations, every error status an
/// operation can answer documented, and the same fields in every body.
@Suite("OpenAPI document")
struct OpenAPITests {
    /// The committed document (`openapi.yaml` at the package root links to it).
    static var document: [String: Any] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/HeraldServer/openapi.yaml")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return ((try? Yams.load(yaml: text)) as? [String: Any]) ?? [:]
    }

    struct Operation: Hashable {
        var method: String
        var path: String
        var operationId: String
    }

    static var operations: [Operation: [String: Any]] {
        var result: [Operation: [String: Any]] = [:]
        for (path, item) in Self.document["paths"] as? [String: Any] ?? [:] {
            for (method, value) in item as? [String: Any] ?? [:] where method != "parameters" {
                guard let operation = value as? [String: Any] else { continue }
                result[Operation(method: method.uppercased(), path: path, operationId: operation["operationId"] as? String ?? "")] = operation
            }
        }
        return result
    }

    static var schemas: [String: [String: Any]] {
        let components = Self.document["components"] as? [String: Any] ?? [:]
        return (components["schemas"] as? [String: Any] ?? [:]).compactMapValues { $0 as? [String: Any] }
    }

    @Test func theDocumentParses() {
        #expect(Self.document["openapi"] as? String == "3.0.3")
        #expect(Self.operations.count > 0)
    }

    @Test func everyRouteIsDocumentedAndNothingElse() {
        let documented = Set(Self.operations.keys)
        let implemented = Set(WireRoute.all.map { Operation(method: $0.method, path: $0.path, operationId: $0.operationId) })
        #expect(
            documented == implemented,
            "only in the document: \(documented.subtracting(implemented)); only in WireRoute.all: \(implemented.subtracting(documented))")
    }

    @Test func everyOperationDocumentsItsErrors() {
        for route in WireRoute.all {
            guard let operation = Self.operations[Operation(method: route.method, path: route.path, operationId: route.operationId)] else { continue }
            let statuses = Set((operation["responses"] as? [String: Any] ?? [:]).keys)
            var expected: Set<String> = []
            if route.right != nil {
                expected.formUnion(["401", "403", "429", "500", "503", "507"])
            }
            if operation["requestBody"] != nil {
                // A body can be malformed or too large.
                expected.formUnion(["400", "413"])
            }
            // (The console's file name is no entity name: an unknown one is only 404.)
            if route == .consoleAsset {
                expected.insert("404")
            } else if route.path.contains("{") || operation["requestBody"] != nil {
                // Named entities can be badly named, and unknown unless the route creates them.
                expected.insert("400")
                if route != .createQueue && route != .createTopic { expected.insert("404") }
            }
            if route.path.hasPrefix("/v1/locks/") {
                expected.insert("410")
            }
            if route.method == "PUT" {
                expected.insert("409")
            }
            #expect(expected.isSubset(of: statuses), "\(route.operationId) lacks \(expected.subtracting(statuses).sorted())")
        }
    }

    /// Every status a broker error maps to is documented by the operations that can raise it.
    @Test func everyBrokerErrorStatusIsDocumented() {
        let statuses = Set(HeraldError.Code.all.map { String(WireStatus.status(for: $0)) })
        let responses = ((Self.document["components"] as? [String: Any])?["responses"] as? [String: Any]) ?? [:]
        #expect(statuses.isSubset(of: ["400", "404", "409", "410", "413", "500", "503", "507"]), "an unexpected status: \(statuses.sorted())")
        #expect(WireStatus.status(for: .insufficientStorage) == 507, "a full disk is 507 Insufficient Storage, not a failed store")
        #expect(
            Set(responses.keys) == [
                "BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict", "LockLost", "TooLarge", "TooManyRequests", "Internal",
                "Unavailable", "InsufficientStorage",
            ])
    }

    /// The document lists exactly the codes the server answers with: none it never sends, none
    /// it leaves out.
    @Test func theErrorCodesAreExactlyTheServers() {
        let error = (Self.schemas["Error"]?["properties"] as? [String: Any])?["error"] as? [String: Any]
        let documented = error?["enum"] as? [String] ?? []
        #expect(documented == WireError.Code.all.map(\.description))
        let description = (Self.document["info"] as? [String: Any])?["description"] as? String ?? ""
        for code in WireError.Code.refusals { #expect(description.contains("`\(code)`"), "the introduction does not name \(code)") }
    }

    // MARK: Bodies

    /// A value of every body type with every field set, and the schema that describes it.
    static var samples: [(schema: String, value: any Encodable)] {
        let token = LockToken(entity: .queue("orders"), sequenceNumber: 7, nonce: UUID())
        var message = Message(
            messageId: "m", body: Data("hi".utf8), contentType: "text/plain", subject: "s", correlationId: "c",
            causationId: "k", sessionId: "x", replyTo: "r", timeToLive: .seconds(5),
            scheduledEnqueueTime: Date(), applicationProperties: ["a": .int(1)], senderId: "p", senderSequence: 3,
            replyToSessionId: "r", to: "t", annotations: ["b": .bool(true)])
        message.applicationProperties["b"] = .string("z")
        let received = ReceivedMessage(
            message: message, entity: .queue("orders"), sequenceNumber: 7, enqueuedTime: Date(), deliveryCount: 1, state: .active,
            lockToken: token, lockedUntil: Date(), expiresAt: Date(), deadLetterReason: "r", deadLetterDescription: "d"
        )
        var wireMessage = WireMessage(message)
        wireMessage.text = "hi"
        let lock = WireSessionLock(SessionLock(entity: .queue("orders"), sessionId: "x", nonce: UUID(), lockedUntil: Date()))
        var options = EntityOptions()
        options.defaultTimeToLive = .seconds(60)
        options.duplicateDetectionWindow = .seconds(60)
        let filter = WireFilter(
            SubscriptionFilter(
                subject: "s", correlationId: "c", contentType: "t", properties: ["a": .bool(true)], messageId: "m", to: "o", replyTo: "r",
                sessionId: "i", replyToSessionId: "p", matchesNothing: true))
        let rule = WireRule(SubscriptionRule(name: "$Default", filter: .all))
        var entity = WireEntity(.subscription("audit", of: "events").deadLetter)
        entity.queue = "orders"
        // A queue or a topic: no subscription.
        var sendTarget = entity
        sendTarget.subscription = nil
        let info = WireEntityInfo(
            kind: "queue", path: "orders", entity: entity, options: WireOptions(options), filter: filter, rules: [rule],
            counts: WireCounts(EntityCounts()), lastSequenceNumber: 7)
        var property = WireProperty(.string("x"))
        property.int = 1
        property.double = 1.5
        property.bool = true
        return [
            ("Error", WireError(error: "lockLost", message: "m")),
            ("Entity", entity),
            ("SendTarget", sendTarget),
            ("ReceiveSource", entity),
            ("SessionSource", entity),
            ("Property", property),
            ("Message", wireMessage),
            ("ReceivedMessage", WireReceivedMessage(received)),
            ("Options", WireOptions(options)),
            ("Filter", filter),
            ("Counts", WireCounts(EntityCounts())),
            ("EntityInfo", info),
            ("EntityList", WireEntityList(items: [info])),
            ("CreateSubscriptionRequest", CreateSubscriptionRequest(options: WireOptions(options), filter: filter)),
            ("Rule", rule),
            ("RuleList", WireRuleList(items: [rule])),
            ("AddRuleRequest", AddRuleRequest(filter: filter)),
            ("SendRequest", SendRequest(entity: entity, messages: [wireMessage])),
            ("Receipt", WireReceipt(SendReceipt(sequenceNumber: 1, isDuplicate: false))),
            ("SendResponse", SendResponse(receipts: [WireReceipt(SendReceipt(sequenceNumber: 1, isDuplicate: false))])),
            ("SequenceNumbersRequest", SequenceNumbersRequest(entity: entity, sequenceNumbers: [1])),
            ("ReceiveDeferredRequest", SequenceNumbersRequest(entity: entity, sequenceNumbers: [1])),
            ("ReceiveRequest", ReceiveRequest(entity: entity, maxCount: 1, maxWaitMs: 0, mode: .peekLock, maxBytes: 65536)),
            ("PeekRequest", PeekRequest(entity: entity, fromSequenceNumber: 0, maxCount: 1)),
            ("EntityRequest", EntityRequest(entity: entity)),
            ("MessagesResponse", MessagesResponse(messages: [WireReceivedMessage(received)])),
            ("CompleteRequest", CompleteRequest(lockTokens: [WireLockToken.encode(token)])),
            ("LockRequest", LockRequest(lockToken: WireLockToken.encode(token))),
            ("ResubmitRequest", LockRequest(lockToken: WireLockToken.encode(token))),
            ("AbandonRequest", AbandonRequest(lockToken: WireLockToken.encode(token), delayMs: 5)),
            ("DeadLetterRequest", DeadLetterRequest(lockToken: WireLockToken.encode(token), reason: "r", description: "d")),
            ("RenewLockResponse", RenewLockResponse(lockedUntil: 1)),
            ("SettlementResponse", SettlementResponse(alreadySettled: true)),
            ("SessionLock", lock),
            ("AcceptSessionRequest", AcceptSessionRequest(entity: entity, sessionId: "x", maxWaitMs: 0)),
            ("SessionReceiveRequest", SessionReceiveRequest(session: lock, maxCount: 1, maxWaitMs: 0)),
            ("SessionReceiveDeferredRequest", SessionReceiveDeferredRequest(session: lock, sequenceNumbers: [1])),
            ("SessionRequest", SessionRequest(session: lock)),
            ("SessionState", SessionStateBody(session: lock, state: "AA==")),
            ("SetSessionStateRequest", SessionStateBody(session: lock, state: "AA==")),
            ("Health", HealthResponse(status: "ok", store: "sqlite")),
            ("WhoAmI", WhoAmIResponse(keysRequired: true, id: "k", name: "n", rights: [.listen], scope: "orders", entities: [entity])),
        ] + Self.transactionSamples(token: token, entity: entity, message: wireMessage)
            + Self.managementSamples(entity: entity, target: sendTarget, received: WireReceivedMessage(received))
    }

    /// Samples of the operator's bodies (GUARANTEES.md §6), every field set.
    static func managementSamples(entity: WireEntity, target: WireEntity, received: WireReceivedMessage) -> [(schema: String, value: any Encodable)] {
        let filter = WireDeadLetterFilter(
            DeadLetterFilter(reason: "r", subject: "s", bodyContains: "b", properties: ["a": .int(1)], enqueuedFrom: Date(), enqueuedBefore: Date()))
        var start = StartBulkJobRequest(.move(to: .queue("other")), on: .queue("orders"), selection: .sequenceNumbers([1]))
        start.filter = filter
        start.entity = entity
        start.target = target
        var job = WireBulkJob(
            BulkJob(
                id: "j", entity: .queue("orders"), action: .move(to: .topic("events")), state: .running, total: 3, processed: 2, applied: 1,
                notFound: 1, failed: 0, failure: "f", createdAt: Date(), updatedAt: Date()))
        job.entity = entity
        job.target = target
        let summary = DeadLetterSummaryResponse(
            DeadLetterSummary(
                total: 1, reasons: [.init(value: "r", count: 1)], subjects: [.init(value: "s", count: 1)], oldestEnqueuedTime: Date(),
                newestEnqueuedTime: Date()))
        let session = WireSessionInfo(SessionInfo(sessionId: "s", messageCount: 1, isLocked: true, lockedUntil: Date(), isParked: true, stateSize: 3))
        return [
            ("PurgeResponse", PurgeResponse(purged: 1)),
            ("GetMessageRequest", GetMessageRequest(entity: entity, sequenceNumber: 1)),
            ("DeadLetterFilter", filter),
            ("DeadLetterSearchRequest", DeadLetterSearchRequest(entity: entity, filter: filter, fromSequenceNumber: 1, maxCount: 10)),
            ("DeadLetterSearchResponse", DeadLetterSearchResponse(messages: [received], nextSequenceNumber: 2)),
            ("DeadLetterSummaryRequest", DeadLetterSummaryRequest(entity: entity, filter: filter)),
            ("Group", WireGroup(value: "r", count: 1)),
            ("DeadLetterSummaryResponse", summary),
            ("StartBulkJobRequest", start),
            ("BulkJob", job),
            ("BulkJobList", BulkJobList(jobs: [job])),
            ("ListSessionsRequest", ListSessionsRequest(entity: entity, after: "a", maxCount: 10)),
            ("SessionInfo", session),
            ("SessionList", SessionList(sessions: [session])),
        ]
    }

    /// Samples of the transaction and state bodies, every field set.
    static func transactionSamples(token: LockToken, entity: WireEntity, message: WireMessage) -> [(schema: String, value: any Encodable)] {
        let event = WireEventData(
            EventData(type: "t", data: Data("{}".utf8), correlationId: "c", causationId: "k", applicationProperties: ["traceparent": .string("t")]))
        let settlement = WireSettlement(lockToken: WireLockToken.encode(token), deadLetterReason: "r", deadLetterDescription: "d")
        let send = WireTransactionSend(entity: entity, message: message)
        let cancellation = WireCancellation(entity: entity, sequenceNumber: 1, messageId: "m")
        let write = WireDocumentWrite(collection: "c", key: "k", data: "AA==", expectedVersion: 1)
        let inbox = WireInboxEntry(InboxEntry(handler: "h", messageId: "m"))
        var appended = BrokerTransaction()
        appended.append(
            [EventData(type: "t", data: Data("{}".utf8), correlationId: "c", causationId: "k")], to: "s", expectedVersion: .exactly(2), publishTo: .topic("t"))
        let append = WireAppend(appended.appends[0])
        var commit = CommitRequest(BrokerTransaction())
        commit.completions = [WireLockToken.encode(token)]
        commit.settlements = [settlement]
        commit.sends = [send]
        commit.cancellations = [cancellation]
        commit.documentWrites = [write]
        commit.inboxEntries = [inbox]
        commit.appends = [append]
        let document = WireDocument(VersionedDocument(data: Data("x".utf8), version: 1))
        let recorded = WireRecordedEvent(RecordedEvent(stream: "s", version: 1, position: 1, recordedAt: Date(), event: EventData(type: "t", data: Data())))
        return [
            ("Settlement", settlement),
            ("TransactionSend", send),
            ("Cancellation", cancellation),
            ("DocumentWrite", write),
            ("InboxEntry", inbox),
            ("EventData", event),
            ("Append", append),
            ("CommitRequest", commit),
            ("CommitResponse", CommitResponse(TransactionReceipt(sends: [SendReceipt(sequenceNumber: 1, isDuplicate: false)], streamVersions: ["s": 1]))),
            ("Document", document),
            ("DocumentRequest", DocumentRequest(collection: "c", key: "k")),
            ("DocumentResponse", DocumentResponse(document: document)),
            ("CollectionRequest", CollectionRequest(collection: "c")),
            ("DocumentsResponse", DocumentsResponse(documents: ["k": document])),
            ("InboxResponse", InboxResponse(contains: true)),
            ("ReadStreamRequest", ReadStreamRequest(stream: "s", fromVersion: 1, maxCount: 10)),
            ("ReadAllRequest", ReadAllRequest(fromPosition: 1, maxCount: 10)),
            ("RecordedEvent", recorded),
            ("EventsResponse", EventsResponse(events: [recorded])),
        ]
    }

    @Test func everySchemaHasASampleAndEveryFieldMatches() throws {
        let samples = Self.samples
        #expect(Set(samples.map(\.schema)) == Set(Self.schemas.keys), "schemas without a sample or samples without a schema")
        for (name, value) in samples {
            let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any] ?? [:]
            let schema = Self.schemas[name] ?? [:]
            // A oneOf schema (an entity, a property value) has the fields of all its variants.
            // (A oneOf that only constrains, as in a cancellation, adds no fields.)
            let variants = (schema["properties"] == nil ? schema["oneOf"] as? [[String: Any]] : nil) ?? [schema]
            let properties = Set(variants.flatMap { ($0["properties"] as? [String: Any] ?? [:]).keys })
            // With every field set, the type writes exactly the fields the document lists.
            #expect(
                Set(encoded.keys) == properties,
                "\(name): the type has \(Set(encoded.keys).subtracting(properties).sorted()) undocumented, the document \(properties.subtracting(encoded.keys).sorted()) unknown to the type"
            )
            let required = Set(variants.flatMap { $0["required"] as? [String] ?? [] })
            #expect(required.isSubset(of: properties), "\(name): required fields that are not properties")
            // The server rejects unknown fields, and the document says so.
            #expect(variants.allSatisfy { $0["additionalProperties"] as? Bool == false }, "\(name): additionalProperties is not false")
        }
    }

    /// Strict decoding rejects what the document does not allow, in each body the server decodes.
    @Test func requestBodiesRejectUnknownFieldsAndWrongTypes() throws {
        let valid = #"{"entity": {"queue": "orders"}, "maxCount": 2}"#
        #expect(try WireDecoding.decode(ReceiveRequest.self, from: Data(valid.utf8)).maxCount == 2)
        for body in [
            #"{"entity": {"queue": "orders"}, "maxcount": 2}"#,  // unknown field (a typo)
            #"{"entity": {"queue": "orders", "sub": "x"}}"#,  // unknown nested field
            #"{"entity": {"queue": "orders"}, "maxCount": "2"}"#,  // wrong type
            #"{"maxCount": 2}"#,  // missing required field
            #"{"entity": {"queue": "orders"}, "maxCount": null}"#,  // null for an optional field: leave it out
            #"{"entity": {"queue": null, "topic": "events", "subscription": "audit"}}"#,  // a nested null
            #"{"entity": null}"#,  // null for a required field
            #"{"entity": {"queue": "orders"}"#,  // malformed JSON
            #"[]"#,
        ] {
            #expect(throws: HeraldError.self, "\(body)") { try WireDecoding.decode(ReceiveRequest.self, from: Data(body.utf8)) }
        }
    }

    /// The defaults the document gives the entity options are the ones a created entity gets: an
    /// absent field takes `EntityOptions()`'s value, and every option that has a default says which.
    @Test func entityOptionDefaultsAreTheLibrarysDefaults() throws {
        let properties = try #require(Self.schemas["Options"]?["properties"] as? [String: Any], "the Options schema")
        // The wire form of `EntityOptions()`, by field; a field it leaves unset is missing.
        var defaults: [String: String] = [:]
        for child in Mirror(reflecting: WireOptions(EntityOptions())).children {
            guard let label = child.label, let value = Mirror(reflecting: child.value).children.first?.value else { continue }
            defaults[label] = "\(value)"
        }
        #expect(Set(defaults.keys).isSubset(of: Set(properties.keys)), "every option the wire form sets is in the schema")
        for (name, property) in properties {
            let documented = (property as? [String: Any])?["default"]
            switch (documented, defaults[name]) {
            case (nil, nil):
                continue
            case (let documented?, let actual?):
                #expect("\(documented)" == actual, "\(name): the document's default is \(documented), EntityOptions() has \(actual)")
            case (let documented?, nil):
                Issue.record("\(name): the document gives a default of \(documented), EntityOptions() has none")
            case (nil, let actual?):
                Issue.record("\(name): EntityOptions() defaults to \(actual), the document gives no default")
            }
        }
    }
}
