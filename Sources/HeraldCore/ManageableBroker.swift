public import Foundation

/// What an operator does to a broker beyond sending and receiving: change an entity's options,
/// purge it, and act on its dead letters in bulk (GUARANTEES.md §6). Both of Herald's stores and
/// the HTTP client are manageable brokers; `HeraldConformance` states the semantics as tests.
public protocol ManageableBroker: MessageBroker {
    /// Changes the options of an existing queue, topic or subscription and returns the options in
    /// force from then on. Options left out of `change` keep their value; `requiresSession` cannot
    /// change.
    ///
    /// A new option applies to what happens after the change: a lock taken later lasts the new
    /// lock duration (locks held keep their expiry); a delivery counted later compares with the new
    /// maximum (a message whose count already reaches it is dead-lettered at its next receive); a
    /// message sent later gets the new default time-to-live and is checked against the new size
    /// limit and duplicate-detection window (messages stored keep their expiry, and ids remembered
    /// keep theirs).
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/entityNotFound``, or ``/HeraldCore/HeraldError/Code/invalidOption`` for an
    ///   option out of bounds or a change of `requiresSession` (nothing changes then).
    func updateOptions(of entity: EntityPath, _ change: EntityOptionsChange) async throws -> EntityOptions

    /// The rules of the subscription `subscription`, in the order they were added
    /// (GUARANTEES.md §3.2): a message sent to the topic is copied into the subscription when any
    /// rule's filter matches it; a subscription without rules receives nothing.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/entityNotFound``, or
    ///   ``/HeraldCore/HeraldError/Code/invalidArgument`` for a path that is not a subscription's.
    func rules(of subscription: EntityPath) async throws -> [SubscriptionRule]

    /// Adds `rule` to the subscription `subscription`. The rule takes part in the fan-out of the
    /// messages sent after the change commits; the messages already copied stay.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/entityAlreadyExists`` when the subscription has a
    ///   rule of that name, ``/HeraldCore/HeraldError/Code/invalidArgument`` when it has
    ///   ``/HeraldCore/HeraldLimits/maxRulesPerSubscription`` rules already,
    ///   ``/HeraldCore/HeraldError/Code/invalidName`` for a bad rule name, the filter's size errors,
    ///   or ``/HeraldCore/HeraldError/Code/entityNotFound``. Nothing changes then.
    func addRule(_ rule: SubscriptionRule, to subscription: EntityPath) async throws

    /// Removes the rule named `name` from the subscription `subscription`; from the next send on
    /// it copies nothing. Removing the last rule leaves a subscription that receives nothing.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/entityNotFound`` for a subscription without a rule
    ///   of that name (the message names the rule) or a missing subscription.
    func removeRule(named name: String, from subscription: EntityPath) async throws

    /// Deletes the messages of a queue or subscription that wait for a receiver: the active ones
    /// not locked now (those whose scheduled time has come, or whose abandon delay runs, included),
    /// up to the last sequence number assigned when the purge began (what arrives meanwhile stays).
    /// Locked, deferred and still-scheduled messages stay. On a dead-letter path it deletes the
    /// dead letters not locked now. Returns how many it deleted.
    ///
    /// A purge runs in steps of many messages, each its own transaction: one interrupted (by a
    /// crash) has deleted some of the messages and none twice; purging again deletes the rest.
    func purge(_ entity: EntityPath) async throws -> Int

    /// The last sequence number the queue or subscription assigned (0 before its first message);
    /// the same for its dead-letter queue. A topic's is the last of its sends.
    func lastSequenceNumber(of entity: EntityPath) async throws -> Int64

    /// Up to `maxCount` (1–1,000) sessions of the session queue or subscription `entity`, in id
    /// order, after the session id `after` (from the first when `nil`): every session with
    /// messages, a state, parking or a holder.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/entityNotFound``, ``/HeraldCore/HeraldError/Code/sessionNotEnabled`` for an
    ///   entity without sessions, ``/HeraldCore/HeraldError/Code/invalidArgument`` for a dead-letter path or a
    ///   count out of range.
    func sessions(of entity: EntityPath, after: String?, maxCount: Int) async throws -> [SessionInfo]

    /// Starts a bulk job that applies `action` to the dead letters of the queue or subscription
    /// `entity` that `selection` picks, and returns it.
    ///
    /// The selection is frozen when the job starts: the sequence numbers of the dead letters it
    /// matches then (or the ones it names), stored with the job in one transaction. The broker
    /// then works through them in steps, each a transaction that applies the action to a chunk
    /// and advances the job's progress together, so that a crash loses no step and repeats none:
    /// a broker that opens the store again resumes the jobs still running. A dead letter that is
    /// gone when its turn comes (resubmitted, purged or completed meanwhile) counts as
    /// ``/HeraldCore/BulkJob/notFound``; one that a move's target refuses (too large, no session id for a
    /// session entity) stays and counts as ``/HeraldCore/BulkJob/failed``.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/entityNotFound`` for a missing entity or move target,
    ///   ``/HeraldCore/HeraldError/Code/invalidArgument`` for a topic or a dead-letter path as `entity`, or a
    ///   move target that is not a queue or topic.
    func startBulkJob(_ action: DeadLetterAction, on entity: EntityPath, selection: DeadLetterSelection) async throws -> BulkJob

    /// The job with `id`.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/jobNotFound``.
    func bulkJob(_ id: String) async throws -> BulkJob

    /// The jobs the broker keeps, newest first: every running job, and finished ones for a week.
    func bulkJobs() async throws -> [BulkJob]

    /// Stops a running job after the step in progress; what it did stays done. A finished job
    /// is returned as it is.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/jobNotFound``.
    func cancelBulkJob(_ id: String) async throws -> BulkJob
}

extension ManageableBroker {
    /// Waits until the job `id` has finished (polling every `interval`) and returns it.
    ///
    /// - Parameters:
    ///   - id: The job.
    ///   - interval: How long to wait between looks.
    ///   - progress: Called with the job after each look.
    public func waitForBulkJob(
        _ id: String, interval: Duration = .milliseconds(20), progress: (BulkJob) -> Void = { _ in }
    ) async throws -> BulkJob {
        while true {
            let job = try await self.bulkJob(id)
            progress(job)
            if job.isFinished { return job }
            try await Task.sleep(for: interval)
        }
    }
}

// MARK: - Options

/// A change to an entity's options (``ManageableBroker/updateOptions(of:_:)``): each field set
/// replaces the option, each left `nil` keeps it.
public struct EntityOptionsChange: Hashable, Sendable {
    /// A new ``EntityOptions/lockDuration``.
    public var lockDuration: Duration?
    /// A new ``EntityOptions/maxDeliveryCount``.
    public var maxDeliveryCount: Int?
    /// A new ``EntityOptions/defaultTimeToLive``; `.some(nil)` removes it.
    public var defaultTimeToLive: Duration??
    /// A new ``EntityOptions/deadLetterOnExpiration``.
    public var deadLetterOnExpiration: Bool?
    /// A new ``EntityOptions/duplicateDetectionWindow``; `.some(nil)` turns detection off.
    public var duplicateDetectionWindow: Duration??
    /// A new ``EntityOptions/maxMessageSize``.
    public var maxMessageSize: Int?
    /// A new ``EntityOptions/parkSessionOnDeadLetter``.
    public var parkSessionOnDeadLetter: Bool?
    /// ``EntityOptions/requiresSession`` cannot change: when set, it must equal the entity's.
    public var requiresSession: Bool?

    /// Creates a change; every option left out keeps its value.
    public init(
        lockDuration: Duration? = nil,
        maxDeliveryCount: Int? = nil,
        defaultTimeToLive: Duration?? = nil,
        deadLetterOnExpiration: Bool? = nil,
        duplicateDetectionWindow: Duration?? = nil,
        maxMessageSize: Int? = nil,
        parkSessionOnDeadLetter: Bool? = nil,
        requiresSession: Bool? = nil
    ) {
        self.lockDuration = lockDuration
        self.maxDeliveryCount = maxDeliveryCount
        self.defaultTimeToLive = defaultTimeToLive
        self.deadLetterOnExpiration = deadLetterOnExpiration
        self.duplicateDetectionWindow = duplicateDetectionWindow
        self.maxMessageSize = maxMessageSize
        self.parkSessionOnDeadLetter = parkSessionOnDeadLetter
        self.requiresSession = requiresSession
    }

    /// `options` with the change applied, checked.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidOption`` for an option out of bounds, or a change of
    ///   `requiresSession`.
    public func applied(to options: EntityOptions) throws(HeraldError) -> EntityOptions {
        if let requiresSession = self.requiresSession, requiresSession != options.requiresSession {
            throw HeraldError(
                .invalidOption, "requiresSession cannot change after the entity is created (it is \(options.requiresSession)); create another entity")
        }
        var result = options
        if let value = self.lockDuration { result.lockDuration = value }
        if let value = self.maxDeliveryCount { result.maxDeliveryCount = value }
        if let value = self.defaultTimeToLive { result.defaultTimeToLive = value }
        if let value = self.deadLetterOnExpiration { result.deadLetterOnExpiration = value }
        if let value = self.duplicateDetectionWindow { result.duplicateDetectionWindow = value }
        if let value = self.maxMessageSize { result.maxMessageSize = value }
        if let value = self.parkSessionOnDeadLetter { result.parkSessionOnDeadLetter = value }
        try result.validate()
        return result
    }
}

// MARK: - Dead letters

/// What a bulk job does with each dead letter it selected.
public enum DeadLetterAction: Hashable, Sendable, CustomStringConvertible {
    /// Back to its queue or subscription, as ``MessageBroker/resubmit(_:)`` does: its original
    /// sequence number, a delivery count of zero, its session unparked.
    case resubmit
    /// Out of the dead-letter queue and into the queue or topic `to`, in the same transaction: a
    /// new message there with a new sequence number and a delivery count of zero, its body,
    /// properties and ids unchanged, its time-to-live counted again from the move. A topic copies
    /// it to its matching subscriptions. A move is not a client's send, so duplicate detection
    /// neither drops nor remembers it: it happens once.
    case move(to: EntityPath)
    /// Deleted.
    case purge

    /// `resubmit`, `move`, or `purge`: the action's name, as the wire and the stores spell it.
    public var name: String {
        switch self {
        case .resubmit: "resubmit"
        case .move: "move"
        case .purge: "purge"
        }
    }

    /// The move's target; `nil` for the other actions.
    public var target: EntityPath? {
        if case .move(let target) = self { return target }
        return nil
    }

    /// The action named `name`, with `target` for a move.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` for an unknown name, a move without a target
    ///   or another action with one.
    public init(name: String, target: EntityPath?) throws(HeraldError) {
        switch (name, target) {
        case ("resubmit", nil): self = .resubmit
        case ("purge", nil): self = .purge
        case ("move", let target?): self = .move(to: target)
        case ("move", nil): throw HeraldError(.invalidArgument, "a move needs a target queue or topic")
        case ("resubmit", _?), ("purge", _?): throw HeraldError(.invalidArgument, "only a move takes a target")
        default: throw HeraldError(.invalidArgument, "unknown action '\(name.prefix(100))': resubmit, move or purge")
        }
    }

    public var description: String {
        if case .move(let target) = self { return "move to \(target)" }
        return self.name
    }
}

/// Which dead letters match: every condition set must hold; the empty filter matches all.
public struct DeadLetterFilter: Hashable, Sendable {
    /// The dead-letter reason must equal this.
    public var reason: String?
    /// The message's subject must equal this.
    public var subject: String?
    /// The body, read as UTF-8 text, must contain this, ignoring case.
    public var bodyContains: String?
    /// Each of these application properties must be present with an equal value.
    public var properties: [String: PropertyValue]
    /// The message must have been enqueued at this time or later.
    public var enqueuedFrom: Date?
    /// The message must have been enqueued before this time.
    public var enqueuedBefore: Date?

    /// Creates a filter; with no arguments, one that matches every dead letter.
    public init(
        reason: String? = nil, subject: String? = nil, bodyContains: String? = nil, properties: [String: PropertyValue] = [:],
        enqueuedFrom: Date? = nil, enqueuedBefore: Date? = nil
    ) {
        self.reason = reason
        self.subject = subject
        self.bodyContains = bodyContains
        self.properties = properties
        self.enqueuedFrom = enqueuedFrom
        self.enqueuedBefore = enqueuedBefore
    }

    /// The filter that matches every dead letter.
    public static let all = DeadLetterFilter()

    /// Whether the filter sets no condition.
    public var isEmpty: Bool { self == .all }

    /// Whether `received` passes the filter.
    public func matches(_ received: ReceivedMessage) -> Bool {
        let message = received.message
        if let reason = self.reason, received.deadLetterReason != reason { return false }
        if let subject = self.subject, message.subject != subject { return false }
        for (key, value) in self.properties where message.applicationProperties[key] != value { return false }
        if let from = self.enqueuedFrom, received.enqueuedTime < from { return false }
        if let before = self.enqueuedBefore, received.enqueuedTime >= before { return false }
        if let text = self.bodyContains, !text.isEmpty {
            let body = String(decoding: message.body, as: UTF8.self)
            if body.range(of: text, options: [.caseInsensitive]) == nil { return false }
        }
        return true
    }
}

/// Which dead letters a bulk job acts on, frozen when it starts.
public enum DeadLetterSelection: Hashable, Sendable {
    /// Every dead letter that matches the filter when the job starts.
    case matching(DeadLetterFilter)
    /// The dead letters with these sequence numbers (each at most once, in the order given).
    case sequenceNumbers([Int64])

    /// Every dead letter the queue or subscription holds when the job starts.
    public static let all = DeadLetterSelection.matching(.all)
}

/// A bulk action on dead letters and how far it got (``ManageableBroker/startBulkJob(_:on:selection:)``).
public struct BulkJob: Hashable, Sendable, Identifiable {
    /// Where a job stands.
    public enum State: String, Hashable, Sendable, CaseIterable {
        /// Being worked through, step by step; resumed after a restart.
        case running
        /// Every selected dead letter was looked at.
        case completed
        /// Stopped by ``ManageableBroker/cancelBulkJob(_:)``.
        case cancelled
        /// Stopped because it could not go on: its entity or a move's target was deleted.
        case failed
    }

    /// The job's id.
    public let id: String
    /// The queue or subscription whose dead letters the job acts on.
    public var entity: EntityPath
    /// What it does with each.
    public var action: DeadLetterAction
    /// Where it stands.
    public var state: State
    /// How many dead letters the selection froze.
    public var total: Int
    /// How many of them the job has looked at.
    public var processed: Int
    /// How many it resubmitted, moved or purged.
    public var applied: Int
    /// How many were no longer dead letters when their turn came.
    public var notFound: Int
    /// How many a move's target refused; they stay in the dead-letter queue.
    public var failed: Int
    /// Why the last refusal happened, or why the job failed.
    public var failure: String?
    /// When the job started.
    public var createdAt: Date
    /// When it last made progress or changed state.
    public var updatedAt: Date

    /// Creates a job record; stores and clients build these.
    public init(
        id: String, entity: EntityPath, action: DeadLetterAction, state: State, total: Int, processed: Int = 0, applied: Int = 0,
        notFound: Int = 0, failed: Int = 0, failure: String? = nil, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.entity = entity
        self.action = action
        self.state = state
        self.total = total
        self.processed = processed
        self.applied = applied
        self.notFound = notFound
        self.failed = failed
        self.failure = failure
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Whether the job will make no more progress.
    public var isFinished: Bool { self.state != .running }
}
