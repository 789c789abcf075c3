import Foundation
import GRDB
import HeraldCore

extension StoreTransaction {
    /// Applies a ``HeraldCore/BrokerTransaction``; any failure throws, and the writer's savepoint
    /// undoes everything the transaction wrote before it.
    func commit(_ transaction: BrokerTransaction) throws -> TransactionReceipt {
        try transaction.validate()
        for entry in transaction.inboxEntries {
            try self.execute(
                "INSERT INTO inbox (handler, message_id, handled_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [entry.handler, entry.messageId, self.nowMilliseconds]
            )
            if self.db.changesCount == 0 {
                throw HeraldError(.alreadyProcessed, "handler '\(entry.handler)' already handled message '\(entry.messageId)'")
            }
        }
        for write in transaction.documentWrites {
            try self.writeDocument(write)
        }
        var streamVersions: [String: Int64] = [:]
        for append in transaction.appends {
            streamVersions[append.stream] = try self.append(append)
        }
        var sendReceipts: [SendReceipt] = []
        var index = transaction.sends.startIndex
        while index < transaction.sends.endIndex {
            // Consecutive sends to one entity go as one batch.
            let entity = transaction.sends[index].entity
            var end = index
            while end < transaction.sends.endIndex && transaction.sends[end].entity == entity { end += 1 }
            sendReceipts += try self.send(transaction.sends[index..<end].map(\.message), to: entity)
            index = end
        }
        for cancellation in transaction.cancellations {
            if let sequenceNumber = cancellation.sequenceNumber {
                try self.cancelScheduled([sequenceNumber], in: cancellation.entity)
            } else if let messageId = cancellation.messageId {
                try self.cancelScheduled(messageId: messageId, in: cancellation.entity)
            }
        }
        for settlement in transaction.settlements {
            if let reason = settlement.deadLetterReason {
                _ = try self.deadLetter(settlement.token, reason: reason, description: settlement.deadLetterDescription)
            } else {
                _ = try self.deferMessage(settlement.token)
            }
        }
        if !transaction.completions.isEmpty {
            _ = try self.complete(transaction.completions)
        }
        return TransactionReceipt(sends: sendReceipts, streamVersions: streamVersions)
    }

    private func writeDocument(_ write: BrokerTransaction.DocumentWrite) throws {
        let current = try Int64.fetchOne(
            self.db.cachedStatement(sql: "SELECT version FROM document WHERE collection = ? AND key = ?"),
            arguments: [write.collection, write.key]
        ) ?? 0
        guard current == write.expectedVersion else {
            throw HeraldError(
                .concurrencyConflict,
                "document '\(write.key)' of '\(write.collection)' is at version \(current), not \(write.expectedVersion)"
            )
        }
        if let data = write.data {
            try self.execute(
                """
                INSERT INTO document (collection, key, version, data) VALUES (?, ?, ?, ?)
                ON CONFLICT DO UPDATE SET version = excluded.version, data = excluded.data
                """,
                [write.collection, write.key, current + 1, data]
            )
        } else {
            try self.execute("DELETE FROM document WHERE collection = ? AND key = ?", [write.collection, write.key])
        }
    }

    /// Appends events and publishes them; returns the stream's new version.
    private func append(_ append: BrokerTransaction.Append) throws -> Int64 {
        let current = try Int64.fetchOne(
            self.db.cachedStatement(sql: "SELECT MAX(version) FROM event WHERE stream = ?"),
            arguments: [append.stream]
        ) ?? 0
        try append.expectedVersion.check(current: current, stream: append.stream)
        var version = current
        var messages: [Message] = []
        for event in append.events {
            version += 1
            try self.execute(
                """
                INSERT INTO event (stream, version, type, data, correlation_id, causation_id, recorded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                [append.stream, version, event.type, event.data, event.correlationId, event.causationId, self.nowMilliseconds]
            )
            messages.append(event.publishedMessage(stream: append.stream, version: version))
        }
        if let topic = append.publishTo, !messages.isEmpty {
            _ = try self.send(messages, to: topic)
        }
        return version
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
                self.db.cachedStatement(sql: """
                    SELECT position, stream, version, type, data, correlation_id, causation_id, recorded_at
                    FROM event WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?
                    """),
                arguments: [stream, from, maxCount]
            )
        } else {
            rows = try Row.fetchAll(
                self.db.cachedStatement(sql: """
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
