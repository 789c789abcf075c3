import Foundation
public import HeraldCore

// The bodies of the operator's routes (GUARANTEES.md §6): options updates, purges, one message,
// dead-letter searches and summaries, and bulk jobs.

extension WireOptions {
    /// The options as a change (`PATCH` of a queue, topic or subscription): a field left out keeps
    /// its option; `defaultTimeToLiveMs` 0 removes the default time-to-live and
    /// `duplicateDetectionWindowMs` 0 turns duplicate detection off.
    public func change() -> EntityOptionsChange {
        EntityOptionsChange(
            lockDuration: self.lockDurationMs.map { .milliseconds($0) },
            maxDeliveryCount: self.maxDeliveryCount,
            defaultTimeToLive: self.defaultTimeToLiveMs.map { $0 == 0 ? nil : .milliseconds($0) },
            deadLetterOnExpiration: self.deadLetterOnExpiration,
            duplicateDetectionWindow: self.duplicateDetectionWindowMs.map { $0 == 0 ? nil : .milliseconds($0) },
            maxMessageSize: self.maxMessageSize,
            parkSessionOnDeadLetter: self.parkSessionOnDeadLetter,
            requiresSession: self.requiresSession
        )
    }

    /// The wire form of `change` (the inverse of ``change()``).
    public init(_ change: EntityOptionsChange) {
        self.init(EntityOptions())
        self.lockDurationMs = change.lockDuration?.milliseconds
        self.maxDeliveryCount = change.maxDeliveryCount
        self.defaultTimeToLiveMs = change.defaultTimeToLive.map { $0?.milliseconds ?? 0 }
        self.deadLetterOnExpiration = change.deadLetterOnExpiration
        self.duplicateDetectionWindowMs = change.duplicateDetectionWindow.map { $0?.milliseconds ?? 0 }
        self.maxMessageSize = change.maxMessageSize
        self.parkSessionOnDeadLetter = change.parkSessionOnDeadLetter
        self.requiresSession = change.requiresSession
    }
}

/// The answer of `POST /v1/messages/purge`.
public struct PurgeResponse: Codable, Sendable, Hashable {
    /// How many messages were deleted.
    public var purged: Int
    /// Creates the body from its fields.
    public init(purged: Int) { self.purged = purged }
}

/// `POST /v1/messages/get`: one message by sequence number.
public struct GetMessageRequest: Codable, Sendable, Hashable {
    /// The queue, subscription or dead-letter queue.
    public var entity: WireEntity
    /// The message's sequence number.
    public var sequenceNumber: Int64
    /// Creates the body from its fields.
    public init(entity: WireEntity, sequenceNumber: Int64) {
        self.entity = entity
        self.sequenceNumber = sequenceNumber
    }
}

/// Which dead letters match; every condition set must hold, none matches all.
public struct WireDeadLetterFilter: Codable, Sendable, Hashable {
    /// The dead-letter reason.
    public var reason: String?
    /// The subject.
    public var subject: String?
    /// Text the body (as UTF-8) contains, ignoring case.
    public var bodyContains: String?
    /// Application properties that must all match.
    public var properties: [String: WireProperty]?
    /// Enqueued at or after this time, in milliseconds since 1970.
    public var enqueuedFrom: Int64?
    /// Enqueued before this time, in milliseconds since 1970.
    public var enqueuedBefore: Int64?

    /// Creates the wire form of `filter`.
    public init(_ filter: DeadLetterFilter) {
        self.reason = filter.reason
        self.subject = filter.subject
        self.bodyContains = filter.bodyContains
        self.properties = filter.properties.isEmpty ? nil : filter.properties.mapValues(WireProperty.init)
        self.enqueuedFrom = filter.enqueuedFrom?.millisecondsSince1970
        self.enqueuedBefore = filter.enqueuedBefore?.millisecondsSince1970
    }

    /// The filter.
    public func filter() throws(HeraldError) -> DeadLetterFilter {
        DeadLetterFilter(
            reason: self.reason, subject: self.subject, bodyContains: self.bodyContains, properties: try WireProperty.properties(self.properties),
            enqueuedFrom: self.enqueuedFrom.map(Date.init(millisecondsSince1970:)),
            enqueuedBefore: self.enqueuedBefore.map(Date.init(millisecondsSince1970:))
        )
    }
}

/// `POST /v1/dead-letters/search`.
public struct DeadLetterSearchRequest: Codable, Sendable, Hashable {
    /// The queue or subscription whose dead letters are searched.
    public var entity: WireEntity
    /// Which match; all when absent.
    public var filter: WireDeadLetterFilter?
    /// The first sequence number to look at; the start when absent.
    public var fromSequenceNumber: Int64?
    /// The most dead letters to return, 1–1,000; 100 when absent.
    public var maxCount: Int?
    /// Creates the body from its fields.
    public init(entity: WireEntity, filter: WireDeadLetterFilter?, fromSequenceNumber: Int64?, maxCount: Int?) {
        self.entity = entity
        self.filter = filter
        self.fromSequenceNumber = fromSequenceNumber
        self.maxCount = maxCount
    }
}

/// The answer of `POST /v1/dead-letters/search`.
public struct DeadLetterSearchResponse: Codable, Sendable, Hashable {
    /// The matching dead letters, in sequence-number order.
    public var messages: [WireReceivedMessage]
    /// Where the next page starts (`fromSequenceNumber`); absent at the end of the dead-letter queue.
    public var nextSequenceNumber: Int64?
    /// Creates the body from its fields.
    public init(messages: [WireReceivedMessage], nextSequenceNumber: Int64?) {
        self.messages = messages
        self.nextSequenceNumber = nextSequenceNumber
    }
}

/// `POST /v1/dead-letters/summary`.
public struct DeadLetterSummaryRequest: Codable, Sendable, Hashable {
    /// The queue or subscription whose dead letters are summarized.
    public var entity: WireEntity
    /// Which count; all when absent.
    public var filter: WireDeadLetterFilter?
    /// Creates the body from its fields.
    public init(entity: WireEntity, filter: WireDeadLetterFilter?) {
        self.entity = entity
        self.filter = filter
    }
}

/// One value of a grouping and how many dead letters have it.
public struct WireGroup: Codable, Sendable, Hashable {
    /// The reason or subject; absent for dead letters without one.
    public var value: String?
    /// How many.
    public var count: Int
    /// Creates the body from its fields.
    public init(value: String?, count: Int) {
        self.value = value
        self.count = count
    }
}

/// The answer of `POST /v1/dead-letters/summary`.
public struct DeadLetterSummaryResponse: Codable, Sendable, Hashable {
    /// How many dead letters match.
    public var total: Int
    /// By reason, most frequent first.
    public var reasons: [WireGroup]
    /// By subject, most frequent first.
    public var subjects: [WireGroup]
    /// When the oldest was enqueued, in milliseconds since 1970; absent without dead letters.
    public var oldestEnqueuedTime: Int64?
    /// When the newest was enqueued, in milliseconds since 1970; absent without dead letters.
    public var newestEnqueuedTime: Int64?

    /// Creates the wire form of `summary`.
    public init(_ summary: DeadLetterSummary) {
        self.total = summary.total
        self.reasons = summary.reasons.map { WireGroup(value: $0.value, count: $0.count) }
        self.subjects = summary.subjects.map { WireGroup(value: $0.value, count: $0.count) }
        self.oldestEnqueuedTime = summary.oldestEnqueuedTime?.millisecondsSince1970
        self.newestEnqueuedTime = summary.newestEnqueuedTime?.millisecondsSince1970
    }

    /// The summary.
    public var summary: DeadLetterSummary {
        DeadLetterSummary(
            total: self.total, reasons: self.reasons.map { .init(value: $0.value, count: $0.count) },
            subjects: self.subjects.map { .init(value: $0.value, count: $0.count) },
            oldestEnqueuedTime: self.oldestEnqueuedTime.map(Date.init(millisecondsSince1970:)),
            newestEnqueuedTime: self.newestEnqueuedTime.map(Date.init(millisecondsSince1970:))
        )
    }
}

/// `POST /v1/dead-letters/jobs`: a bulk job on the dead letters of a queue or subscription.
public struct StartBulkJobRequest: Codable, Sendable, Hashable {
    /// The queue or subscription.
    public var entity: WireEntity
    /// `resubmit`, `move` or `purge`.
    public var action: String
    /// A move's queue or topic.
    public var target: WireEntity?
    /// The dead letters that match when the job starts; all when neither this nor `sequenceNumbers` is given.
    public var filter: WireDeadLetterFilter?
    /// The dead letters with these sequence numbers, instead of a filter.
    public var sequenceNumbers: [Int64]?

    /// Creates the body from its fields.
    public init(entity: WireEntity, action: String, target: WireEntity?, filter: WireDeadLetterFilter?, sequenceNumbers: [Int64]?) {
        self.entity = entity
        self.action = action
        self.target = target
        self.filter = filter
        self.sequenceNumbers = sequenceNumbers
    }

    /// The wire form of a job's start.
    public init(_ action: DeadLetterAction, on entity: EntityPath, selection: DeadLetterSelection) {
        self.entity = WireEntity(entity)
        self.action = action.name
        self.target = action.target.map(WireEntity.init)
        switch selection {
        case .matching(let filter): self.filter = filter.isEmpty ? nil : WireDeadLetterFilter(filter)
        case .sequenceNumbers(let numbers): self.sequenceNumbers = numbers
        }
    }

    /// The action and the selection.
    public func job() throws(HeraldError) -> (action: DeadLetterAction, selection: DeadLetterSelection) {
        let action = try DeadLetterAction(name: self.action, target: try self.target?.path())
        switch (self.filter, self.sequenceNumbers) {
        case (let filter?, nil): return (action, .matching(try filter.filter()))
        case (nil, let numbers?): return (action, .sequenceNumbers(numbers))
        case (nil, nil): return (action, .all)
        default: throw HeraldError(.invalidArgument, "select dead letters by filter or by sequenceNumbers, not both")
        }
    }
}

/// A bulk job and how far it got.
public struct WireBulkJob: Codable, Sendable, Hashable {
    /// The job's id.
    public var id: String
    /// The queue or subscription whose dead letters it acts on.
    public var entity: WireEntity
    /// `resubmit`, `move` or `purge`.
    public var action: String
    /// A move's queue or topic.
    public var target: WireEntity?
    /// `running`, `completed`, `cancelled` or `failed`.
    public var state: String
    /// How many dead letters the selection froze.
    public var total: Int
    /// How many the job looked at.
    public var processed: Int
    /// How many it resubmitted, moved or purged.
    public var applied: Int
    /// How many were gone when their turn came.
    public var notFound: Int
    /// How many a move's target refused (they stay).
    public var failed: Int
    /// Why the last refusal happened, or why the job failed.
    public var failure: String?
    /// When the job started, in milliseconds since 1970.
    public var createdAt: Int64
    /// When it last made progress, in milliseconds since 1970.
    public var updatedAt: Int64

    /// Creates the wire form of `job`.
    public init(_ job: BulkJob) {
        self.id = job.id
        self.entity = WireEntity(job.entity)
        self.action = job.action.name
        self.target = job.action.target.map(WireEntity.init)
        self.state = job.state.rawValue
        self.total = job.total
        self.processed = job.processed
        self.applied = job.applied
        self.notFound = job.notFound
        self.failed = job.failed
        self.failure = job.failure
        self.createdAt = job.createdAt.millisecondsSince1970
        self.updatedAt = job.updatedAt.millisecondsSince1970
    }

    /// The job.
    public func job() throws(HeraldError) -> BulkJob {
        guard let state = BulkJob.State(rawValue: self.state) else { throw HeraldError(.invalidArgument, "unknown job state '\(self.state)'") }
        return BulkJob(
            id: self.id, entity: try self.entity.path(), action: try DeadLetterAction(name: self.action, target: try self.target?.path()),
            state: state, total: self.total, processed: self.processed, applied: self.applied, notFound: self.notFound, failed: self.failed,
            failure: self.failure, createdAt: Date(millisecondsSince1970: self.createdAt), updatedAt: Date(millisecondsSince1970: self.updatedAt)
        )
    }
}

/// The answer of `GET /v1/dead-letters/jobs`.
public struct BulkJobList: Codable, Sendable, Hashable {
    /// The jobs, newest first.
    public var jobs: [WireBulkJob]
    /// Creates the body from its fields.
    public init(jobs: [WireBulkJob]) { self.jobs = jobs }
}

/// `POST /v1/sessions/list`: the sessions of a session queue or subscription, a page at a time.
public struct ListSessionsRequest: Codable, Sendable, Hashable {
    /// The session queue or subscription.
    public var entity: WireEntity
    /// List the sessions whose ids come after this one; from the first when absent.
    public var after: String?
    /// The most sessions to return, 1–1,000; 100 when absent.
    public var maxCount: Int?
    /// Creates the body from its fields.
    public init(entity: WireEntity, after: String?, maxCount: Int?) {
        self.entity = entity
        self.after = after
        self.maxCount = maxCount
    }
}

/// One session, as `POST /v1/sessions/list` describes it.
public struct WireSessionInfo: Codable, Sendable, Hashable {
    /// The session's id.
    public var sessionId: String
    /// How many messages of the session the entity holds (dead letters not included).
    public var messageCount: Int
    /// Whether a receiver holds the session now.
    public var isLocked: Bool
    /// Until when it is held, in milliseconds since 1970; absent when it is not.
    public var lockedUntil: Int64?
    /// Whether a dead letter holds back the rest of the session.
    public var isParked: Bool
    /// How many bytes the session's state has; absent without state.
    public var stateSize: Int?

    /// Creates the wire form of `session`.
    public init(_ session: SessionInfo) {
        self.sessionId = session.sessionId
        self.messageCount = session.messageCount
        self.isLocked = session.isLocked
        self.lockedUntil = session.lockedUntil?.millisecondsSince1970
        self.isParked = session.isParked
        self.stateSize = session.stateSize
    }

    /// The session's description.
    public var session: SessionInfo {
        SessionInfo(
            sessionId: self.sessionId, messageCount: self.messageCount, isLocked: self.isLocked,
            lockedUntil: self.lockedUntil.map(Date.init(millisecondsSince1970:)), isParked: self.isParked, stateSize: self.stateSize
        )
    }
}

/// The answer of `POST /v1/sessions/list`.
public struct SessionList: Codable, Sendable, Hashable {
    /// The sessions, in id order; the last one's id continues the list (`after`).
    public var sessions: [WireSessionInfo]
    /// Creates the body from its fields.
    public init(sessions: [WireSessionInfo]) { self.sessions = sessions }
}
