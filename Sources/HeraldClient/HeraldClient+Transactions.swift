import Foundation
public import HeraldCore
import HeraldWire

/// Transactions over HTTP: one request carries the whole transaction and the server commits it
/// all or nothing (GUARANTEES.md §4.8), so `HeraldCQRS` handlers run against a remote broker with the
/// same guarantees as against an embedded one.
extension HeraldClient: TransactionalBroker {
    public func commit(_ transaction: BrokerTransaction) async throws -> TransactionReceipt {
        try await MessagingTracing.commit(transaction, tracer: self.tracer) { transaction in
            let response: CommitResponse = try await self.fetch(.commit, body: CommitRequest(transaction))
            return response.receipt
        }
    }

    public func document(_ key: String, in collection: String) async throws -> VersionedDocument? {
        let response: DocumentResponse = try await self.fetch(.getDocument, body: DocumentRequest(collection: collection, key: key))
        return try response.document?.document()
    }

    public func documents(in collection: String) async throws -> [String: VersionedDocument] {
        let response: DocumentsResponse = try await self.fetch(.listDocuments, body: CollectionRequest(collection: collection))
        var documents: [String: VersionedDocument] = [:]
        for (key, document) in response.documents { documents[key] = try document.document() }
        return documents
    }

    public func inboxContains(_ entry: InboxEntry) async throws -> Bool {
        let response: InboxResponse = try await self.fetch(.inboxContains, body: WireInboxEntry(entry))
        return response.contains
    }

    public func readStream(_ stream: String, from version: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        let response: EventsResponse = try await self.fetch(.readStream, body: ReadStreamRequest(stream: stream, fromVersion: version, maxCount: maxCount))
        return try response.events.map { event throws(HeraldError) in try event.recorded() }
    }

    public func readAll(from position: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        let response: EventsResponse = try await self.fetch(.readAll, body: ReadAllRequest(fromPosition: position, maxCount: maxCount))
        return try response.events.map { event throws(HeraldError) in try event.recorded() }
    }
}
