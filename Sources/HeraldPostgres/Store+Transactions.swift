import Foundation
import HeraldCore
import PostgresNIO

extension Store {
    /// Applies a ``/HeraldCore/BrokerTransaction`` inside the current database transaction; any
    /// failure throws, and the rollback undoes everything the transaction wrote before it.
    func commit(_ transaction: BrokerTransaction) async throws -> (TransactionReceipt, Set<String>) {
        try transaction.validate()
        var receipt = TransactionReceipt(sends: [], streamVersions: [:])
        var wake: Set<String> = []
        let steps = transaction.steps
        for (index, step) in steps.enumerated() {
            switch step {
            case .recordInbox(let entry): try await self.recordInbox(entry)
            case .writeDocument(let write): try await self.writeDocument(write)
            case .append(let append):
                let (version, appendWake) = try await self.append(append)
                receipt.streamVersions[append.stream] = version
                wake.formUnion(appendWake)
            case .send(let messages, let entity):
                let outcome = try await self.send(messages, to: entity, endsTransaction: index == steps.count - 1)
                receipt.sends += outcome.receipts
                wake.formUnion(outcome.wake)
            case .cancelScheduled(let sequenceNumber, let entity): try await self.cancelScheduled([sequenceNumber], in: entity)
            case .cancelScheduledMessage(let messageId, let entity): try await self.cancelScheduled(messageId: messageId, in: entity)
            case .deferMessage(let token): _ = try await self.deferMessage(token)
            case .deadLetter(let token, let reason, let description):
                wake.formUnion(try await self.deadLetter(token, reason: reason, description: description).value)
            case .complete(let tokens): _ = try await self.complete(tokens)
            }
        }
        return (receipt, wake)
    }

    private func recordInbox(_ entry: InboxEntry) async throws {
        let rows = try await self.rows(
            """
            INSERT INTO \(unescaped: self.tables.inbox) (handler, message_id, handled_at) VALUES (\(entry.handler), \(entry.messageId), \(self.now.wall))
            ON CONFLICT DO NOTHING RETURNING 1
            """
        )
        if rows.isEmpty { throw entry.alreadyProcessed }
    }

    private func writeDocument(_ write: BrokerTransaction.DocumentWrite) async throws {
        let rows: [PostgresRow]
        switch (write.data, write.expectedVersion) {
        case (let data?, 0):
            rows = try await self.rows(
                """
                INSERT INTO \(unescaped: self.tables.document) (collection, key, version, data) VALUES (\(write.collection), \(write.key), 1, \(data))
                ON CONFLICT DO NOTHING RETURNING 1
                """
            )
        case (let data?, let expected):
            rows = try await self.rows(
                """
                UPDATE \(unescaped: self.tables.document) SET version = version + 1, data = \(data)
                WHERE collection = \(write.collection) AND key = \(write.key) AND version = \(expected) RETURNING 1
                """
            )
        case (nil, 0):
            // Deleting what must not exist: nothing to do, unless it exists.
            if try await self.currentVersion(write) == 0 { return }
            rows = []
        case (nil, let expected):
            rows = try await self.rows(
                "DELETE FROM \(unescaped: self.tables.document) WHERE collection = \(write.collection) AND key = \(write.key) AND version = \(expected) RETURNING 1"
            )
        }
        if rows.isEmpty {
            throw write.conflict(current: try await self.currentVersion(write))
        }
    }

    private func currentVersion(_ write: BrokerTransaction.DocumentWrite) async throws -> Int64 {
        let rows = try await self.rows(
            "SELECT version FROM \(unescaped: self.tables.document) WHERE collection = \(write.collection) AND key = \(write.key)"
        )
        return try rows.first?.decode(Int64.self) ?? 0
    }

    /// Appends events and publishes them; returns the stream's new version.
    private func append(_ append: BrokerTransaction.Append) async throws -> (Int64, Set<String>) {
        // The head's row lock, held until commit, orders appends: positions follow commit order.
        let head = try await self.rows("SELECT last_position FROM \(unescaped: self.tables.eventHead) WHERE id = 1 FOR UPDATE")
        var position = try head[0].decode(Int64.self)
        let current =
            try await self.rows(
                "SELECT max(version) FROM \(unescaped: self.tables.event) WHERE stream = \(append.stream)"
            ).first?.decode(Int64?.self) ?? 0
        let events = try append.numbered(after: current)
        for (version, event) in events {
            position += 1
            try await self.rows(
                """
                INSERT INTO \(unescaped: self.tables.event) (position, stream, version, type, data, correlation_id, causation_id, recorded_at)
                VALUES (\(position), \(append.stream), \(version), \(event.type), \(event.data), \(event.correlationId), \(event.causationId), \(self.now.wall))
                """
            )
        }
        try await self.rows("UPDATE \(unescaped: self.tables.eventHead) SET last_position = \(position) WHERE id = 1")
        var wake: Set<String> = []
        if let publication = append.publication(after: current) {
            wake = try await self.send(publication.messages, to: publication.topic).wake
        }
        return (current + Int64(events.count), wake)
    }

    func document(_ key: String, in collection: String) async throws -> VersionedDocument? {
        let rows = try await self.rows(
            "SELECT data, version FROM \(unescaped: self.tables.document) WHERE collection = \(collection) AND key = \(key)"
        )
        return try rows.first.map { row in
            let (data, version) = try row.decode((Data, Int64).self)
            return VersionedDocument(data: data, version: version)
        }
    }

    func documents(in collection: String) async throws -> [String: VersionedDocument] {
        var documents: [String: VersionedDocument] = [:]
        for row in try await self.rows("SELECT key, data, version FROM \(unescaped: self.tables.document) WHERE collection = \(collection)") {
            let (key, data, version) = try row.decode((String, Data, Int64).self)
            documents[key] = VersionedDocument(data: data, version: version)
        }
        return documents
    }

    func inboxContains(_ entry: InboxEntry) async throws -> Bool {
        !(try await self.rows(
            "SELECT 1 FROM \(unescaped: self.tables.inbox) WHERE handler = \(entry.handler) AND message_id = \(entry.messageId)"
        ).isEmpty)
    }

    /// Which of `entries` the inbox holds, with one statement.
    func inboxEntries(among entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        let rows = try await self.rows(
            """
            SELECT i.handler, i.message_id FROM \(unescaped: self.tables.inbox) i
            JOIN unnest(\(entries.map(\.handler))::text[], \(entries.map(\.messageId))::text[]) AS e(handler, message_id)
            ON i.handler = e.handler AND i.message_id = e.message_id
            """
        )
        return Set(
            try rows.map { row in
                let (handler, messageId) = try row.decode((String, String).self)
                return InboxEntry(handler: handler, messageId: messageId)
            })
    }

    func readEvents(stream: String?, from: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let rows: [PostgresRow]
        if let stream {
            rows = try await self.rows(
                """
                SELECT position, stream, version, type, data, correlation_id, causation_id, recorded_at
                FROM \(unescaped: self.tables.event) WHERE stream = \(stream) AND version >= \(from) ORDER BY version LIMIT \(Int64(maxCount))
                """
            )
        } else {
            rows = try await self.rows(
                """
                SELECT position, stream, version, type, data, correlation_id, causation_id, recorded_at
                FROM \(unescaped: self.tables.event) WHERE position >= \(from) ORDER BY position LIMIT \(Int64(maxCount))
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
