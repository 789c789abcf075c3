import Foundation
import HeraldCore
import PostgresNIO

/// What a send resolved before it writes: its target, and whether one statement does it.
struct SendPlan: Sendable {
    let path: EntityPath
    let messages: [Message]
    let target: EntityRecord
    /// A queue without a duplicate-detection window and messages without sender sequences: one
    /// statement assigns the sequence numbers and inserts, committed by itself.
    let isSimple: Bool
}

/// What a send did.
struct SendOutcome: Sendable {
    var receipts: [SendReceipt]
    /// The wait keys of entities that got visible messages.
    var wake: Set<String>
}

extension Store {
    /// How long a (senderId, senderSequence) pair is remembered when the entity has no (or a
    /// shorter) duplicate-detection window: a day.
    static let senderPairRetention: Int64 = 86_400_000

    static let insertColumns = """
        entity_id, seq, state, visible_at, expires_at, session_id, enqueued_at, message_id, content_type, subject, \
        correlation_id, causation_id, reply_to, ttl_ms, scheduled_at, properties, sender_id, sender_seq, body
        """

    /// The plan of a send to an entity the cache knows, made without the database; `nil` when the
    /// cache does not know it.
    static func planSend(_ messages: [Message], to path: EntityPath, cache: EntityCache) throws -> SendPlan? {
        guard path.kind != .subscription, !path.isDeadLetter, let target = cache.entity(path.entityKey), target.path == path else { return nil }
        return try Self.plan(messages, to: path, target: target)
    }

    func planSend(_ messages: [Message], to path: EntityPath) async throws -> SendPlan {
        guard messages.count <= HeraldLimits.maxBatchCount else {
            throw HeraldError(.batchTooLarge, "a batch holds at most \(HeraldLimits.maxBatchCount) messages; got \(messages.count)")
        }
        return try Self.plan(messages, to: path, target: try await self.sendTarget(path))
    }

    private static func plan(_ messages: [Message], to path: EntityPath, target: EntityRecord) throws -> SendPlan {
        guard messages.count <= HeraldLimits.maxBatchCount else {
            throw HeraldError(.batchTooLarge, "a batch holds at most \(HeraldLimits.maxBatchCount) messages; got \(messages.count)")
        }
        let isSimple = target.path.kind == .queue && target.options.duplicateDetectionWindow == nil && messages.allSatisfy { $0.senderId == nil }
        if isSimple {
            for message in messages { try message.validate(against: target.options) }
        }
        return SendPlan(path: path, messages: messages, target: target, isSimple: isSimple)
    }

    /// Sends simple plans, all to one queue, with one statement: the counter update and the
    /// inserts. Each plan's messages get consecutive sequence numbers, in plan order.
    func sendSimple(_ plans: [SendPlan]) async throws -> SendOutcome {
        let first = plans[0]
        var target = first.target
        let messages = plans.flatMap(\.messages)
        for attempt in 0..<2 {
            if attempt == 1 {
                // The cached entity was deleted (and maybe recreated) by another process.
                target = try await self.sendTarget(first.path, fresh: true)
                guard target.path.kind == .queue, target.options.duplicateDetectionWindow == nil else {
                    throw HeraldError(.entityNotFound, "'\(first.path)' changed while sending; send again")
                }
                for message in messages { try message.validate(against: target.options) }
            }
            var bindings = PostgresBindings(capacity: messages.count * 17 + 3)
            bindings.append(target.id)
            bindings.append(Int64(messages.count))
            let (values, visible) = try self.valuesRows(messages, defaultTimeToLive: target.options.defaultTimeToLive, bindings: &bindings)
            let sql = """
                WITH s AS (UPDATE \(self.t.entity) SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq - $2 AS base)
                INSERT INTO \(self.t.message) (\(Self.insertColumns))
                SELECT $1, s.base + v.o, v.state, v.visible_at, v.expires_at, v.session_id, v.enqueued_at, v.message_id, v.content_type,
                    v.subject, v.correlation_id, v.causation_id, v.reply_to, v.ttl_ms, v.scheduled_at, v.properties, v.sender_id,
                    v.sender_seq, v.body
                FROM s, (VALUES \(values)) AS v(\(Self.valuesColumns))
                RETURNING seq
                """
            let rows = try await self.rows(PostgresQuery(unsafeSQL: sql, binds: bindings))
            if rows.isEmpty { continue }
            let numbers = try rows.map { try $0.decode(Int64.self) }.sorted()
            return SendOutcome(
                receipts: numbers.map { SendReceipt(sequenceNumber: $0, isDuplicate: false) },
                wake: visible ? [target.waitKey(deadLetter: false)] : []
            )
        }
        throw HeraldError(.entityNotFound, "no queue or topic named '\(first.path.name)'")
    }

    static let valuesColumns = """
        o, state, visible_at, expires_at, session_id, enqueued_at, message_id, content_type, subject, correlation_id, \
        causation_id, reply_to, ttl_ms, scheduled_at, properties, sender_id, sender_seq, body
        """

    /// `(1, $n::int8, …), (2, …)`: one row per message, its ordinal first, binding its fields;
    /// also whether one of them is visible at once.
    func valuesRows(_ messages: [Message], defaultTimeToLive: Duration?, bindings: inout PostgresBindings) throws -> (String, Bool) {
        var rows: [String] = []
        rows.reserveCapacity(messages.count)
        var anyVisible = false
        for (index, message) in messages.enumerated() {
            let scheduledAt = message.scheduledEnqueueTime?.millisecondsSince1970
            let isScheduled = (scheduledAt ?? 0) > self.now.wall
            let enqueuedAt = isScheduled ? scheduledAt! : self.now.wall
            // 0: visible now. Only scheduled and delayed messages compare against the wall clock,
            // so a wall-clock jump back does not hide the rest.
            let visibleAt: Int64 = isScheduled ? enqueuedAt : 0
            anyVisible = anyVisible || !isScheduled
            let timeToLive = message.timeToLive ?? defaultTimeToLive
            let properties = message.applicationProperties.isEmpty ? nil : try PropertyCodec.encode(message.applicationProperties)
            var placeholders: [String] = ["\(index + 1)::int8"]
            func bind<T: PostgresThrowingDynamicTypeEncodable>(_ value: T?, _ type: String) throws {
                try bindings.append(value)
                placeholders.append("$\(bindings.count)::\(type)")
            }
            try bind(Int64(isScheduled ? 2 : 0), "int8")
            try bind(visibleAt, "int8")
            try bind(timeToLive.map { enqueuedAt + $0.milliseconds }, "int8")
            try bind(message.sessionId, "text")
            try bind(enqueuedAt, "int8")
            try bind(message.messageId, "text")
            try bind(message.contentType, "text")
            try bind(message.subject, "text")
            try bind(message.correlationId, "text")
            try bind(message.causationId, "text")
            try bind(message.replyTo, "text")
            try bind(message.timeToLive?.milliseconds, "int8")
            try bind(scheduledAt, "int8")
            try bind(properties, "bytea")
            try bind(message.senderId, "text")
            try bind(message.senderSequence, "int8")
            try bind(message.body, "bytea")
            rows.append("(" + placeholders.joined(separator: ", ") + ")")
        }
        return (rows.joined(separator: ", "), anyVisible)
    }

    /// Inserts `messages` into `entity` with sequence numbers `base + 1`, `base + 2`…
    private func insert(_ messages: [Message], into entity: EntityRecord, base: Int64, defaultTimeToLive: Duration?) async throws -> Bool {
        var bindings = PostgresBindings(capacity: messages.count * 17 + 2)
        bindings.append(entity.id)
        bindings.append(base)
        let (values, visible) = try self.valuesRows(messages, defaultTimeToLive: defaultTimeToLive, bindings: &bindings)
        let sql = """
            INSERT INTO \(self.t.message) (\(Self.insertColumns))
            SELECT $1, $2 + v.o, v.state, v.visible_at, v.expires_at, v.session_id, v.enqueued_at, v.message_id, v.content_type,
                v.subject, v.correlation_id, v.causation_id, v.reply_to, v.ttl_ms, v.scheduled_at, v.properties, v.sender_id,
                v.sender_seq, v.body
            FROM (VALUES \(values)) AS v(\(Self.valuesColumns))
            """
        try await self.rows(PostgresQuery(unsafeSQL: sql, binds: bindings))
        return visible
    }

    /// The subscriptions of a topic whose row (locked by the caller) is at `generation`.
    func subscriptions(of topic: EntityRecord, generation: Int64) async throws -> [EntityRecord] {
        if let cached = self.broker.cache.subscriptions(of: topic.id, generation: generation) { return cached }
        let records = try await self.rows(
            "SELECT \(unescaped: Self.entityColumns) FROM \(unescaped: self.t.entity) WHERE topic_id = \(topic.id) ORDER BY id"
        ).map(Self.decodeEntity)
        self.broker.cache.storeSubscriptions(records, of: topic.id, generation: generation)
        return records
    }

    /// Sends in the current transaction: locks the target's row (so sends to it commit in
    /// sequence-number order), checks duplicates, fans out to a topic's subscriptions.
    func send(_ messages: [Message], to path: EntityPath) async throws -> SendOutcome {
        guard messages.count <= HeraldLimits.maxBatchCount else {
            throw HeraldError(.batchTooLarge, "a batch holds at most \(HeraldLimits.maxBatchCount) messages; got \(messages.count)")
        }
        var target = try await self.sendTarget(path)
        var locked = try await self.rows("SELECT last_seq, generation FROM \(unescaped: self.t.entity) WHERE id = \(target.id) FOR UPDATE")
        if locked.isEmpty {
            target = try await self.sendTarget(path, fresh: true)
            locked = try await self.rows("SELECT last_seq, generation FROM \(unescaped: self.t.entity) WHERE id = \(target.id) FOR UPDATE")
            guard !locked.isEmpty else { throw HeraldError(.entityNotFound, "no queue or topic named '\(path.name)'") }
        }
        let (lastSequence, generation) = try locked[0].decode((Int64, Int64).self)
        let subscriptions = target.path.kind == .topic ? try await self.subscriptions(of: target, generation: generation) : []
        // Check everything before writing anything: a batch is all or nothing.
        for message in messages {
            try message.validate(against: target.options)
            for subscription in subscriptions where subscription.options.requiresSession && message.sessionId == nil {
                if subscription.filter.matches(message) {
                    throw HeraldError(.sessionRequired, "subscription '\(subscription.path.name)' requires sessions: set sessionId")
                }
            }
        }
        let window = target.options.duplicateDetectionWindow?.milliseconds
        try await self.pruneIfDue()

        // What the store remembers: message ids in the window, senders, older sender pairs.
        var recentIds: [String: Int64] = [:]
        if window != nil {
            let ids = Array(Set(messages.map(\.messageId)))
            for row in try await self.rows(
                """
                SELECT key, seq FROM \(unescaped: self.t.dedup) WHERE entity_id = \(target.id) AND kind = 0
                AND key = ANY(\(ids)) AND expires_at > \(self.now.wall)
                """
            ) {
                let (key, seq) = try row.decode((String, Int64).self)
                recentIds[key] = seq
            }
        }
        // Sender sequences are deduplicated by exact pair, so a reordered, lower number is accepted.
        var pairs: [String: Int64] = [:]
        let pairKeys = Array(Set(messages.compactMap { message in
            message.senderId.flatMap { id in message.senderSequence.map { Self.senderKey(id, $0) } }
        }))
        if !pairKeys.isEmpty {
            for row in try await self.rows(
                """
                SELECT key, seq FROM \(unescaped: self.t.dedup) WHERE entity_id = \(target.id) AND kind = 1
                AND key = ANY(\(pairKeys)) AND expires_at > \(self.now.wall)
                """
            ) {
                let (key, seq) = try row.decode((String, Int64).self)
                pairs[key] = seq
            }
        }

        var receipts: [SendReceipt] = []
        var accepted: [Message] = []
        var sequence = lastSequence
        var newIds: [(String, Int64)] = []
        var newPairs: [(String, Int64)] = []
        for message in messages {
            if window != nil, let original = recentIds[message.messageId] {
                receipts.append(SendReceipt(sequenceNumber: original, isDuplicate: true))
                continue
            }
            if let senderId = message.senderId, let senderSequence = message.senderSequence,
                let original = pairs[Self.senderKey(senderId, senderSequence)]
            {
                receipts.append(SendReceipt(sequenceNumber: original, isDuplicate: true))
                continue
            }
            sequence += 1
            accepted.append(message)
            receipts.append(SendReceipt(sequenceNumber: sequence, isDuplicate: false))
            if window != nil {
                recentIds[message.messageId] = sequence
                newIds.append((message.messageId, sequence))
            }
            if let senderId = message.senderId, let senderSequence = message.senderSequence {
                pairs[Self.senderKey(senderId, senderSequence)] = sequence
                newPairs.append((Self.senderKey(senderId, senderSequence), sequence))
            }
        }
        var wake: Set<String> = []
        guard !accepted.isEmpty else { return SendOutcome(receipts: receipts, wake: wake) }

        if target.path.kind == .queue {
            if try await self.insert(accepted, into: target, base: lastSequence, defaultTimeToLive: target.options.defaultTimeToLive) {
                wake.insert(target.waitKey(deadLetter: false))
            }
        } else {
            for subscription in subscriptions {
                let matching = accepted.filter { subscription.filter.matches($0) }
                if matching.isEmpty { continue }
                let bumped = try await self.rows(
                    """
                    UPDATE \(unescaped: self.t.entity) SET last_seq = last_seq + \(Int64(matching.count)) WHERE id = \(subscription.id)
                    RETURNING last_seq
                    """
                )
                guard let row = bumped.first else { continue }  // deleted meanwhile: it gets nothing
                let base = try row.decode(Int64.self) - Int64(matching.count)
                if try await self.insert(
                    matching, into: subscription, base: base,
                    defaultTimeToLive: target.options.defaultTimeToLive ?? subscription.options.defaultTimeToLive
                ) {
                    wake.insert(subscription.waitKey(deadLetter: false))
                }
            }
        }
        try await self.rows("UPDATE \(unescaped: self.t.entity) SET last_seq = \(sequence) WHERE id = \(target.id)")
        if let window, !newIds.isEmpty {
            try await self.rows(
                """
                INSERT INTO \(unescaped: self.t.dedup) (entity_id, kind, key, seq, expires_at)
                SELECT \(target.id), 0, k, s, \(self.now.wall + window) FROM unnest(\(newIds.map(\.0))::text[], \(newIds.map(\.1))::int8[]) AS u(k, s)
                ON CONFLICT (entity_id, kind, key) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at
                """
            )
        }
        if !newPairs.isEmpty {
            try await self.rows(
                """
                INSERT INTO \(unescaped: self.t.dedup) (entity_id, kind, key, seq, expires_at)
                SELECT \(target.id), 1, k, s, \(self.now.wall + max(window ?? 0, Self.senderPairRetention))
                FROM unnest(\(newPairs.map(\.0))::text[], \(newPairs.map(\.1))::int8[]) AS u(k, s)
                ON CONFLICT (entity_id, kind, key) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at
                """
            )
        }
        return SendOutcome(receipts: receipts, wake: wake)
    }

    static func senderKey(_ senderId: String, _ sequence: Int64) -> String {
        "\(sequence):\(senderId)"
    }

    func cancelScheduled(_ sequenceNumbers: [Int64], in path: EntityPath) async throws {
        let target = try await self.sendTarget(path)
        guard target.path.kind == .queue else {
            throw HeraldError(.invalidArgument, "cancel scheduled messages of a queue; a topic's copies live in its subscriptions")
        }
        if sequenceNumbers.isEmpty { return }
        // Once its scheduled time has come a message is active, whether or not a receive or a
        // count has swept it yet: only the time decides.
        let rows = try await self.rows(
            """
            DELETE FROM \(unescaped: self.t.message) WHERE entity_id = \(target.id) AND seq = ANY(\(sequenceNumbers))
            AND state = 2 AND NOT dlq AND visible_at > \(self.now.wall) RETURNING seq
            """
        )
        let cancelled = Set(try rows.map { try $0.decode(Int64.self) })
        if let missing = sequenceNumbers.first(where: { !cancelled.contains($0) }) {
            let exists = try await self.rows("SELECT 1 FROM \(unescaped: self.t.message) WHERE entity_id = \(target.id) AND seq = \(missing)")
            let lastSequence = try await self.rows("SELECT last_seq FROM \(unescaped: self.t.entity) WHERE id = \(target.id)").first?.decode(Int64.self) ?? 0
            let found: HeraldError.Uncancellable = !exists.isEmpty ? .notScheduled : (missing >= 1 && missing <= lastSequence ? .gone : .neverAssigned)
            throw HeraldError.cannotCancel(missing, in: path, found)
        }
        if let twice = sequenceNumbers.enumerated().first(where: { sequenceNumbers[..<$0.offset].contains($0.element) })?.element {
            // Named twice: the second cancel finds it gone.
            throw HeraldError.cannotCancel(twice, in: path, .gone)
        }
    }
}

extension Store {
    /// Cancels, inside a transaction, the scheduled message with `messageId` if it is still scheduled.
    func cancelScheduled(messageId: String, in path: EntityPath) async throws {
        let target = try await self.sendTarget(path)
        try await self.rows(
            """
            DELETE FROM \(unescaped: self.t.message) WHERE entity_id = \(target.id) AND state = 2 AND NOT dlq
            AND visible_at > \(self.now.wall) AND message_id = \(messageId)
            """
        )
    }
}
