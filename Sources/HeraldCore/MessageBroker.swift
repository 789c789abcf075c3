public import Foundation

/// The contract every Herald store implements: the embedded SQLite broker, the PostgreSQL broker
/// and the HTTP client alike. `HeraldConformance` states its semantics as tests.
///
/// Every method throws ``/HeraldCore/HeraldError``. Every method that changes state returns only once the
/// change is durable (GUARANTEES.md §4.1).
public protocol MessageBroker: Sendable {
    // MARK: Entities

    /// Creates a queue. Throws ``/HeraldCore/HeraldError/Code/entityAlreadyExists`` when a queue or topic has that name.
    func createQueue(_ name: String, options: EntityOptions) async throws
    /// Deletes a queue with its messages and dead letters.
    func deleteQueue(_ name: String) async throws
    /// Every queue, by name.
    func listQueues() async throws -> [EntityDescription]
    /// Creates a topic. Queues and topics share one namespace.
    func createTopic(_ name: String, options: EntityOptions) async throws
    /// Deletes a topic with its subscriptions and their messages.
    func deleteTopic(_ name: String) async throws
    /// Every topic, by name.
    func listTopics() async throws -> [EntityDescription]
    /// Creates a subscription of `topic` that receives a copy of every later message that matches `filter`.
    func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws
    /// Deletes a subscription with its messages and dead letters.
    func deleteSubscription(_ name: String, topic: String) async throws
    /// Every subscription of `topic`, by name.
    func listSubscriptions(topic: String) async throws -> [SubscriptionDescription]

    // MARK: Sending

    /// Sends `messages` atomically to a queue or topic: all are enqueued, with consecutive sequence
    /// numbers, or none (GUARANTEES.md §4.1). At most ``/HeraldCore/HeraldLimits/maxBatchCount`` messages.
    ///
    /// A message with `scheduledEnqueueTime` in the future is scheduled. Duplicates (§4.5, §4.9)
    /// are acknowledged with `isDuplicate` and not enqueued again. A topic copies each message into
    /// every matching subscription in the same transaction.
    func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt]
    /// Cancels scheduled messages of a queue or topic by the sequence numbers their sends returned
    /// (GUARANTEES.md §4.7), 1 to ``/HeraldCore/HeraldLimits/maxCancelCount`` of them
    /// (``/HeraldCore/HeraldError/Code/invalidArgument`` otherwise), all or none: throws ``/HeraldCore/HeraldError/Code/messageNotFound``
    /// (and cancels none) when one is not scheduled, whose message says why
    /// (``/HeraldCore/HeraldError/Uncancellable``). A message is cancellable until its scheduled
    /// time and active from then on, whether or not anyone has received or counted it yet.
    ///
    /// For a topic, the numbers are the topic's (what its send returned, not the sequence numbers
    /// of the copies in its subscriptions): cancelling one deletes, in one transaction, the copy
    /// of that message in every subscription that took it, so that no subscription sees it. As in
    /// Service Bus, a scheduled message that no subscription's filter took is cancelled too until
    /// its time (Service Bus holds it in the topic and filters it then; Herald copies at the send
    /// and remembers that nobody took it). Once its time has come the message is refused as a
    /// queue's is, whether its copies are still waiting in the subscriptions or gone. A message
    /// scheduled to a topic by a Herald older than this (its copies do not record the topic's
    /// number) cannot be cancelled: it is refused, and comes at its time.
    func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws

    // MARK: Receiving

    /// Receives up to `maxCount` messages in sequence-number order, waiting up to `maxWaitTime`
    /// for the first. In ``/HeraldCore/ReceiveMode/peekLock`` each message is locked for the entity's lock
    /// duration and its delivery count incremented; a message whose count would exceed
    /// `maxDeliveryCount` goes to the dead-letter queue instead. Session entities need
    /// ``receive(from:maxCount:maxWaitTime:)`` with an accepted session.
    func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage]
    /// Receives as ``receive(from:maxCount:maxWaitTime:mode:)`` does, but stops before the
    /// messages' bodies and application properties together pass `maxBytes`; the first message
    /// is delivered whatever its size. A server uses it to keep each answer within its budget.
    func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage]
    /// Receives (and locks) deferred messages by sequence number, incrementing each one's delivery
    /// count; one whose count would exceed `maxDeliveryCount` goes to the dead-letter queue instead
    /// and is left out of the result. Throws ``/HeraldCore/HeraldError/Code/messageNotFound`` when one is not
    /// deferred (or is named twice), and receives none then. The deferred messages of a session
    /// entity are received through their session, with
    /// ``receiveDeferred(from:sequenceNumbers:)-(SessionLock,_)``: here they are
    /// ``/HeraldCore/HeraldError/Code/sessionRequired``.
    func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage]
    /// Reads up to `maxCount` messages from `fromSequenceNumber` on, in any state, without locking them.
    func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage]

    // MARK: Settlement
    //
    // Each settlement answers ``SettlementOutcome/settled``, or ``SettlementOutcome/alreadySettled``
    // when the same token already settled the message the same way within
    // ``HeraldLimits/settlementMemory`` (a retry after an unknown outcome).

    /// Removes the message. Throws ``/HeraldCore/HeraldError/Code/lockLost`` for an expired, unknown or superseded token.
    @discardableResult
    func complete(_ token: LockToken) async throws -> SettlementOutcome
    /// Completes up to ``/HeraldCore/HeraldLimits/maxBatchCount`` messages in one transaction: all or, when one
    /// token is lost, none. Tokens that already completed their messages count as completed; the
    /// answer is ``/HeraldCore/SettlementOutcome/alreadySettled`` only when every token had.
    @discardableResult
    func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome
    /// Releases the lock; the message becomes visible again after `delay`.
    @discardableResult
    func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome
    /// Gives the message back unprocessed: unlocked and visible at once, and this delivery not
    /// counted (a receiver that took more than it could handle, as AMQP's `released`), so that
    /// releases never bring a message to its maximum delivery count.
    @discardableResult
    func release(_ token: LockToken) async throws -> SettlementOutcome
    /// Sets the message aside; only ``receiveDeferred(from:sequenceNumbers:)-(EntityPath,_)`` (or, for
    /// a message of a session, ``receiveDeferred(from:sequenceNumbers:)-(SessionLock,_)``) receives it again.
    @discardableResult
    func `defer`(_ token: LockToken) async throws -> SettlementOutcome
    /// Moves the message to the dead-letter queue with a reason.
    @discardableResult
    func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome
    /// Extends the lock by the entity's lock duration; returns the new expiry.
    func renewLock(_ token: LockToken) async throws -> Date

    // MARK: Sessions

    /// Accepts the session `sessionId`, or with `nil` the next session that has messages and no
    /// holder, waiting up to `maxWaitTime`. Throws ``/HeraldCore/HeraldError/Code/sessionCannotBeLocked``
    /// when the named session is held by another receiver (a conflict, answered at once), and
    /// ``/HeraldCore/HeraldError/Code/noSessionAvailable`` when, with `nil`, no session became available
    /// within `maxWaitTime` (nothing to do yet, like an empty receive).
    func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock
    /// Receives up to `maxCount` messages of the session, strictly in order, locked while the session lock holds.
    func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage]
    /// Receives deferred messages of the session by sequence number, as Service Bus's session
    /// receivers do: each is locked as the session's other messages are, while the session lock
    /// holds (settled with the session held; free again for the next holder once the session lock
    /// is released or lost, and still deferred), and its delivery count incremented; one whose
    /// count would exceed `maxDeliveryCount` goes to the dead-letter queue instead and is left out
    /// of the result. A parked session (GUARANTEES.md §4.12) still gives its deferred messages by
    /// number. All or nothing: when one number fails, none is received.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/sessionLockLost`` when `session` is not the current
    ///   holder of its session; ``/HeraldCore/HeraldError/Code/messageNotFound`` when a number is not
    ///   a deferred, unlocked message of this session (another session's, one not deferred, one
    ///   unknown) or is named twice; ``/HeraldCore/HeraldError/Code/invalidArgument`` for no number or
    ///   more than ``/HeraldCore/HeraldLimits/maxReceiveCount``.
    func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage]
    /// The session's state blob.
    func sessionState(_ session: SessionLock) async throws -> Data?
    /// Replaces the session's state blob.
    func setSessionState(_ state: Data?, for session: SessionLock) async throws
    /// Extends the session lock by the entity's lock duration.
    func renewSessionLock(_ session: SessionLock) async throws -> SessionLock
    /// Gives up the session; its unsettled messages become visible to the next holder.
    func releaseSession(_ session: SessionLock) async throws

    // MARK: Dead letters and counts

    /// Moves a dead letter, received from a dead-letter queue with `token`, back to its queue or
    /// subscription with its original sequence number and a delivery count of zero. A parked
    /// session (GUARANTEES.md §4.12) resumes with it. A settlement: a retry answers as the others do.
    @discardableResult
    func resubmit(_ token: LockToken) async throws -> SettlementOutcome
    /// How many messages the queue or subscription holds, by state.
    func counts(of entity: EntityPath) async throws -> EntityCounts
}

extension MessageBroker {
    /// Receives without a byte budget (a broker that cannot apply one receives `maxCount`).
    public func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxWaitTime: maxWaitTime, mode: mode)
    }

    /// Sends one message.
    @discardableResult
    public func send(_ message: Message, to entity: EntityPath) async throws -> SendReceipt {
        try await self.send([message], to: entity)[0]
    }

    /// Schedules `message` to become visible at `time`; returns its sequence number, which
    /// ``cancelScheduled(_:in:)`` takes.
    public func schedule(_ message: Message, at time: Date, to entity: EntityPath) async throws -> Int64 {
        var message = message
        message.scheduledEnqueueTime = time
        guard let sequenceNumber = try await self.send([message], to: entity)[0].sequenceNumber else {
            throw HeraldError(.invalidArgument, "the scheduled message was a duplicate of one the broker no longer remembers")
        }
        return sequenceNumber
    }

    /// Receives up to `maxCount` messages in peek-lock mode without waiting.
    public func receive(from entity: EntityPath, maxCount: Int = 1, maxWaitTime: Duration = .zero) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxWaitTime: maxWaitTime, mode: .peekLock)
    }

    /// A store that cannot take a delivery back abandons instead: the delivery stays counted.
    @discardableResult
    public func release(_ token: LockToken) async throws -> SettlementOutcome {
        try await self.abandon(token, delay: nil)
    }

    /// Abandons without delay.
    @discardableResult
    public func abandon(_ token: LockToken) async throws -> SettlementOutcome {
        try await self.abandon(token, delay: nil)
    }

    /// Creates a queue with default options.
    public func createQueue(_ name: String) async throws {
        try await self.createQueue(name, options: EntityOptions())
    }

    /// Creates a topic with default options.
    public func createTopic(_ name: String) async throws {
        try await self.createTopic(name, options: EntityOptions())
    }

    /// Creates a subscription with default options.
    public func createSubscription(_ name: String, topic: String, filter: SubscriptionFilter = .all) async throws {
        try await self.createSubscription(name, topic: topic, options: EntityOptions(), filter: filter)
    }
}
