import Foundation
import HeraldCore
import PostgresNIO

/// What a send resolved before it writes: its target, and whether one statement does it.
struct SendPlan: Sendable {
    let path: EntityPath
    let messages: [Message]
    let target: CachedEntity
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
    static let insertColumns = """
        entity_id, seq, state, visible_at, expires_at, session_id, enqueued_at, message_id, content_type, subject, \
        correlation_id, causation_id, reply_to, ttl_ms, scheduled_at, properties, sender_id, sender_seq, body, to_address, \
        reply_to_session_id, annotations
        """

    /// The plan of a send to an entity the cache knows, made without the database; `nil` when the
    /// cache does not know it. Every send plans here first, so the batch size is checked here,
    /// once (a transaction's sends are bounded by ``/HeraldCore/BrokerTransaction/validate()``).
    static func planSend(_ messages: [Message], to path: EntityPath, cache: EntityCache) throws -> SendPlan? {
        try HeraldLimits.checkBatchCount(messages.count)
        guard path.kind != .subscription, !path.isDeadLetter, let target = cache.entity(path.entityKey), target.path == path else { return nil }
        return try Self.plan(messages, to: path, target: target)
    }

    /// The plan of a send whose target the cache did not know (``planSend(_:to:cache:)`` answered `nil`).
    func planSend(_ messages: [Message], to path: EntityPath) async throws -> SendPlan {
        try Self.plan(messages, to: path, target: try await self.sendTarget(path))
    }

    private static func plan(_ messages: [Message], to path: EntityPath, target: CachedEntity) throws -> SendPlan {
        // The one-statement send binds the common columns only: no sender pair, no Service Bus addressing.
        let isSimple =
            target.path.kind == .queue && target.options.duplicateDetectionWindow == nil
            && messages.allSatisfy { $0.senderId == nil && $0.to == nil && $0.replyToSessionId == nil && $0.annotations.isEmpty }
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
            var bindings = PostgresBindings(capacity: 2 + Self.sendArrayColumns.count)
            bindings.append(target.id)
            bindings.append(Int64(messages.count))
            let layout: SendColumnsLayout = messages.count == 1 ? .values : .arrays
            let visible = try self.appendSendColumns(messages, as: layout, defaultTimeToLive: target.options.defaultTimeToLive, to: &bindings)
            let statement = layout == .values ? self.broker.statements.sendOne : self.broker.statements.send
            guard let row = try await self.rows(statement, bindings).first else { continue }
            let base = try row.decode(Int64.self)
            let numbers = (1...Int64(messages.count)).map { base + $0 }
            return SendOutcome(
                receipts: numbers.map { SendReceipt(sequenceNumber: $0, isDuplicate: false) },
                wake: visible ? [target.waitKey(deadLetter: false)] : []
            )
        }
        throw HeraldError(.entityNotFound, "no queue or topic named '\(first.path.name)'")
    }

    /// The message columns a simple send binds, one array each, in binding order from `$3`
    /// (``PreparedStatements/send``); sender and addressing columns stay NULL.
    static let sendArrayColumns: [(offset: Int, name: String, type: String)] = [
        ("state", "int8"), ("visible_at", "int8"), ("expires_at", "int8"), ("session_id", "text"), ("enqueued_at", "int8"),
        ("message_id", "text"), ("content_type", "text"), ("subject", "text"), ("correlation_id", "text"), ("causation_id", "text"),
        ("reply_to", "text"), ("ttl_ms", "int8"), ("scheduled_at", "int8"), ("properties", "bytea"), ("body", "bytea"),
    ].enumerated().map { ($0.offset, $0.element.0, $0.element.1) }

    /// How a send binds its columns: one array per column, or for one message one value each.
    enum SendColumnsLayout {
        /// For ``PreparedStatements/send``.
        case arrays
        /// For ``PreparedStatements/sendOne``: `messages` holds one message.
        case values
    }

    /// Binds the columns of `messages` as ``sendArrayColumns`` lists them, laid out as `layout`
    /// says; also whether one of them is visible at once.
    func appendSendColumns(
        _ messages: [Message], as layout: SendColumnsLayout, defaultTimeToLive: Duration?, to bindings: inout PostgresBindings
    ) throws -> Bool {
        assert(layout == .arrays || messages.count == 1, "one value per column binds one message")
        let enqueued = messages.map { EnqueuedMessage($0, now: self.now.wall, defaultTimeToLive: defaultTimeToLive) }
        func bind<Element: NullableArrayElement>(_ values: [Element?]) throws {
            switch layout {
            case .arrays: try bindings.append(NullableArray(elements: values))
            case .values: try bindings.append(values[0])
            }
        }
        let properties = try messages.map { $0.applicationProperties.isEmpty ? nil : try PropertyCodec.encode($0.applicationProperties) }
        try bind(enqueued.map { $0.state.code })
        try bind(enqueued.map(\.visibleAt))
        try bind(enqueued.map(\.expiresAt))
        try bind(messages.map(\.sessionId))
        try bind(enqueued.map(\.enqueuedAt))
        try bind(messages.map(\.messageId))
        try bind(messages.map(\.contentType))
        try bind(messages.map(\.subject))
        try bind(messages.map(\.correlationId))
        try bind(messages.map(\.causationId))
        try bind(messages.map(\.replyTo))
        try bind(messages.map { $0.timeToLive?.milliseconds })
        try bind(enqueued.map(\.scheduledAt))
        try bind(properties)
        try bind(messages.map(\.body))
        return enqueued.contains { $0.isVisibleNow }
    }

    static let valuesColumns = """
        o, state, visible_at, expires_at, session_id, enqueued_at, message_id, content_type, subject, correlation_id, \
        causation_id, reply_to, ttl_ms, scheduled_at, properties, sender_id, sender_seq, body, to_address, \
        reply_to_session_id, annotations
        """

    /// The message columns of a row `v` of ``valuesColumns`` (all but its ordinal), in the order
    /// of ``insertColumns`` after the entity and the sequence number.
    static let valuesSelection = Self.valuesColumns.split(separator: ",").dropFirst()
        .map { "v." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")

    /// `(1, $n::int8, …), (2, …)`: one row per message, its ordinal first, binding its fields;
    /// also whether one of them is visible at once.
    func valuesRows(_ messages: [Message], defaultTimeToLive: Duration?, bindings: inout PostgresBindings) throws -> (String, Bool) {
        var rows: [String] = []
        rows.reserveCapacity(messages.count)
        var anyVisible = false
        for (index, message) in messages.enumerated() {
            let enqueued = EnqueuedMessage(message, now: self.now.wall, defaultTimeToLive: defaultTimeToLive)
            anyVisible = anyVisible || enqueued.isVisibleNow
            let properties = message.applicationProperties.isEmpty ? nil : try PropertyCodec.encode(message.applicationProperties)
            let annotations = message.annotations.isEmpty ? nil : try PropertyCodec.encode(message.annotations)
            var placeholders: [String] = ["\(index + 1)::int8"]
            func bind<T: PostgresThrowingDynamicTypeEncodable>(_ value: T?, _ type: String) throws {
                try bindings.append(value)
                placeholders.append("$\(bindings.count)::\(type)")
            }
            try bind(enqueued.state.code, "int8")
            try bind(enqueued.visibleAt, "int8")
            try bind(enqueued.expiresAt, "int8")
            try bind(message.sessionId, "text")
            try bind(enqueued.enqueuedAt, "int8")
            try bind(message.messageId, "text")
            try bind(message.contentType, "text")
            try bind(message.subject, "text")
            try bind(message.correlationId, "text")
            try bind(message.causationId, "text")
            try bind(message.replyTo, "text")
            try bind(message.timeToLive?.milliseconds, "int8")
            try bind(enqueued.scheduledAt, "int8")
            try bind(properties, "bytea")
            try bind(message.senderId, "text")
            try bind(message.senderSequence, "int8")
            try bind(message.body, "bytea")
            try bind(message.to, "text")
            try bind(message.replyToSessionId, "text")
            try bind(annotations, "bytea")
            rows.append("(" + placeholders.joined(separator: ", ") + ")")
        }
        return (rows.joined(separator: ", "), anyVisible)
    }

    /// Where the sequence numbers of inserted messages start.
    enum Numbering {
        /// Right after `base`, which the caller took from the entity's counter.
        case after(Int64)
        /// Right after the entity's counter, which the same statement moves past the messages
        /// (and so locks the entity's row until the commit).
        case fromCounter
    }

    /// Inserts `messages` into `entity` with consecutive sequence numbers from `numbering`;
    /// `topicSequences`, one per message, are the topic's sequence numbers of copies that a send to
    /// a topic places. Returns whether one of the messages is visible at once, or `nil` when
    /// `.fromCounter` found the entity gone (deleted meanwhile: nothing is inserted).
    func insert(
        _ messages: [Message], into entity: CachedEntity, numbering: Numbering, defaultTimeToLive: Duration?, topicSequences: [Int64]? = nil
    ) async throws -> Bool? {
        var bindings = PostgresBindings(capacity: messages.count * 20 + 3)
        bindings.append(entity.id)
        switch numbering {
        case .after(let base): bindings.append(base)
        case .fromCounter: bindings.append(Int64(messages.count))
        }
        var topicSequence = "NULL::int8"
        if let topicSequences {
            bindings.append(topicSequences)
            topicSequence = "($3::int8[])[v.o]"
        }
        let (values, visible) = try self.valuesRows(messages, defaultTimeToLive: defaultTimeToLive, bindings: &bindings)
        let base = if case .after = numbering { "$2" } else { "s.base" }
        let insert = """
            INSERT INTO \(self.tables.message) (\(Self.insertColumns), topic_seq)
            SELECT $1, \(base) + v.o, \(Self.valuesSelection), \(topicSequence)
            """
        switch numbering {
        case .after:
            try await self.rows(PostgresQuery(unsafeSQL: insert + " FROM (VALUES \(values)) AS v(\(Self.valuesColumns))", binds: bindings))
            return visible
        case .fromCounter:
            // The INSERT in a WITH runs to completion although the query reads none of its rows.
            let sql = """
                WITH s AS (UPDATE \(self.tables.entity) SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq - $2 AS base),
                i AS (\(insert) FROM s, (VALUES \(values)) AS v(\(Self.valuesColumns)))
                SELECT base FROM s
                """
            return try await self.rows(PostgresQuery(unsafeSQL: sql, binds: bindings)).isEmpty ? nil : visible
        }
    }

    /// The subscriptions of a topic whose row (locked by the caller) is at `generation`.
    func subscriptions(of topic: CachedEntity, generation: Int64) async throws -> [CachedEntity] {
        if let cached = self.broker.cache.subscriptions(of: topic.id, generation: generation) { return cached }
        let records = try await self.rows(
            "SELECT \(unescaped: Self.entityColumns) FROM \(unescaped: self.tables.entity) WHERE topic_id = \(topic.id) ORDER BY id"
        ).map(Self.decodeEntity)
        self.broker.cache.storeSubscriptions(records, of: topic.id, generation: generation)
        return records
    }

    /// Sends in the current transaction: locks the target's row (so sends to it commit in
    /// sequence-number order), checks duplicates, fans out to a topic's subscriptions.
    ///
    /// The row stays locked until the commit, so the send takes it as late and with as few
    /// statements as it can: when no message can be a duplicate (no duplicate detection, no
    /// sender sequences) one statement locks it and moves its counter past them all, and each
    /// subscription's copies take one statement.
    ///
    /// `endsTransaction`: nothing follows the send in its transaction, so its last statement may
    /// commit it (``rowsThenCommit(_:if:)``).
    func send(_ messages: [Message], to path: EntityPath, endsTransaction: Bool = false) async throws -> SendOutcome {
        try await self.pruneIfDue()
        var target = try await self.sendTarget(path)
        if let outcome = try await self.sendToTopicInOneStatement(messages, to: target, endsTransaction: endsTransaction) { return outcome }
        func lock(_ target: CachedEntity) async throws -> [PostgresRow] {
            guard Self.acceptsAll(messages, target) else {
                return try await self.rows("SELECT last_seq, generation FROM \(unescaped: self.tables.entity) WHERE id = \(target.id) FOR UPDATE")
            }
            let count = Int64(messages.count)
            return try await self.rows(
                """
                UPDATE \(unescaped: self.tables.entity) SET last_seq = last_seq + \(count) WHERE id = \(target.id)
                RETURNING last_seq - \(count), generation
                """
            )
        }
        var locked = try await lock(target)
        if locked.isEmpty {
            target = try await self.sendTarget(path, fresh: true)
            locked = try await lock(target)
            guard !locked.isEmpty else { throw HeraldError(.entityNotFound, "no queue or topic named '\(path.name)'") }
        }
        let acceptsAll = Self.acceptsAll(messages, target)
        let (lastSequence, generation) = try locked[0].decode((Int64, Int64).self)
        let subscriptions = target.path.kind == .topic ? try await self.subscriptions(of: target, generation: generation) : []
        try Message.checkBatch(messages, against: target.options, subscriptions: subscriptions)
        let window = target.options.duplicateDetectionWindow?.milliseconds

        // What the store remembers: message ids in the window, senders, older sender pairs.
        var recentIds: [String: Int64] = [:]
        if window != nil {
            let ids = Array(Set(messages.map(\.messageId)))
            for row in try await self.rows(
                """
                SELECT key, seq FROM \(unescaped: self.tables.dedup) WHERE entity_id = \(target.id) AND kind = \(DuplicateDetection.Kind.messageId.code)
                AND key = ANY(\(ids)) AND expires_at > \(self.now.wall)
                """
            ) {
                let (key, seq) = try row.decode((String, Int64).self)
                recentIds[key] = seq
            }
        }
        // Sender sequences are deduplicated by exact pair, so a reordered, lower number is accepted.
        var pairs: [String: Int64] = [:]
        let pairKeys = Array(Set(messages.compactMap(DuplicateDetection.senderKey(of:))))
        if !pairKeys.isEmpty {
            for row in try await self.rows(
                """
                SELECT key, seq FROM \(unescaped: self.tables.dedup) WHERE entity_id = \(target.id) AND kind = \(DuplicateDetection.Kind.senderPair.code)
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
            if let senderKey = DuplicateDetection.senderKey(of: message), let original = pairs[senderKey] {
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
            if let senderKey = DuplicateDetection.senderKey(of: message) {
                pairs[senderKey] = sequence
                newPairs.append((senderKey, sequence))
            }
        }
        var wake: Set<String> = []
        guard !accepted.isEmpty else { return SendOutcome(receipts: receipts, wake: wake) }

        if target.path.kind == .queue {
            if try await self.insert(accepted, into: target, numbering: .after(lastSequence), defaultTimeToLive: target.options.defaultTimeToLive) == true {
                wake.insert(target.waitKey(deadLetter: false))
            }
        } else {
            // The topic's sequence number of each accepted message: consecutive, in order.
            let numbered = accepted.enumerated().map { (message: $0.element, topicSequence: lastSequence + 1 + Int64($0.offset)) }
            // Which messages some subscription's rules took, so that the rules run once per pair.
            var taken = [Bool](repeating: false, count: numbered.count)
            for subscription in subscriptions {
                var matching: [(message: Message, topicSequence: Int64)] = []
                for (index, entry) in numbered.enumerated() where subscription.rules.matches(entry.message) {
                    matching.append(entry)
                    taken[index] = true
                }
                if matching.isEmpty { continue }
                // A subscription deleted meanwhile (nil) gets nothing.
                if try await self.insert(
                    matching.map(\.message), into: subscription, numbering: .fromCounter,
                    defaultTimeToLive: target.options.defaultTimeToLive ?? subscription.options.defaultTimeToLive,
                    topicSequences: matching.map(\.topicSequence)
                ) == true {
                    wake.insert(subscription.waitKey(deadLetter: false))
                }
            }
            try await self.rememberScheduledWithoutCopies(zip(numbered, taken).filter { !$0.1 }.map(\.0), in: target)
        }
        if !acceptsAll {
            try await self.rows("UPDATE \(unescaped: self.tables.entity) SET last_seq = \(sequence) WHERE id = \(target.id)")
        }
        if let window, !newIds.isEmpty {
            try await self.rows(
                """
                INSERT INTO \(unescaped: self.tables.dedup) (entity_id, kind, key, seq, expires_at)
                SELECT \(target.id), \(DuplicateDetection.Kind.messageId.code), k, s,
                    \(DuplicateDetection.messageIdExpiry(now: self.now.wall, window: window)) FROM unnest(\(newIds.map(\.0))::text[], \(newIds.map(\.1))::int8[]) AS u(k, s)
                ON CONFLICT (entity_id, kind, key) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at
                """
            )
        }
        if !newPairs.isEmpty {
            try await self.rows(
                """
                INSERT INTO \(unescaped: self.tables.dedup) (entity_id, kind, key, seq, expires_at)
                SELECT \(target.id), \(DuplicateDetection.Kind.senderPair.code), k, s, \(DuplicateDetection.senderPairExpiry(now: self.now.wall, window: window))
                FROM unnest(\(newPairs.map(\.0))::text[], \(newPairs.map(\.1))::int8[]) AS u(k, s)
                ON CONFLICT (entity_id, kind, key) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at
                """
            )
        }
        return SendOutcome(receipts: receipts, wake: wake)
    }

    /// Sends `messages` to the topic `topic` with one statement, which locks the topic's row,
    /// checks that its subscriptions are still those the cache holds (its generation), moves its
    /// counter and each matching subscription's, and inserts the copies: the topic's row is
    /// locked for one statement and the commit. `nil`, having changed nothing, when this send
    /// needs the general path: a queue, duplicates possible, a scheduled message (one that no
    /// subscription takes is remembered), a subscription whose default time to live differs
    /// from the topic's, more than ``maxSubscriptionsInOneStatement`` subscriptions,
    /// subscriptions not cached or changed since, or the topic gone. With
    /// `endsTransaction`, the statement that sends commits the transaction too.
    private func sendToTopicInOneStatement(_ messages: [Message], to topic: CachedEntity, endsTransaction: Bool) async throws -> SendOutcome? {
        guard topic.path.kind == .topic, Self.acceptsAll(messages, topic), messages.allSatisfy({ $0.scheduledEnqueueTime == nil }),
            let (generation, subscriptions) = self.broker.cache.lastSubscriptions(of: topic.id),
            subscriptions.count <= Self.maxSubscriptionsInOneStatement
        else { return nil }
        let timeToLive = topic.options.defaultTimeToLive
        guard timeToLive != nil || subscriptions.allSatisfy({ $0.options.defaultTimeToLive == nil }) else { return nil }
        // Subscriptions cached before a change may refuse what the current ones accept: the
        // general path checks against those it reads under the lock, and says why it refuses.
        guard (try? Message.checkBatch(messages, against: topic.options, subscriptions: subscriptions)) != nil else { return nil }

        let count = Int64(messages.count)
        var bindings = PostgresBindings(capacity: messages.count * 20 + 3 + subscriptions.count * 3)
        bindings.append(topic.id)
        bindings.append(count)
        bindings.append(generation)
        let (values, visible) = try self.valuesRows(messages, defaultTimeToLive: timeToLive, bindings: &bindings)
        var statements = [
            "t AS (UPDATE \(self.tables.entity) SET last_seq = last_seq + $2 WHERE id = $1 AND generation = $3 RETURNING last_seq - $2 AS base)",
            "v AS (SELECT * FROM (VALUES \(values)) AS v(\(Self.valuesColumns)))",
        ]
        var copied: [(subscription: CachedEntity, column: String)] = []
        for subscription in subscriptions {
            // The ordinals (from 1) of the messages the subscription's rules take, in order.
            let ordinals = messages.indices.filter { subscription.rules.matches(messages[$0]) }.map { Int64($0 + 1) }
            if ordinals.isEmpty { continue }
            bindings.append(subscription.id)
            let id = "$\(bindings.count)"
            bindings.append(Int64(ordinals.count))
            let taken = "$\(bindings.count)"
            bindings.append(ordinals)
            let positions = "$\(bindings.count)::int8[]"
            let name = "s\(copied.count)"
            // Moved only once the topic's row is locked and its generation checked (EXISTS t);
            // the copies are numbered in message order, by their position among the ordinals.
            statements.append(
                "\(name) AS (UPDATE \(self.tables.entity) SET last_seq = last_seq + \(taken) WHERE id = \(id) AND EXISTS (SELECT 1 FROM t) "
                    + "RETURNING last_seq - \(taken) AS base)"
            )
            statements.append(
                """
                i\(name) AS (INSERT INTO \(self.tables.message) (\(Self.insertColumns), topic_seq)
                    SELECT \(id), \(name).base + array_position(\(positions), v.o::int8), \(Self.valuesSelection), t.base + v.o
                    FROM t, \(name), v WHERE v.o = ANY(\(positions)))
                """
            )
            copied.append((subscription, "(SELECT count(*) FROM \(name))"))
        }
        let sql = "WITH " + statements.joined(separator: ",\n") + "\nSELECT base" + copied.map { ", " + $0.column }.joined() + " FROM t"
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let rows = try await endsTransaction ? self.rowsThenCommit(query, if: { !$0.isEmpty }) : self.rows(query)
        guard let row = rows.first else { return nil }
        let columns = row.makeRandomAccess()
        let base = try columns[0].decode(Int64.self)
        var wake: Set<String> = []
        for (index, copy) in copied.enumerated() where visible {
            // A subscription deleted meanwhile got nothing.
            if try columns[index + 1].decode(Int64.self) > 0 { wake.insert(copy.subscription.waitKey(deadLetter: false)) }
        }
        return SendOutcome(receipts: (1...count).map { SendReceipt(sequenceNumber: base + $0, isDuplicate: false) }, wake: wake)
    }

    /// The most subscriptions a publication places copies in with one statement: each adds two
    /// parts to it and three parameters (PostgreSQL takes at most 65,535), and a topic may have
    /// any number of them; past this the general path takes a statement per subscription.
    static let maxSubscriptionsInOneStatement = 32

    /// Whether every one of `messages` is accepted by a send to `target`, whatever the store holds:
    /// with no duplicate detection and no sender sequences none can be a duplicate.
    private static func acceptsAll(_ messages: [Message], _ target: CachedEntity) -> Bool {
        target.options.duplicateDetectionWindow == nil && messages.allSatisfy { DuplicateDetection.senderKey(of: $0) == nil }
    }

    /// Remembers, until its scheduled time, each scheduled message of the topic `target` among
    /// `messages` (which no subscription took), so that cancelling it succeeds until then (a
    /// message sent for now that nobody took is simply gone).
    private func rememberScheduledWithoutCopies(_ messages: [(message: Message, topicSequence: Int64)], in target: CachedEntity) async throws {
        var numbers: [Int64] = []
        var times: [Int64] = []
        for (message, topicSequence) in messages {
            let enqueued = EnqueuedMessage(message, now: self.now.wall, defaultTimeToLive: nil)
            guard enqueued.state == .scheduled else { continue }
            numbers.append(topicSequence)
            times.append(enqueued.visibleAt)
        }
        if numbers.isEmpty { return }
        try await self.rows(
            """
            INSERT INTO \(unescaped: self.tables.dedup) (entity_id, kind, key, seq, expires_at)
            SELECT \(target.id), \(DuplicateDetection.Kind.scheduledWithoutCopies.code), s::text, s, t FROM unnest(\(numbers)::int8[], \(times)::int8[]) AS u(s, t)
            ON CONFLICT (entity_id, kind, key) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at
            """
        )
    }

    func cancelScheduled(_ sequenceNumbers: [Int64], in path: EntityPath) async throws {
        let target = try await self.sendTarget(path)
        let isTopic = target.path.kind == .topic
        // Once its scheduled time has come a message is active, whether or not a receive or a
        // count has swept it yet: only the time decides.
        let rows: [PostgresRow]
        if isTopic {
            rows = try await self.cancelScheduledCopies(sequenceNumbers, of: target)
        } else {
            rows = try await self.rows(
                """
                DELETE FROM \(unescaped: self.tables.message) WHERE entity_id = \(target.id) AND seq = ANY(\(sequenceNumbers))
                AND state = 2 AND NOT dlq AND visible_at > \(self.now.wall) RETURNING seq
                """
            )
        }
        let cancelled = Set(try rows.map { try $0.decode(Int64.self) })
        if let missing = sequenceNumbers.first(where: { !cancelled.contains($0) }) {
            let lastSequence =
                try await self.rows("SELECT last_seq FROM \(unescaped: self.tables.entity) WHERE id = \(target.id)").first?.decode(Int64.self) ?? 0
            if isTopic {
                throw HeraldError.cannotCancel(missing, in: path, HeraldError.Uncancellable(topicSequenceNumber: missing, lastSequence: lastSequence))
            }
            let exists = try await self.rows("SELECT 1 FROM \(unescaped: self.tables.message) WHERE entity_id = \(target.id) AND seq = \(missing)")
            let found = HeraldError.Uncancellable(holdsMessage: !exists.isEmpty, sequenceNumber: missing, lastSequence: lastSequence)
            throw HeraldError.cannotCancel(missing, in: path, found)
        }
        if let twice = sequenceNumbers.enumerated().first(where: { sequenceNumbers[..<$0.offset].contains($0.element) })?.element {
            // Named twice: the second cancel finds it gone.
            throw HeraldError.cannotCancel(twice, in: path, isTopic ? .noScheduledCopy : .gone)
        }
    }

    /// Cancels scheduled messages of the topic `topic` by the topic's sequence numbers: every
    /// subscription's still-scheduled copy of each, or, for one that no subscription took, what
    /// the topic remembers of it. Returns a row for each copy or remembered message cancelled,
    /// holding its topic sequence number; the caller refuses the numbers that have none.
    private func cancelScheduledCopies(_ sequenceNumbers: [Int64], of topic: CachedEntity) async throws -> [PostgresRow] {
        // message_topic_scheduled finds the copies.
        var rows = try await self.rows(
            """
            DELETE FROM \(unescaped: self.tables.message)
            WHERE entity_id IN (SELECT id FROM \(unescaped: self.tables.entity) WHERE topic_id = \(topic.id))
            AND topic_seq = ANY(\(sequenceNumbers)) AND topic_seq IS NOT NULL AND state = 2 AND NOT dlq AND visible_at > \(self.now.wall)
            RETURNING topic_seq
            """
        )
        let copied = Set(try rows.map { try $0.decode(Int64.self) })
        let rest = Array(Set(sequenceNumbers).subtracting(copied))
        if !rest.isEmpty {
            // Scheduled, but no subscription took it: Service Bus would hold it in the topic until
            // its time and cancel it, so it is cancelled (forgotten) here too.
            rows += try await self.rows(
                """
                DELETE FROM \(unescaped: self.tables.dedup) WHERE entity_id = \(topic.id)
                AND kind = \(DuplicateDetection.Kind.scheduledWithoutCopies.code)
                AND key = ANY(\(rest.map(DuplicateDetection.scheduledWithoutCopiesKey))) AND expires_at > \(self.now.wall)
                RETURNING seq
                """
            )
        }
        return rows
    }
}

extension Store {
    /// Cancels, inside a transaction, the scheduled message with `messageId` if it is still
    /// scheduled; in a topic, every subscription's still-scheduled copy of it.
    func cancelScheduled(messageId: String, in path: EntityPath) async throws {
        let target = try await self.sendTarget(path)
        if target.path.kind == .topic {
            try await self.rows(
                """
                DELETE FROM \(unescaped: self.tables.message)
                WHERE entity_id IN (SELECT id FROM \(unescaped: self.tables.entity) WHERE topic_id = \(target.id))
                AND state = 2 AND NOT dlq AND visible_at > \(self.now.wall) AND message_id = \(messageId)
                """
            )
            return
        }
        try await self.rows(
            """
            DELETE FROM \(unescaped: self.tables.message) WHERE entity_id = \(target.id) AND state = 2 AND NOT dlq
            AND visible_at > \(self.now.wall) AND message_id = \(messageId)
            """
        )
    }
}
