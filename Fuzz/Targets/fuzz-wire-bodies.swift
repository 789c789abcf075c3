// HTTP request bodies: the first byte picks the request type, the rest is the body. Each body is
// decoded as the server decodes it (WireDecoding.decode), then converted as the handlers convert it.
import Foundation
import HeraldCore
import HeraldWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWireBodies(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let body = Data(bytes.dropFirst())
    switch bytes[0] % 24 {
    case 0:
        if let r = wireRoundTrip(SendRequest.self, body) {
            checkEntity(r.entity)
            for message in r.messages { checkMessage(message) }
        }
    case 1:
        if let r = wireRoundTrip(SequenceNumbersRequest.self, body) { checkEntity(r.entity) }
    case 2:
        if let r = wireRoundTrip(ReceiveRequest.self, body) { checkEntity(r.entity) }
    case 3:
        if let r = wireRoundTrip(PeekRequest.self, body) { checkEntity(r.entity) }
    case 4:
        if let r = wireRoundTrip(EntityRequest.self, body) { checkEntity(r.entity) }
    case 5:
        if let r = wireRoundTrip(CompleteRequest.self, body) { r.lockTokens.forEach(checkToken) }
    case 6:
        if let r = wireRoundTrip(LockRequest.self, body) { checkToken(r.lockToken) }
    case 7:
        if let r = wireRoundTrip(AbandonRequest.self, body) { checkToken(r.lockToken) }
    case 8:
        if let r = wireRoundTrip(DeadLetterRequest.self, body) { checkToken(r.lockToken) }
    case 9:
        if let r = wireRoundTrip(AcceptSessionRequest.self, body) { checkEntity(r.entity) }
    case 10:
        if let r = wireRoundTrip(SessionReceiveRequest.self, body) { checkSession(r.session) }
    case 11:
        if let r = wireRoundTrip(SessionRequest.self, body) { checkSession(r.session) }
    case 12:
        if let r = wireRoundTrip(SessionStateBody.self, body) {
            if let session = r.session { checkSession(session) }
            if let state = r.state { _ = try? WireBase64.decode(state, "state") }
        }
    case 13:
        if let r = wireRoundTrip(CommitRequest.self, body) { checkCommit(r) }
    case 14:
        _ = wireRoundTrip(DocumentRequest.self, body)
    case 15:
        _ = wireRoundTrip(CollectionRequest.self, body)
    case 16:
        _ = wireRoundTrip(WireInboxEntry.self, body)
    case 17:
        _ = wireRoundTrip(ReadStreamRequest.self, body)
    case 18:
        _ = wireRoundTrip(ReadAllRequest.self, body)
    case 19:
        if let r = wireRoundTrip(WireOptions.self, body) { checkOptions(r) }
    case 20:
        if let r = wireRoundTrip(CreateSubscriptionRequest.self, body) {
            if let options = r.options { checkOptions(options) }
            if let filter = r.filter { checkFilter(filter) }
        }
    case 21:
        if let r = wireRoundTrip(WireMessage.self, body) { checkMessage(r, requiresSession: true) }
    case 22:
        if let r = wireRoundTrip(WireFilter.self, body) { checkFilter(r) }
    default:
        if let r = wireRoundTrip(WireEntity.self, body) { checkEntity(r) }
    }
    return 0
}

func checkCommit(_ request: CommitRequest) {
    request.completions?.forEach(checkToken)
    for settlement in request.settlements ?? [] { checkToken(settlement.lockToken) }
    for send in request.sends ?? [] {
        checkEntity(send.entity)
        checkMessage(send.message)
    }
    for cancellation in request.cancellations ?? [] { checkEntity(cancellation.entity) }
    for append in request.appends ?? [] {
        if let entity = append.publishTo { checkEntity(entity) }
        _ = try? append.expectedVersion()
        for event in append.events { _ = try? event.event() }
    }
    guard let transaction = try? request.transaction() else { return }
    // The store validates every send before it takes the transaction.
    guard transaction.sends.allSatisfy({ (try? $0.message.validate(against: EntityOptions())) != nil }) else { return }
    // What the client library sends for this transaction decodes to the same transaction.
    let rewired = CommitRequest(transaction)
    guard let data = try? JSONEncoder().encode(rewired), let again = try? WireDecoding.decode(CommitRequest.self, from: data) else {
        fatalError("fuzz invariant broken: a transaction's wire form does not decode")
    }
    guard let transaction2 = try? again.transaction() else { fatalError("fuzz invariant broken: a transaction's wire form does not convert") }
    func shape(_ t: BrokerTransaction) -> [String] {
        t.sends.map { "\($0.entity)|\($0.message.messageId)|\($0.message.body.base64EncodedString())" } + t.completions.map(\.description)
            + t.settlements.map { "\($0.token)|\($0.deadLetterReason ?? "-")" } + t.documentWrites.map { "\($0.collection)|\($0.key)|\($0.data?.count ?? -1)" }
    }
    require(shape(transaction2) == shape(transaction), "transaction round trip changes: \(shape(transaction)) -> \(shape(transaction2))")
}
