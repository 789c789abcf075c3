import Foundation
import HeraldCore
import PostgresNIO

extension Store {
    /// Applies a ``HeraldCore/BrokerTransaction`` inside the current database transaction; any
    /// failure throws, and the rollback undoes everything the transaction wrote before it.
    func commit(_ transaction: BrokerTransaction) async throws -> (TransactionReceipt, Set<String>) {
        try transaction.validate()
        var wake: Set<String> = []
        for entry in transaction.inboxEntries {
            let rows = try await self.rows(
                """
                INSERT INTO \(unescaped: self.t.inbox) (handler, message_id, handled_at) VALUES (\(entry.handler), \(entry.messageId), \(self.now.wall))
                ON CONFLICT DO NOTHING RETURNING 1
                """
            )
            if rows.isEmpty {
                throw HeraldError(.alreadyProcessed, "handler '\(entry.handler)' already handled message '\(entry.messageId)'")
            }
        }
        for write in transaction.documentWrites {
            try await self.writeDocument(write)
        }
        var streamVersions: [String: Int64] = [:]
        for append in transaction.appends {
            let (version, appendWake) = try await self.append(append)
            streamVersions[append.stream] = version
            wake.formUnion(appendWake)
        }
        var sendReceipts: [SendReceipt] = []
        var index = transaction.sends.startIndex
        while index < transaction.sends.endIndex {
            // Consecutive sends to one entity go as one batch.
            let entity = transaction.sends[index].entity
            var end = index
            while end < transaction.sends.endIndex && transaction.sends[end].entity == entity { end += 1 }
            let outcome = try await self.send(transaction.sends[index..<end].map(\.message), to: entity)
            sendReceipts += outcome.receipts
            wake.formUnion(outcome.wake)
            index = end
        }
        for cancellation in transaction.cancellations {
            if let sequenceNumber = cancellation.sequenceNumber {
                try await self.cancelScheduled([sequenceNumber], in: cancellation.entity)
            } else if let messageId = cancellation.messageId {
                try await self.cancelScheduled(messageId: messageId, in: cancellation.entity)
            }
        }
        for settlement in transaction.settlements {
            if let reason = settlement.deadLetterReason {
                wake.formUnion(try await self.deadLetter(settlement.token, reason: reason, description: settlement.deadLetterDescription).value)
            } else {
                _ = try await self.deferMessage(settlement.token)
            }
        }
        if !transaction.completions.isEmpty {
            _ = try await self.complete(transaction.completions)
        }
        return (TransactionReceipt(sends: sendReceipts, streamVersions: streamVersions), wake)
    }

    private func writeDocument(_ write: BrokerTransaction.DocumentWrite) async throws {
        let rows: [PostgresRow]
        switch (write.data, write.expectedVersion) {
        case (let data?, 0):
            rows = try await self.rows(
                """
                INSERT INTO \(unescaped: self.t.document) (collection, key, version, data) VALUES (\(write.collection), \(write.key), 1, \(data))
                ON CONFLICT DO NOTHING RETURNING 1
                """
            )
        case (let data?, let expected):
            rows = try await self.rows(
                """
                UPDATE \(unescaped: self.t.document) SET version = version + 1, data = \(data)
                WHERE collection = \(write.collection) AND key = \(write.key) AND version = \(expected) RETURNING 1
                """
            )
        case (nil, 0):
            // Deleting what must not exist: nothing to do, unless it exists.
            if try await self.currentVersion(write) == 0 { return }
            rows = []
        case (nil, let expected):
            rows = try await self.rows(
                "DELETE FROM \(unescaped: self.t.document) WHERE collection = \(write.collection) AND key = \(write.key) AND version = \(expected) RETURNING 1"
            )
        }
        if rows.isEmpty {
            let current = try await self.currentVersion(write)
            throw HeraldError(
                .concurrencyConflict,
                "document '\(write.key)' of '\(write.collection)' is at version \(current), not \(write.expectedVersion)"
            )
        }
    }

    private func currentVersion(_ write: BrokerTransaction.DocumentWrite) async throws -> Int64 {
        let rows = try await self.rows(
            "SELECT version FROM \(unescaped: self.t.document) WHERE collection = \(write.collection) AND key = \(write.key)"
        )
        return try rows.first?.decode(Int64.self) ?? 0
    }

    /// Appends events and publishes them; returns the stream's new version.
    private func append(_ append: BrokerTransaction.Append) async throws -> (Int64, Set<String>) {
        // The head's row lock, held until commit, orders appends: positions follow commit order.
        let head = try await self.rows("SELECT last_position FROM \(unescaped: self.t.eventHead) WHERE id = 1 FOR UPDATE")
        var position = try head[0].decode(Int64.self)
        let current = try await self.rows(
            "SELECT max(version) FROM \(unescaped: self.t.event) WHERE stream = \(append.stream)"
        ).first?.decode(Int64?.self) ?? 0
        try append.expectedVersion.check(current: current, stream: append.stream)
        var version = current
        var messages: [Message] = []
        for event in append.events {
            version += 1
            position += 1
            try await self.rows(
                """
                INSERT INTO \(unescaped: self.t.event) (position, stream, version, type, data, correlation_id, causation_id, recorded_at)
                VALUES (\(position), \(append.stream), \(version), \(event.type), \(event.data), \(event.correlationId), \(event.causationId), \(self.now.wall))
                """
            )
            messages.append(event.publishedMessage(stream: append.stream, version: version))
        }
        try await self.rows("UPDATE \(unescaped: self.t.eventHead) SET last_position = \(position) WHERE id = 1")
        var wake: Set<String> = []
        if let topic = append.publishTo, !messages.isEmpty {
            wake = try await self.send(messages, to: topic).wake
        }
        return (version, wake)
    }

    func document(_ key: String, in collection: String) async throws -> VersionedDocument? {
        let rows = try await self.rows(
            "SELECT data, version FROM \(unescaped: self.t.document) WHERE collection = \(collection) AND key = \(key)"
        )
        return try rows.first.map { row in
            let (data, version) = try row.decode((Data, Int64).self)
            return VersionedDocument(data: data, version: version)
        }
    }

    func documents(in collection: String) async throws -> [String: VersionedDocument] {
        var documents: [String: VersionedDocument] = [:]
        for row in try await self.rows("SELECT key, data, version FROM \(unescaped: self.t.document) WHERE collection = \(collection)") {
            let (key, data, version) = try row.decode((String, Data, Int64).self)
            documents[key] = VersionedDocument(data: data, version: version)
        }
        return documents
    }

    func inboxContains(_ entry: InboxEntry) async throws -> Bool {
        !(try await self.rows(
            "SELECT 1 FROM \(unescaped: self.t.inbox) WHERE handler = \(entry.handler) AND message_id = \(entry.messageId)"
        ).isEmpty)
    }

    func readEvents(stream: String?, from: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let rows: [PostgresRow]
        if let stream {
            rows = try await self.rows(
                """
                SELECT position, stream, version, type, data, correlation_id, causation_id, recorded_at
                FROM \(unescaped: self.t.event) WHERE stream = \(stream) AND version >= \(from) ORDER BY version LIMIT \(Int64(maxCount))
                """
            )
        } else {
            rows = try await self.rows(
                """
                SELECT position, stream, version, type, data, correlation_id, causation_id, recorded_at
                FROM \(unescaped: self.t.event) WHERE position >= \(from) ORDER BY position LIMIT \(Int64(maxCount))
                """
            )
        }
        return try rows.map { row in
            let (position, stream, version, type, data, correlationId, causationId, recordedAt) =
                try row.decode((Int64, String, Int64, String, Data, String?, String?, Int64).self)
            return RecordedEvent(
                stream: stream, version: version, position: position, recordedAt: Date(millisecondsSince1970: recordedAt),
                event: EventData(type: type, data: data, correlationId: correlationId, causationId: causationId)
            )
        }
    }
}
