import Foundation
import GRDB
import HeraldCore

extension StoreTransaction {
    func send(_ messages: [Message], to path: EntityPath) throws -> [SendReceipt] {
        try HeraldLimits.checkBatchCount(messages.count)
        let target = try self.sendTarget(path)
        let subscriptions = target.path.kind == .topic ? self.state.subscriptions(of: target) : []
        try Message.checkBatch(messages, against: target.options, subscriptions: subscriptions)
        try self.pruneDuplicateHistory(sending: messages.count)
        var receipts: [SendReceipt] = []
        receipts.reserveCapacity(messages.count)
        let statement = try self.insertStatement()
        for message in messages {
            if let original = try self.duplicate(of: message, in: target) {
                receipts.append(original)
                continue
            }
            let sequenceNumber = self.state.nextSequence(target)
            if target.path.kind == .queue {
                try self.insert(
                    message, into: target, sequenceNumber: sequenceNumber, defaultTimeToLive: target.options.defaultTimeToLive, statement: statement)
            } else {
                var taken = false
                for subscription in subscriptions where subscription.rules.matches(message) {
                    try self.insert(
                        message, into: subscription, sequenceNumber: self.state.nextSequence(subscription),
                        defaultTimeToLive: target.options.defaultTimeToLive ?? subscription.options.defaultTimeToLive,
                        topicSequence: sequenceNumber, statement: statement
                    )
                    taken = true
                }
                if !taken { try self.rememberScheduledWithoutCopies(message, in: target, sequenceNumber: sequenceNumber) }
            }
            try self.remember(message, in: target, sequenceNumber: sequenceNumber)
            receipts.append(SendReceipt(sequenceNumber: sequenceNumber, isDuplicate: false))
        }
        return receipts
    }

    /// Inserts `message` into the queue or subscription `entity`; `topicSequence` is the topic's
    /// sequence number of a copy that a send to a topic places.
    ///
    /// A caller inserting many messages passes `statement` (``insertStatement()``), looked up once
    /// rather than by its SQL for each message.
    func insert(
        _ message: Message, into entity: EntityRecord, sequenceNumber: Int64, defaultTimeToLive: Duration?, topicSequence: Int64? = nil,
        statement: Statement? = nil
    ) throws {
        let enqueued = EnqueuedMessage(message, now: self.nowMilliseconds, defaultTimeToLive: defaultTimeToLive)
        let properties = message.applicationProperties.isEmpty ? nil : try PropertyCodec.encode(message.applicationProperties)
        let annotations = message.annotations.isEmpty ? nil : try PropertyCodec.encode(message.annotations)
        var insert = BoundStatement(self.db, statement: try statement ?? self.insertStatement())
        insert.bind(entity.id)
        insert.bind(sequenceNumber)
        insert.bind(enqueued.state.code)
        insert.bind(enqueued.visibleAt)
        insert.bind(enqueued.expiresAt)
        insert.bind(message.sessionId)
        insert.bind(enqueued.enqueuedAt)
        insert.bind(message.messageId)
        insert.bind(message.contentType)
        insert.bind(message.subject)
        insert.bind(message.correlationId)
        insert.bind(message.causationId)
        insert.bind(message.replyTo)
        insert.bind(message.timeToLive?.milliseconds)
        insert.bind(enqueued.scheduledAt)
        insert.bind(properties)
        insert.bind(message.senderId)
        insert.bind(message.senderSequence)
        insert.bind(message.body)
        insert.bind(message.to)
        insert.bind(message.replyToSessionId)
        insert.bind(annotations)
        insert.bind(topicSequence)
        try insert.execute()
        if enqueued.isVisibleNow { self.state.touch(entity) }
    }

    /// The statement ``insert(_:into:sequenceNumber:defaultTimeToLive:topicSequence:statement:)`` runs.
    func insertStatement() throws -> Statement {
        try self.db.cachedStatement(
            sql: """
                INSERT INTO message (entity_id, seq, state, visible_at, expires_at, session_id, enqueued_at, message_id,
                    content_type, subject, correlation_id, causation_id, reply_to, ttl_ms, scheduled_at, properties,
                    sender_id, sender_seq, body, to_address, reply_to_session_id, annotations, topic_seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
    }

    /// The receipt of the original when `message` repeats a messageId inside the window or a
    /// sender's (senderId, senderSequence) pair.
    private func duplicate(of message: Message, in target: EntityRecord) throws -> SendReceipt? {
        var remembered: [(DuplicateDetection.Kind, String)] = []
        if target.options.duplicateDetectionWindow != nil { remembered.append((.messageId, message.messageId)) }
        if let senderKey = DuplicateDetection.senderKey(of: message) { remembered.append((.senderPair, senderKey)) }
        for (kind, key) in remembered {
            let original = try Int64.fetchOne(
                self.db.cachedStatement(sql: "SELECT seq FROM dedup WHERE entity_id = ? AND kind = ? AND key = ? AND expires_at > ?"),
                arguments: [target.id, kind.code, key, self.nowMilliseconds]
            )
            if let original { return SendReceipt(sequenceNumber: original, isDuplicate: true) }
        }
        return nil
    }

    private func remember(_ message: Message, in target: EntityRecord, sequenceNumber: Int64) throws {
        let window = target.options.duplicateDetectionWindow?.milliseconds
        var remembered: [(DuplicateDetection.Kind, String, expiresAt: Int64)] = []
        if let window {
            remembered.append((.messageId, message.messageId, DuplicateDetection.messageIdExpiry(now: self.nowMilliseconds, window: window)))
        }
        if let senderKey = DuplicateDetection.senderKey(of: message) {
            remembered.append((.senderPair, senderKey, DuplicateDetection.senderPairExpiry(now: self.nowMilliseconds, window: window)))
        }
        for (kind, key, expiresAt) in remembered {
            try self.execute(
                "INSERT OR REPLACE INTO dedup (entity_id, kind, key, seq, expires_at) VALUES (?, ?, ?, ?, ?)",
                [target.id, kind.code, key, sequenceNumber, expiresAt]
            )
        }
    }

    /// Remembers, until its scheduled time, a scheduled message of the topic `target` that no
    /// subscription took, so that cancelling it succeeds until then (a message sent for now
    /// that nobody took is simply gone).
    private func rememberScheduledWithoutCopies(_ message: Message, in target: EntityRecord, sequenceNumber: Int64) throws {
        let enqueued = EnqueuedMessage(message, now: self.nowMilliseconds, defaultTimeToLive: nil)
        guard enqueued.state == .scheduled else { return }
        try self.execute(
            "INSERT OR REPLACE INTO dedup (entity_id, kind, key, seq, expires_at) VALUES (?, ?, ?, ?, ?)",
            [
                target.id, DuplicateDetection.Kind.scheduledWithoutCopies.code, DuplicateDetection.scheduledWithoutCopiesKey(sequenceNumber),
                sequenceNumber, enqueued.visibleAt,
            ]
        )
    }

    /// Forgets duplicate-detection entries past their window, a bounded number at a time, when
    /// ``PruneSchedule`` says.
    private func pruneDuplicateHistory(sending count: Int) throws {
        let isDue = self.state.duplicatePrune.isDue(now: self.nowMilliseconds)
        self.state.duplicatePrune.added(count)
        guard isDue else { return }
        try self.execute(
            """
            DELETE FROM dedup WHERE (entity_id, kind, key) IN
                (SELECT entity_id, kind, key FROM dedup WHERE expires_at <= ? LIMIT \(PruneSchedule.batch))
            """,
            [self.nowMilliseconds]
        )
    }

    func cancelScheduled(_ sequenceNumbers: [Int64], in path: EntityPath) throws {
        let target = try self.sendTarget(path)
        if target.path.kind == .topic { return try self.cancelScheduled(sequenceNumbers, inTopic: target) }
        for sequenceNumber in sequenceNumbers {
            // Once its scheduled time has come a message is active, whether or not a receive or
            // a count has swept it yet: only the time decides.
            try self.execute(
                "DELETE FROM message WHERE entity_id = ? AND seq = ? AND state = 2 AND dlq = 0 AND visible_at > ?",
                [target.id, sequenceNumber, self.nowMilliseconds]
            )
            if self.db.changesCount == 0 {
                let exists =
                    try Bool.fetchOne(
                        self.db.cachedStatement(sql: "SELECT 1 FROM message WHERE entity_id = ? AND seq = ?"), arguments: [target.id, sequenceNumber]
                    ) ?? false
                let found = HeraldError.Uncancellable(holdsMessage: exists, sequenceNumber: sequenceNumber, lastSequence: target.lastSequence)
                throw HeraldError.cannotCancel(sequenceNumber, in: path, found)
            }
        }
    }

    /// Cancels scheduled messages of a topic by the topic's sequence numbers: every subscription's
    /// still-scheduled copy of each, or a scheduled message that no subscription took. A number
    /// with neither is refused (the caller's transaction undoes the rest).
    private func cancelScheduled(_ sequenceNumbers: [Int64], inTopic topic: EntityRecord) throws {
        let subscriptions = self.state.subscriptions(of: topic)
        for sequenceNumber in sequenceNumbers {
            var cancelled = false
            for subscription in subscriptions {
                // As for a queue, only the time decides. Named index: without statistics (the
                // store runs no ANALYZE) the planner would walk message_scheduled, every message
                // of the subscription scheduled later than now.
                try self.execute(
                    """
                    DELETE FROM message INDEXED BY message_topic_scheduled
                    WHERE entity_id = ? AND topic_seq = ? AND topic_seq IS NOT NULL AND state = 2 AND dlq = 0 AND visible_at > ?
                    """,
                    [subscription.id, sequenceNumber, self.nowMilliseconds]
                )
                cancelled = cancelled || self.db.changesCount > 0
            }
            if !cancelled {
                // Scheduled, but no subscription took it: Service Bus would hold it in the topic
                // until its time and cancel it, so it is cancelled (forgotten) here too.
                try self.execute(
                    "DELETE FROM dedup WHERE entity_id = ? AND kind = ? AND key = ? AND expires_at > ?",
                    [
                        topic.id, DuplicateDetection.Kind.scheduledWithoutCopies.code, DuplicateDetection.scheduledWithoutCopiesKey(sequenceNumber),
                        self.nowMilliseconds,
                    ]
                )
                cancelled = self.db.changesCount > 0
            }
            if !cancelled {
                let found = HeraldError.Uncancellable(topicSequenceNumber: sequenceNumber, lastSequence: topic.lastSequence)
                throw HeraldError.cannotCancel(sequenceNumber, in: topic.path, found)
            }
        }
    }

    /// Cancels, inside a transaction, the message with `messageId` if it is still scheduled; in a
    /// topic, every subscription's still-scheduled copy of it.
    func cancelScheduled(messageId: String, in path: EntityPath) throws {
        let target = try self.sendTarget(path)
        let entities = target.path.kind == .topic ? self.state.subscriptions(of: target) : [target]
        for entity in entities {
            try self.execute(
                "DELETE FROM message WHERE entity_id = ? AND state = 2 AND dlq = 0 AND visible_at > ? AND message_id = ?",
                [entity.id, self.nowMilliseconds, messageId]
            )
        }
    }
}
