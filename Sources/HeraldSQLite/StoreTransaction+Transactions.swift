import Foundation
import GRDB
import HeraldCore

extension StoreTransaction {
    /// Applies a ``HeraldCore/BrokerTransaction``; any failure throws, and the writer's savepoint
    /// undoes everything the transaction wrote before it.
    func commit(_ transaction: BrokerTransaction) throws -> TransactionReceipt {
        try transaction.validate()
        var receipt = TransactionReceipt(sends: [], streamVersions: [:])
        for step in transaction.steps {
            switch step {
            case .recordInbox(let entry): try self.recordInbox(entry)
            case .writeDocument(let write): try self.writeDocument(write)
            case .append(let append): receipt.streamVersions[append.stream] = try self.append(append)
            case .send(let messages, let entity): receipt.sends += try self.send(messages, to: entity)
            case .cancelScheduled(let sequenceNumber, let entity): try self.cancelScheduled([sequenceNumber], in: entity)
            case .cancelScheduledMessage(let messageId, let entity): try self.cancelScheduled(messageId: messageId, in: entity)
            case .deferMessage(let token): try self.deferMessage(token)
            case .deadLetter(let token, let reason, let description): try self.deadLetter(token, reason: reason, description: description)
            case .complete(let tokens): try self.complete(tokens)
            }
        }
        return receipt
    }

    private func recordInbox(_ entry: InboxEntry) throws {
        var insert = try BoundStatement(self.db, sql: "INSERT INTO inbox (handler, message_id, handled_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        insert.bind(entry.handler)
        insert.bind(entry.messageId)
        insert.bind(self.nowMilliseconds)
        try insert.execute()
        if self.db.changesCount == 0 { throw entry.alreadyProcessed }
    }

    /// Writes (or deletes) a document if it is at the expected version. The version is checked by
    /// the write itself (one statement); the current version is read only to explain a conflict.
    private func writeDocument(_ write: BrokerTransaction.DocumentWrite) throws {
        var statement: BoundStatement
        if let data = write.data, write.expectedVersion == 0 {
            statement = try BoundStatement(
                self.db, sql: "INSERT INTO document (collection, key, version, data) VALUES (?, ?, 1, ?) ON CONFLICT DO NOTHING")
            statement.bind(write.collection)
            statement.bind(write.key)
            statement.bind(data)
        } else if let data = write.data {
            statement = try BoundStatement(
                self.db, sql: "UPDATE document SET version = version + 1, data = ? WHERE collection = ? AND key = ? AND version = ?")
            statement.bind(data)
            statement.bind(write.collection)
            statement.bind(write.key)
            statement.bind(write.expectedVersion)
        } else {
            statement = try BoundStatement(self.db, sql: "DELETE FROM document WHERE collection = ? AND key = ? AND version = ?")
            statement.bind(write.collection)
            statement.bind(write.key)
            statement.bind(write.expectedVersion)
        }
        try statement.execute()
        guard self.db.changesCount == 0 else { return }
        let current =
            try Int64.fetchOne(
                self.db.cachedStatement(sql: "SELECT version FROM document WHERE collection = ? AND key = ?"),
                arguments: [write.collection, write.key]
            ) ?? 0
        // Deleting a document that does not exist, at expected version 0, changes nothing and is no conflict.
        guard current == write.expectedVersion else { throw write.conflict(current: current) }
    }

    /// Appends events and publishes them; returns the stream's new version.
    private func append(_ append: BrokerTransaction.Append) throws -> Int64 {
        let current =
            try Int64.fetchOne(
                self.db.cachedStatement(sql: "SELECT MAX(version) FROM event WHERE stream = ?"),
                arguments: [append.stream]
            ) ?? 0
        let events = try append.numbered(after: current)
        for (version, event) in events {
            try self.execute(
                """
                INSERT INTO event (stream, version, type, data, correlation_id, causation_id, recorded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                [append.stream, version, event.type, event.data, event.correlationId, event.causationId, self.nowMilliseconds]
            )
        }
        if let publication = append.publication(after: current) {
            _ = try self.send(publication.messages, to: publication.topic)
        }
        return current + Int64(events.count)
    }

    func document(_ key: String, in collection: String) throws -> VersionedDocument? {
        let row = try Row.fetchOne(
            self.db.cachedStatement(sql: "SELECT data, version FROM document WHERE collection = ? AND key = ?"),
            arguments: [collection, key]
        )
        return row.map { VersionedDocument(data: $0[0], version: $0[1]) }
    }

    func documents(in collection: String) throws -> [String: VersionedDocument] {
        let rows = try Row.fetchAll(
            self.db.cachedStatement(sql: "SELECT key, data, version FROM document WHERE collection = ?"),
            arguments: [collection]
        )
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0], VersionedDocument(data: $0[1], version: $0[2])) })
    }

    func inboxContains(_ entry: InboxEntry) throws -> Bool {
        try Bool.fetchOne(
            self.db.cachedStatement(sql: "SELECT 1 FROM inbox WHERE handler = ? AND message_id = ?"),
            arguments: [entry.handler, entry.messageId]
        ) ?? false
    }

    func readEvents(stream: String?, from: Int64, maxCount: Int) throws -> [RecordedEvent] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let rows: [Row]
        if let stream {
            rows = try Row.fetchAll(
                self.db.cachedStatement(
                    sql: """
                        SELECT position, stream, version, type, data, correlation_id, causation_id, recorded_at
                        FROM event WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?
                        """),
                arguments: [stream, from, maxCount]
            )
        } else {
            rows = try Row.fetchAll(
                self.db.cachedStatement(
                    sql: """
                        SELECT position, stream, version, type, data, correlation_id, causation_id, recorded_at
                        FROM event WHERE position >= ? ORDER BY position LIMIT ?
                        """),
                arguments: [from, maxCount]
            )
        }
        return rows.map { row in
            RecordedEvent(
                stream: row[1], version: row[2], position: row[0], recordedAt: Date(millisecondsSince1970: row[7]),
                event: EventData(type: row[3], data: row[4], correlationId: row[5], causationId: row[6])
            )
        }
    }
}
