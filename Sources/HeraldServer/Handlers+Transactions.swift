import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

extension Handlers {
    /// The transaction and state routes (GUARANTEES.md §4.8), answered when the broker is a
    /// `TransactionalBroker` (both of Herald's stores are); otherwise `invalidArgument`.
    ///
    /// Scope: settling needs `listen` on the entity, sending `send`; documents, the inbox and event
    /// streams are namespace state, so writing or reading them needs a namespace key.
    func handleTransaction(_ route: WireRoute, body: ByteBuffer, caller: Caller) async throws -> Response {
        guard let broker = self.broker as? any TransactionalBroker else {
            throw HeraldError(.invalidArgument, "this server's store does not support transactions")
        }
        switch route {
        case .commit:
            let transaction = try BodyDecoder.decode(CommitRequest.self, from: body).transaction()
            try Self.authorize(transaction, caller)
            let receipt = try await self.countingLockLoss(transaction.completions.first?.entity ?? transaction.settlements.first?.token.entity) {
                try await broker.commit(transaction)
            }
            for token in transaction.completions { self.metrics.completed(token.entity) }
            for settlement in transaction.settlements where settlement.deadLetterReason != nil { self.metrics.deadLettered(settlement.token.entity) }
            for (send, sendReceipt) in zip(transaction.sends, receipt.sends) { self.metrics.sent([sendReceipt], to: send.entity) }
            return try Reply.json(CommitResponse(receipt))

        case .getDocument:
            let request = try BodyDecoder.decode(DocumentRequest.self, from: body)
            try caller.requireNamespace()
            let document = try await broker.document(request.key, in: request.collection)
            return try Reply.json(DocumentResponse(document: document.map(WireDocument.init)))

        case .listDocuments:
            let request = try BodyDecoder.decode(CollectionRequest.self, from: body)
            try caller.requireNamespace()
            let documents = try await broker.documents(in: request.collection)
            return try Reply.json(DocumentsResponse(documents: documents.mapValues(WireDocument.init)))

        case .inboxContains:
            let request = try BodyDecoder.decode(WireInboxEntry.self, from: body)
            try caller.requireNamespace()
            return try Reply.json(InboxResponse(contains: try await broker.inboxContains(request.entry)))

        case .readStream:
            let request = try BodyDecoder.decode(ReadStreamRequest.self, from: body)
            try caller.requireNamespace()
            let events = try await broker.readStream(request.stream, from: request.fromVersion, maxCount: request.maxCount)
            return try Reply.json(EventsResponse(events: events.map(WireRecordedEvent.init)))

        case .readAll:
            let request = try BodyDecoder.decode(ReadAllRequest.self, from: body)
            try caller.requireNamespace()
            let events = try await broker.readAll(from: request.fromPosition, maxCount: request.maxCount)
            return try Reply.json(EventsResponse(events: events.map(WireRecordedEvent.init)))

        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// Checks every part of `transaction` against the caller's rights and scope.
    private static func authorize(_ transaction: BrokerTransaction, _ caller: Caller) throws(ServerError) {
        for entity in transaction.completions.map(\.entity) + transaction.settlements.map(\.token.entity) {
            try caller.require(.listen)
            try caller.requireScope(entity)
        }
        for entity in transaction.sends.map(\.entity) + transaction.cancellations.map(\.entity) {
            try caller.require(.send)
            try caller.requireScope(entity)
        }
        if !transaction.documentWrites.isEmpty || !transaction.inboxEntries.isEmpty || !transaction.appends.isEmpty {
            try caller.require(.send)
            try caller.requireNamespace()
        }
    }
}
