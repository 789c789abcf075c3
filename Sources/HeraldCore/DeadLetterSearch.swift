public import Foundation

/// One page of a dead-letter search (``/HeraldCore/MessageBroker/searchDeadLetters(of:matching:from:maxCount:maxBytes:)``).
public struct DeadLetterPage: Hashable, Sendable {
    /// The matching dead letters, in sequence-number order.
    public var messages: [ReceivedMessage]
    /// Where the next page starts; `nil` when the search reached the end of the dead-letter queue.
    public var nextSequenceNumber: Int64?

    /// Creates a page.
    public init(messages: [ReceivedMessage], nextSequenceNumber: Int64?) {
        self.messages = messages
        self.nextSequenceNumber = nextSequenceNumber
    }
}

/// How the dead letters of a queue or subscription that match a filter group, for a console or
/// a report (``/HeraldCore/MessageBroker/summarizeDeadLetters(of:matching:)``).
public struct DeadLetterSummary: Hashable, Sendable {
    /// One value of a grouping and how many dead letters have it.
    public struct Group: Hashable, Sendable {
        /// The reason or subject; `nil` for dead letters without one.
        public var value: String?
        /// How many.
        public var count: Int

        /// Creates a group.
        public init(value: String?, count: Int) {
            self.value = value
            self.count = count
        }
    }

    /// How many dead letters match.
    public var total: Int
    /// By dead-letter reason, most frequent first (then by value).
    public var reasons: [Group]
    /// By subject, most frequent first (then by value).
    public var subjects: [Group]
    /// When the oldest matching dead letter was enqueued.
    public var oldestEnqueuedTime: Date?
    /// When the newest matching dead letter was enqueued.
    public var newestEnqueuedTime: Date?

    /// Creates a summary.
    public init(total: Int, reasons: [Group], subjects: [Group], oldestEnqueuedTime: Date?, newestEnqueuedTime: Date?) {
        self.total = total
        self.reasons = reasons
        self.subjects = subjects
        self.oldestEnqueuedTime = oldestEnqueuedTime
        self.newestEnqueuedTime = newestEnqueuedTime
    }
}

extension MessageBroker {
    /// The message with `sequenceNumber` in `entity` (a queue, subscription or dead-letter
    /// queue), in any state, without locking it.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/messageNotFound`` when the entity holds none with that number.
    public func message(_ sequenceNumber: Int64, in entity: EntityPath) async throws -> ReceivedMessage {
        let found = try await self.peek(entity, fromSequenceNumber: sequenceNumber, maxCount: 1)
        guard let message = found.first, message.sequenceNumber == sequenceNumber else {
            throw HeraldError(.messageNotFound, "'\(entity)' holds no message \(sequenceNumber)")
        }
        return message
    }

    /// Up to `maxCount` dead letters of the queue or subscription `entity` that match `filter`,
    /// from `sequenceNumber` on, without locking them; stops early once their bodies and
    /// properties pass `maxBytes` (the first always fits) or once ``/HeraldCore/HeraldLimits/deadLetterScanLimit`` dead
    /// letters were looked at, and says where to go on.
    public func searchDeadLetters(
        of entity: EntityPath, matching filter: DeadLetterFilter, from sequenceNumber: Int64, maxCount: Int, maxBytes: Int = .max
    ) async throws -> DeadLetterPage {
        try HeraldLimits.checkReceiveCount(maxCount)
        let deadLetters = entity.deadLetter
        var budget = ReceiveBudget(maxBytes: maxBytes)
        var found: [ReceivedMessage] = []
        var next = sequenceNumber
        var scanned = 0
        while scanned < HeraldLimits.deadLetterScanLimit {
            let page = try await self.peek(deadLetters, fromSequenceNumber: next, maxCount: HeraldLimits.maxReceiveCount)
            for message in page {
                scanned += 1
                next = message.sequenceNumber &+ 1
                guard filter.matches(message) else { continue }
                if budget.admit([message.message.budgetSize]) == 0 {
                    return DeadLetterPage(messages: found, nextSequenceNumber: message.sequenceNumber)
                }
                found.append(message)
                if found.count == maxCount { return DeadLetterPage(messages: found, nextSequenceNumber: next) }
            }
            if page.count < HeraldLimits.maxReceiveCount { return DeadLetterPage(messages: found, nextSequenceNumber: nil) }
        }
        return DeadLetterPage(messages: found, nextSequenceNumber: next)
    }

    /// How the dead letters of the queue or subscription `entity` that match `filter` group by
    /// reason and by subject; reads every dead letter once.
    public func summarizeDeadLetters(of entity: EntityPath, matching filter: DeadLetterFilter) async throws -> DeadLetterSummary {
        var reasons: [String?: Int] = [:]
        var subjects: [String?: Int] = [:]
        var total = 0
        var oldest: Date?
        var newest: Date?
        var next: Int64 = 0
        while true {
            let page = try await self.peek(entity.deadLetter, fromSequenceNumber: next, maxCount: HeraldLimits.maxReceiveCount)
            for message in page where filter.matches(message) {
                total += 1
                reasons[message.deadLetterReason, default: 0] += 1
                subjects[message.message.subject, default: 0] += 1
                oldest = min(oldest ?? message.enqueuedTime, message.enqueuedTime)
                newest = max(newest ?? message.enqueuedTime, message.enqueuedTime)
            }
            guard page.count == HeraldLimits.maxReceiveCount, let last = page.last?.sequenceNumber, last < .max else { break }
            next = last + 1
        }
        func groups(_ counts: [String?: Int]) -> [DeadLetterSummary.Group] {
            counts.map { DeadLetterSummary.Group(value: $0.key, count: $0.value) }
                .sorted { ($0.count, $1.value ?? "") > ($1.count, $0.value ?? "") }
        }
        return DeadLetterSummary(total: total, reasons: groups(reasons), subjects: groups(subjects), oldestEnqueuedTime: oldest, newestEnqueuedTime: newest)
    }
}

extension HeraldLimits {
    /// How many dead letters one search looks at before it answers with where to go on, so that
    /// a search that matches little answers in bounded time.
    public static let deadLetterScanLimit = 10_000
}
