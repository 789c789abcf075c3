public import Foundation

/// A message as a broker hands it out: the sent ``Message`` and what the broker added (GUARANTEES.md §3).
public struct ReceivedMessage: Hashable, Sendable, Codable {
    /// Where a message stands in its entity.
    public enum State: String, Hashable, Sendable, Codable {
        /// Waiting for, or held by, a receiver.
        case active
        /// Set aside by ``MessageBroker/defer(_:)``; received again only by sequence number.
        case deferred
        /// Invisible until its scheduled enqueue time.
        case scheduled
    }

    /// The message as sent.
    public var message: Message
    /// The entity the message was received or peeked from (a dead-letter path for dead letters).
    public var entity: EntityPath
    /// Strictly increasing per entity, never reused.
    public var sequenceNumber: Int64
    /// When the broker accepted the message (for a scheduled message: its scheduled time).
    public var enqueuedTime: Date
    /// How many times the message has been locked by a receive.
    public var deliveryCount: Int
    /// The message's state.
    public var state: State
    /// The token that settles this delivery; `nil` for peeked and receive-and-delete messages.
    public var lockToken: LockToken?
    /// When the lock expires, as wall-clock time for display; expiry itself follows the broker's monotonic clock.
    public var lockedUntil: Date?
    /// When the message expires, if it has a time-to-live.
    public var expiresAt: Date?
    /// Why a dead letter was dead-lettered (`MaxDeliveryCountExceeded`, `TTLExpired`, or the receiver's reason).
    public var deadLetterReason: String?
    /// The dead-lettering receiver's description.
    public var deadLetterDescription: String?

    /// Creates a received message; stores and clients build these.
    public init(
        message: Message, entity: EntityPath, sequenceNumber: Int64, enqueuedTime: Date, deliveryCount: Int,
        state: State = .active, lockToken: LockToken? = nil, lockedUntil: Date? = nil, expiresAt: Date? = nil,
        deadLetterReason: String? = nil, deadLetterDescription: String? = nil
    ) {
        self.message = message
        self.entity = entity
        self.sequenceNumber = sequenceNumber
        self.enqueuedTime = enqueuedTime
        self.deliveryCount = deliveryCount
        self.state = state
        self.lockToken = lockToken
        self.lockedUntil = lockedUntil
        self.expiresAt = expiresAt
        self.deadLetterReason = deadLetterReason
        self.deadLetterDescription = deadLetterDescription
    }
}

/// The proof that a receiver holds the lock of one delivery of one message.
///
/// Every delivery gets a fresh token (GUARANTEES.md §4.13): a token of an earlier delivery fails with
/// ``HeraldError/Code/lockLost`` even when the message is locked again by someone else.
public struct LockToken: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The entity the message was received from.
    public let entity: EntityPath
    /// The message's sequence number in that entity.
    public let sequenceNumber: Int64
    /// The random part, fresh for every delivery.
    public let nonce: UUID

    /// Creates a token; stores create these when they lock a message.
    public init(entity: EntityPath, sequenceNumber: Int64, nonce: UUID) {
        self.entity = entity
        self.sequenceNumber = sequenceNumber
        self.nonce = nonce
    }

    public var description: String { "\(self.entity)#\(self.sequenceNumber)@\(self.nonce.uuidString)" }

    /// Hashes the sequence number and the nonce only: they tell nearly every two tokens apart, and
    /// hashing the entity path's strings as well was a measurable part of checking a batch of
    /// 100 settlements for repeats. Equality still compares the entity.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.sequenceNumber)
        hasher.combine(self.nonce)
    }
}

/// A receiver's exclusive hold on one session of a session-enabled queue or subscription.
public struct SessionLock: Hashable, Sendable, Codable {
    /// The queue or subscription.
    public let entity: EntityPath
    /// The session.
    public let sessionId: String
    /// The random part, fresh for every accept.
    public let nonce: UUID
    /// When the lock expires unless renewed (wall-clock time, for display).
    public var lockedUntil: Date

    /// Creates a session lock; stores create these when a session is accepted.
    public init(entity: EntityPath, sessionId: String, nonce: UUID, lockedUntil: Date) {
        self.entity = entity
        self.sessionId = sessionId
        self.nonce = nonce
        self.lockedUntil = lockedUntil
    }
}

/// What a send was acknowledged with.
public struct SendReceipt: Hashable, Sendable, Codable {
    /// The message's sequence number: new, or for a duplicate the original's. Herald's stores always
    /// set it; it is optional for stores that cannot tell a duplicate's original.
    public let sequenceNumber: Int64?
    /// Whether the send was recognised as a duplicate and not enqueued again.
    public let isDuplicate: Bool

    /// Creates a receipt.
    public init(sequenceNumber: Int64?, isDuplicate: Bool) {
        self.sequenceNumber = sequenceNumber
        self.isDuplicate = isDuplicate
    }
}

/// How many messages an entity holds, by state.
public struct EntityCounts: Hashable, Sendable, Codable {
    /// Visible and waiting for a receiver.
    public var active: Int
    /// Held by a receiver's lock.
    public var locked: Int
    /// Waiting for their scheduled time.
    public var scheduled: Int
    /// Deferred, waiting to be received by sequence number.
    public var deferred: Int
    /// In the dead-letter queue.
    public var deadLettered: Int

    /// Creates counts.
    public init(active: Int = 0, locked: Int = 0, scheduled: Int = 0, deferred: Int = 0, deadLettered: Int = 0) {
        self.active = active
        self.locked = locked
        self.scheduled = scheduled
        self.deferred = deferred
        self.deadLettered = deadLettered
    }
}

extension EntityCounts {
    /// Adds `count` messages of one state to the counts of `entity`. A queue or subscription
    /// counts the messages of its dead-letter queue as ``deadLettered``, whatever their state; its
    /// dead-letter queue counts them by state and has no dead letters of its own.
    ///
    /// - Parameters:
    ///   - count: How many messages are in this state.
    ///   - entity: The queue, subscription or dead-letter queue being counted.
    ///   - isDeadLetter: Whether the messages are in the dead-letter queue.
    ///   - isLocked: Whether a lock that has not expired holds them.
    ///   - isDeferred: Whether they are deferred.
    ///   - isScheduled: Whether they wait for a scheduled time still to come.
    public mutating func add(
        _ count: Int, of entity: EntityPath, isDeadLetter: Bool, isLocked: Bool, isDeferred: Bool, isScheduled: Bool
    ) {
        if isDeadLetter != entity.isDeadLetter {
            if isDeadLetter { self.deadLettered += count }
        } else if isLocked {
            self.locked += count
        } else if isDeferred {
            self.deferred += count
        } else if isScheduled {
            self.scheduled += count
        } else {
            self.active += count
        }
    }
}

/// Whether a receive locks messages or removes them at once.
public enum ReceiveMode: String, Hashable, Sendable, Codable {
    /// Lock, then settle with the token (at-least-once).
    case peekLock
    /// Remove on receipt (at-most-once: a crash of the receiver loses the message).
    case receiveAndDelete
}

/// The reasons the broker itself gives when it dead-letters a message.
public enum DeadLetterReason {
    /// The message was locked `maxDeliveryCount` times without being completed.
    public static let maxDeliveryCountExceeded = "MaxDeliveryCountExceeded"
    /// The message's time-to-live passed.
    public static let ttlExpired = "TTLExpired"
}
