import Foundation
import GRDB
import HeraldCore

extension StoreTransaction {
    /// How long a (senderId, senderSequence) pair is remembered when the entity has no (or a
    /// shorter) duplicate-detection window: a day.
    static let senderPairRetention: Int64 = 86_400_000

    func send(_ messages: [Message], to path: EntityPath) throws -> [SendReceipt] {
        guard messages.count <= HeraldLimits.maxBatchCount else {
            throw HeraldError(.batchTooLarge, "a batch holds at most \(HeraldLimits.maxBatchCount) messages; got \(messages.count)")
        }
        let target = try self.sendTarget(path)
        let subscriptions = target.path.kind == .topic ? self.state.subscriptions(of: target) : []
        // Check everything before writing anything: a batch is all or nothing.
        for message in messages {
            try message.validate(against: target.options)
            for subscription in subscriptions where subscription.options.requiresSession && message.sessionId == nil {
                if subscription.filter.matches(message) {
                    throw HeraldError(.sessionRequired, "subscription '\(subscription.path.name)' requires sessions: set sessionId")
                }
            }
        }
        try self.pruneDuplicateHistory()
        var receipts: [SendReceipt] = []
        receipts.reserveCapacity(messages.count)
        for message in messages {
            if let original = try self.duplicate(of: message, in: target) {
                receipts.append(original)
                continue
            }
            let sequenceNumber = self.state.nextSequence(target)
            if target.path.kind == .queue {
                try self.insert(message, into: target, sequenceNumber: sequenceNumber, defaultTimeToLive: target.options.defaultTimeToLive)
            } else {
                for subscription in subscriptions where subscription.filter.matches(message) {
                    try self.insert(
                        message, into: subscription, sequenceNumber: self.state.nextSequence(subscription),
                        defaultTimeToLive: target.options.defaultTimeToLive ?? subscription.options.defaultTimeToLive
                    )
                }
            }
            try self.remember(message, in: target, sequenceNumber: sequenceNumber)
            receipts.append(SendReceipt(sequenceNumber: sequenceNumber, isDuplicate: false))
        }
        return receipts
    }

    private func insert(_ message: Message, into entity: EntityRecord, sequenceNumber: Int64, defaultTimeToLive: Duration?) throws {
        let scheduledAt = message.scheduledEnqueueTime?.millisecondsSince1970
        let isScheduled = (scheduledAt ?? 0) > self.nowMilliseconds
        let enqueuedAt = isScheduled ? scheduledAt! : self.nowMilliseconds
        // 0: visible now. Only scheduled and delayed messages compare against the wall clock,
        // so a wall-clock jump back does not hide the rest.
        let visibleAt = isScheduled ? enqueuedAt : 0
        let timeToLive = message.timeToLive ?? defaultTimeToLive
        let properties = message.applicationProperties.isEmpty ? nil : try PropertyCodec.encode(message.applicationProperties)
        try self.execute(
            """
            INSERT INTO message (entity_id, seq, state, visible_at, expires_at, session_id, enqueued_at, message_id,
                content_type, subject, correlation_id, causation_id, reply_to, ttl_ms, scheduled_at, properties,
                sender_id, sender_seq, body)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                entity.id, sequenceNumber, isScheduled ? 2 : 0, visibleAt, timeToLive.map { enqueuedAt + $0.milliseconds },
                message.sessionId, enqueuedAt, message.messageId, message.contentType, message.subject,
                message.correlationId, message.causationId, message.replyTo, message.timeToLive?.milliseconds,
                scheduledAt, properties, message.senderId, message.senderSequence, message.body,
            ]
        )
        if !isScheduled { self.state.touch(entity) }
    }

    /// The receipt of the original when `message` repeats a messageId inside the window or a
    /// sender's (senderId, senderSequence) pair.
    private func duplicate(of message: Message, in target: EntityRecord) throws -> SendReceipt? {
        if target.options.duplicateDetectionWindow != nil {
            let original = try Int64.fetchOne(
                self.db.cachedStatement(sql: "SELECT seq FROM dedup WHERE entity_id = ? AND kind = 0 AND key = ? AND expires_at > ?"),
                arguments: [target.id, message.messageId, self.nowMilliseconds]
            )
            if let original { return SendReceipt(sequenceNumber: original, isDuplicate: true) }
        }
        if let senderId = message.senderId, let senderSequence = message.senderSequence {
            // The exact pair, not "anything below the highest": a late, lower number from a
            // sender is a reordered message, which a receiver may hold until the gap fills.
            let original = try Int64.fetchOne(
                self.db.cachedStatement(sql: "SELECT seq FROM dedup WHERE entity_id = ? AND kind = 1 AND key = ? AND expires_at > ?"),
                arguments: [target.id, Self.senderKey(senderId, senderSequence), self.nowMilliseconds]
            )
            if let original { return SendReceipt(sequenceNumber: original, isDuplicate: true) }
        }
        return nil
    }

    private func remember(_ message: Message, in target: EntityRecord, sequenceNumber: Int64) throws {
        let window = target.options.duplicateDetectionWindow?.milliseconds
        if let window {
            try self.execute(
                "INSERT OR REPLACE INTO dedup (entity_id, kind, key, seq, expires_at) VALUES (?, 0, ?, ?, ?)",
                [target.id, message.messageId, sequenceNumber, self.nowMilliseconds + window]
            )
        }
        if let senderId = message.senderId, let senderSequence = message.senderSequence {
            try self.execute(
                "INSERT OR REPLACE INTO dedup (entity_id, kind, key, seq, expires_at) VALUES (?, 1, ?, ?, ?)",
                [target.id, Self.senderKey(senderId, senderSequence), sequenceNumber, self.nowMilliseconds + max(window ?? 0, Self.senderPairRetention)]
            )
        }
    }

    private static func senderKey(_ senderId: String, _ sequence: Int64) -> String {
        "\(sequence):\(senderId)"
    }

    /// Forgets duplicate-detection entries past their window, a bounded number at a time, at most once a second.
    private func pruneDuplicateHistory() throws {
        guard self.nowMilliseconds - self.state.lastDuplicatePrune >= 1000 else { return }
        self.state.lastDuplicatePrune = self.nowMilliseconds
        try self.execute(
            """
            DELETE FROM dedup WHERE (entity_id, kind, key) IN
                (SELECT entity_id, kind, key FROM dedup WHERE expires_at <= ? LIMIT 10000)
            """,
            [self.nowMilliseconds]
        )
    }

    func cancelScheduled(_ sequenceNumbers: [Int64], in path: EntityPath) throws {
        let target = try self.sendTarget(path)
        guard target.path.kind == .queue else {
            throw HeraldError(.invalidArgument, "cancel scheduled messages of a queue; a topic's copies live in its subscriptions")
        }
        for sequenceNumber in sequenceNumbers {
            // Once its scheduled time has come a message is active, whether or not a receive or
            // a count has swept it yet: only the time decides.
            try self.execute(
                "DELETE FROM message WHERE entity_id = ? AND seq = ? AND state = 2 AND dlq = 0 AND visible_at > ?",
                [target.id, sequenceNumber, self.nowMilliseconds]
            )
            if self.db.changesCount == 0 {
                let exists = try Bool.fetchOne(
                    self.db.cachedStatement(sql: "SELECT 1 FROM message WHERE entity_id = ? AND seq = ?"), arguments: [target.id, sequenceNumber]
                ) ?? false
                let found: HeraldError.Uncancellable =
                    exists ? .notScheduled : (sequenceNumber >= 1 && sequenceNumber <= target.lastSequence ? .gone : .neverAssigned)
                throw HeraldError.cannotCancel(sequenceNumber, in: path, found)
            }
        }
    }

    /// Cancels, inside a transaction, the message with `messageId` if it is still scheduled.
    func cancelScheduled(messageId: String, in path: EntityPath) throws {
        let target = try self.sendTarget(path)
        try self.execute(
            "DELETE FROM message WHERE entity_id = ? AND state = 2 AND dlq = 0 AND visible_at > ? AND message_id = ?",
            [target.id, self.nowMilliseconds, messageId]
        )
    }
}
