import Foundation
import HeraldCore

/// The simulator's reference model of the broker: what GUARANTEES.md §4 says each operation does,
/// applied to plain values, one operation at a time, at the time of the simulated clock.
///
/// Each operation returns what the broker must answer; the simulator compares the real answer
/// with it. The model is a value, so an operation whose fate a crash left in doubt can be applied
/// to a copy and the store's state after the restart compared with both.
struct BrokerModel {
    /// The time an operation runs at: wall-clock milliseconds and monotonic nanoseconds.
    struct Now {
        var wall: Int64
        var monotonic: Int64
    }

    /// A message of a queue or subscription (or of its dead-letter queue).
    struct MessageState: Equatable {
        var sequenceNumber: Int64
        var messageId: String
        var body: Data
        var sessionId: String?
        /// The message's own time-to-live, in milliseconds (a resubmit restarts it).
        var timeToLive: Int64?
        var expiresAt: Int64?
        var state: ReceivedMessage.State
        /// Wall-clock milliseconds before which it stays invisible; 0: visible now.
        var visibleAt: Int64
        var enqueuedAt: Int64
        var deliveryCount: Int
        var lockNonce: UUID?
        var lockedUntil: Int64?
        var isDeadLetter: Bool
        var deadLetterReason: String?
        /// The delivery count when the message was dead-lettered.
        var deliveryCountAtDeadLetter: Int?
        /// For a subscription's copy, the topic's sequence number of the send that placed it.
        var topicSequence: Int64? = nil
    }

    struct SessionHold: Equatable {
        var nonce: UUID
        var lockedUntil: Int64
    }

    struct DuplicateEntry: Equatable {
        var sequenceNumber: Int64
        var expiresAt: Int64
    }

    /// A queue, topic or subscription.
    struct Entity {
        let path: EntityPath
        let options: EntityOptions
        let filter: SubscriptionFilter
        var messages: [Int64: MessageState] = [:]
        /// The highest sequence number assigned and committed.
        var lastSequence: Int64 = 0
        /// The highest sequence number ever acknowledged to a sender.
        var highestAcknowledged: Int64 = 0
        var holds: [String: SessionHold] = [:]
        var sessionStates: [String: Data] = [:]
        var duplicates: [String: DuplicateEntry] = [:]
        /// Messages that left by complete or receive-and-delete: they must never come back.
        var removed: Set<Int64> = []
        /// A topic's scheduled messages that no subscription took, by sequence number: their
        /// scheduled time (kept, like duplicate entries, until a send forgets expired ones).
        var scheduledWithoutCopies: [Int64: Int64] = [:]

        /// The messages in sequence-number order.
        var ordered: [MessageState] { self.messages.keys.sorted().map { self.messages[$0]! } }
    }

    /// The entities by key. Settable within the module only so that the model's operations,
    /// spread over several files, can change it: the simulator only reads it.
    var entities: [String: Entity] = [:]
    /// Subscriptions by topic key, in creation order.
    private(set) var subscriptions: [String: [String]] = [:]
    /// When sends forget expired duplicate-detection entries (``PruneSchedule``, kept in memory),
    /// as the store does. After a wall-clock jump back, an entry already forgotten no longer makes
    /// a send a duplicate, while one not yet forgotten still does.
    private var duplicatePrune = PruneSchedule.duplicateHistory
    /// How each lock token settled its message, and when (durable, like the store's table).
    var settlements: [LockToken: RememberedSettlement] = [:]
    /// When settlements forget settlements past ``HeraldLimits/settlementMemory``
    /// (``PruneSchedule``, kept in memory), as the store does.
    var settlementPrune = PruneSchedule.settlements

    // MARK: Entities

    mutating func addEntity(_ path: EntityPath, options: EntityOptions, filter: SubscriptionFilter = .all) {
        self.entities[path.entityKey] = Entity(path: path, options: options, filter: filter)
        if path.kind == .subscription, let topic = path.topic {
            self.subscriptions[EntityPath.topic(topic).entityKey, default: []].append(path.entityKey)
        }
    }

    func entity(_ path: EntityPath) -> Entity? { self.entities[path.origin.entityKey] }

    /// Every queue and subscription, in a fixed order.
    var receivableKeys: [String] {
        self.entities.values.filter { $0.path.kind != .topic }.map(\.path.entityKey).sorted()
    }

    /// What a restart does to the in-memory part of the broker: every lock is released.
    mutating func restart() {
        self.duplicatePrune = .duplicateHistory
        self.settlementPrune = .settlements
        for key in self.entities.keys.sorted() {
            self.entities[key]!.holds = [:]
            for sequenceNumber in self.entities[key]!.messages.keys.sorted() {
                self.entities[key]!.messages[sequenceNumber]!.lockNonce = nil
                self.entities[key]!.messages[sequenceNumber]!.lockedUntil = nil
            }
        }
    }

    // MARK: Sending

    mutating func send(_ messages: [Message], to path: EntityPath, now: Now) -> Result<[SendReceipt], HeraldError> {
        guard var target = self.entities[path.entityKey], path.kind != .subscription, !path.isDeadLetter else {
            return .failure(HeraldError(.entityNotFound, "model: no target \(path)"))
        }
        let subscriptionKeys = path.kind == .topic ? self.subscriptions[path.entityKey] ?? [] : []
        for message in messages {
            do {
                try message.validate(against: target.options)
            } catch {
                return .failure(error)
            }
            for key in subscriptionKeys {
                let subscription = self.entities[key]!
                if subscription.options.requiresSession && message.sessionId == nil && subscription.filter.matches(message) {
                    return .failure(HeraldError(.sessionRequired, "model"))
                }
            }
        }
        let isPruneDue = self.duplicatePrune.isDue(now: now.wall)
        self.duplicatePrune.added(messages.count)
        if isPruneDue {
            for key in self.entities.keys.sorted() {
                self.entities[key]!.duplicates = self.entities[key]!.duplicates.filter { $0.value.expiresAt > now.wall }
                self.entities[key]!.scheduledWithoutCopies = self.entities[key]!.scheduledWithoutCopies.filter { $0.value > now.wall }
            }
            target.duplicates = self.entities[path.entityKey]!.duplicates
            target.scheduledWithoutCopies = self.entities[path.entityKey]!.scheduledWithoutCopies
        }
        var receipts: [SendReceipt] = []
        for message in messages {
            if target.options.duplicateDetectionWindow != nil, let original = target.duplicates[message.messageId],
                original.expiresAt > now.wall
            {
                receipts.append(SendReceipt(sequenceNumber: original.sequenceNumber, isDuplicate: true))
                continue
            }
            target.lastSequence += 1
            let sequenceNumber = target.lastSequence
            if path.kind == .queue {
                Self.insert(message, into: &target, sequenceNumber: sequenceNumber, defaultTimeToLive: target.options.defaultTimeToLive, now: now)
            } else {
                var taken = false
                for key in subscriptionKeys where self.entities[key]!.filter.matches(message) {
                    var subscription = self.entities[key]!
                    subscription.lastSequence += 1
                    Self.insert(
                        message, into: &subscription, sequenceNumber: subscription.lastSequence,
                        defaultTimeToLive: target.options.defaultTimeToLive ?? subscription.options.defaultTimeToLive, now: now,
                        topicSequence: sequenceNumber
                    )
                    self.entities[key] = subscription
                    taken = true
                }
                // A scheduled message nobody took stays cancellable until its time.
                if !taken, let scheduledAt = message.scheduledEnqueueTime?.millisecondsSince1970, scheduledAt > now.wall {
                    target.scheduledWithoutCopies[sequenceNumber] = scheduledAt
                }
            }
            if let window = target.options.duplicateDetectionWindow {
                target.duplicates[message.messageId] = DuplicateEntry(sequenceNumber: sequenceNumber, expiresAt: now.wall + window.milliseconds)
            }
            receipts.append(SendReceipt(sequenceNumber: sequenceNumber, isDuplicate: false))
        }
        self.entities[path.entityKey] = target
        return .success(receipts)
    }

    private static func insert(
        _ message: Message, into entity: inout Entity, sequenceNumber: Int64, defaultTimeToLive: Duration?, now: Now, topicSequence: Int64? = nil
    ) {
        let scheduledAt = message.scheduledEnqueueTime?.millisecondsSince1970
        let isScheduled = (scheduledAt ?? 0) > now.wall
        let enqueuedAt = isScheduled ? scheduledAt! : now.wall
        let timeToLive = message.timeToLive ?? defaultTimeToLive
        entity.messages[sequenceNumber] = MessageState(
            sequenceNumber: sequenceNumber, messageId: message.messageId, body: message.body, sessionId: message.sessionId,
            timeToLive: message.timeToLive?.milliseconds, expiresAt: timeToLive.map { enqueuedAt + $0.milliseconds },
            state: isScheduled ? .scheduled : .active, visibleAt: isScheduled ? enqueuedAt : 0, enqueuedAt: enqueuedAt,
            deliveryCount: 0, lockNonce: nil, lockedUntil: nil, isDeadLetter: false, deadLetterReason: nil,
            deliveryCountAtDeadLetter: nil, topicSequence: topicSequence
        )
    }

    /// Records that the broker acknowledged `receipts` for a send to `path`.
    mutating func acknowledge(_ receipts: [SendReceipt], to path: EntityPath) {
        for receipt in receipts where !receipt.isDuplicate {
            if let sequenceNumber = receipt.sequenceNumber {
                self.entities[path.entityKey]!.highestAcknowledged = max(self.entities[path.entityKey]!.highestAcknowledged, sequenceNumber)
            }
        }
    }

    mutating func cancelScheduled(_ sequenceNumbers: [Int64], in path: EntityPath, now: Now) -> Result<Void, HeraldError> {
        if path.kind == .topic { return self.cancelScheduled(sequenceNumbers, inTopic: path, now: now) }
        guard var entity = self.entities[path.entityKey], path.kind == .queue else {
            return .failure(HeraldError(.invalidArgument, "model"))
        }
        for sequenceNumber in sequenceNumbers {
            // Once its time has come a message is active, swept or not.
            guard let message = entity.messages[sequenceNumber], message.state == .scheduled, message.visibleAt > now.wall, !message.isDeadLetter else {
                return .failure(HeraldError(.messageNotFound, "model"))
            }
            entity.messages[sequenceNumber] = nil
            entity.removed.insert(sequenceNumber)
        }
        self.entities[path.entityKey] = entity
        return .success(())
    }

    /// Cancels by a topic's sequence numbers, all or none: every subscription's copy of each that
    /// is still scheduled, or a scheduled message that no subscription took.
    private mutating func cancelScheduled(_ sequenceNumbers: [Int64], inTopic path: EntityPath, now: Now) -> Result<Void, HeraldError> {
        guard self.entities[path.entityKey] != nil else { return .failure(HeraldError(.entityNotFound, "model")) }
        var model = self
        let keys = self.subscriptions[path.entityKey] ?? []
        for sequenceNumber in sequenceNumbers {
            var cancelled = false
            for key in keys {
                var subscription = model.entities[key]!
                for (number, message) in subscription.messages
                where message.topicSequence == sequenceNumber && message.state == .scheduled && message.visibleAt > now.wall && !message.isDeadLetter {
                    subscription.messages[number] = nil
                    subscription.removed.insert(number)
                    cancelled = true
                }
                model.entities[key] = subscription
            }
            if !cancelled, let scheduledAt = model.entities[path.entityKey]!.scheduledWithoutCopies[sequenceNumber], scheduledAt > now.wall {
                model.entities[path.entityKey]!.scheduledWithoutCopies[sequenceNumber] = nil
                cancelled = true
            }
            guard cancelled else { return .failure(HeraldError(.messageNotFound, "model")) }
        }
        self = model
        return .success(())
    }

    // MARK: Receiving

    /// Makes due scheduled messages active and expires messages whose time-to-live passed.
    static func sweep(_ entity: inout Entity, now: Now) {
        for sequenceNumber in entity.messages.keys.sorted() {
            var message = entity.messages[sequenceNumber]!
            if message.state == .scheduled && message.visibleAt <= now.wall {
                message.state = .active
                entity.messages[sequenceNumber] = message
            }
            let unlocked = message.lockNonce == nil || (message.lockedUntil ?? 0) <= now.monotonic
            if !message.isDeadLetter, let expiresAt = message.expiresAt, expiresAt <= now.wall, unlocked {
                if entity.options.deadLetterOnExpiration {
                    Self.moveToDeadLetter(&entity, sequenceNumber, reason: DeadLetterReason.ttlExpired)
                } else {
                    entity.messages[sequenceNumber] = nil
                    entity.removed.insert(sequenceNumber)
                }
            }
        }
    }

    static func moveToDeadLetter(_ entity: inout Entity, _ sequenceNumber: Int64, reason: String) {
        entity.messages[sequenceNumber]!.isDeadLetter = true
        entity.messages[sequenceNumber]!.state = .active
        entity.messages[sequenceNumber]!.lockNonce = nil
        entity.messages[sequenceNumber]!.lockedUntil = nil
        entity.messages[sequenceNumber]!.visibleAt = 0
        entity.messages[sequenceNumber]!.deadLetterReason = reason
        entity.messages[sequenceNumber]!.deliveryCountAtDeadLetter = entity.messages[sequenceNumber]!.deliveryCount
    }

    static func lock(_ entity: inout Entity, _ sequenceNumber: Int64, nonce: UUID, until: Int64) -> MessageState {
        entity.messages[sequenceNumber]!.deliveryCount += 1
        entity.messages[sequenceNumber]!.lockNonce = nonce
        entity.messages[sequenceNumber]!.lockedUntil = until
        return entity.messages[sequenceNumber]!
    }

    mutating func receive(from path: EntityPath, maxCount: Int, mode: ReceiveMode, nonce: UUID, now: Now) -> Result<[MessageState], HeraldError> {
        guard var entity = self.entity(path), path.kind != .topic else { return .failure(HeraldError(.entityNotFound, "model")) }
        if entity.options.requiresSession && !path.isDeadLetter { return .failure(HeraldError(.sessionRequired, "model")) }
        if !path.isDeadLetter { Self.sweep(&entity, now: now) }
        var received: [MessageState] = []
        for message in entity.ordered where received.count < maxCount {
            guard message.isDeadLetter == path.isDeadLetter, message.state == .active, message.visibleAt <= now.wall,
                message.lockNonce == nil || (message.lockedUntil ?? 0) <= now.monotonic
            else { continue }
            if !path.isDeadLetter && message.deliveryCount >= entity.options.maxDeliveryCount {
                Self.moveToDeadLetter(&entity, message.sequenceNumber, reason: DeadLetterReason.maxDeliveryCountExceeded)
                continue
            }
            switch mode {
            case .peekLock:
                received.append(Self.lock(&entity, message.sequenceNumber, nonce: nonce, until: now.monotonic + entity.options.lockDuration.nanoseconds))
            case .receiveAndDelete:
                var delivered = message
                delivered.deliveryCount += 1
                received.append(delivered)
                entity.messages[message.sequenceNumber] = nil
                entity.removed.insert(message.sequenceNumber)
            }
        }
        self.entities[entity.path.entityKey] = entity
        return .success(received)
    }

    mutating func receiveDeferred(from path: EntityPath, sequenceNumbers: [Int64], nonce: UUID, now: Now) -> Result<[MessageState], HeraldError> {
        guard var entity = self.entity(path) else { return .failure(HeraldError(.entityNotFound, "model")) }
        if entity.options.requiresSession && !path.isDeadLetter { return .failure(HeraldError(.sessionRequired, "model")) }
        guard Set(sequenceNumbers).count == sequenceNumbers.count else { return .failure(HeraldError(.messageNotFound, "model")) }
        for sequenceNumber in sequenceNumbers {
            guard let message = entity.messages[sequenceNumber], message.isDeadLetter == path.isDeadLetter, message.state == .deferred,
                message.lockNonce == nil || (message.lockedUntil ?? 0) <= now.monotonic
            else { return .failure(HeraldError(.messageNotFound, "model")) }
        }
        let until = now.monotonic + entity.options.lockDuration.nanoseconds
        var received: [MessageState] = []
        for sequenceNumber in sequenceNumbers {
            // Each lock counts, even of a message asked for by number (GUARANTEES.md §4.4).
            if !path.isDeadLetter && entity.messages[sequenceNumber]!.deliveryCount >= entity.options.maxDeliveryCount {
                Self.moveToDeadLetter(&entity, sequenceNumber, reason: DeadLetterReason.maxDeliveryCountExceeded)
            } else {
                received.append(Self.lock(&entity, sequenceNumber, nonce: nonce, until: until))
            }
        }
        self.entities[entity.path.entityKey] = entity
        return .success(received)
    }
}
