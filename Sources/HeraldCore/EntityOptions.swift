public import Foundation

/// The settings of a queue, topic or subscription (GUARANTEES.md §2).
///
/// A topic uses `defaultTimeToLive`, `duplicateDetectionWindow` and `maxMessageSize`; the other
/// settings apply to the queues and subscriptions that hold messages for receivers.
public struct EntityOptions: Hashable, Sendable, Codable {
    /// How long a peek-lock receive holds a message before it becomes visible again. 60 s; 1 s–5 min.
    public var lockDuration: Duration
    /// Deliveries after which a message goes to the dead-letter queue. 10; 1–2,000.
    public var maxDeliveryCount: Int
    /// Time-to-live of messages that set none themselves. None by default.
    public var defaultTimeToLive: Duration?
    /// Whether expired messages go to the dead-letter queue (`true`) or are dropped. `true`.
    public var deadLetterOnExpiration: Bool
    /// How long a `messageId` is remembered for duplicate detection. Off by default; 1 s–7 days.
    public var duplicateDetectionWindow: Duration?
    /// Whether every message carries a `sessionId` and receivers accept sessions. `false`.
    public var requiresSession: Bool
    /// The largest body accepted, in bytes. 256 KiB; 1 byte–1 MiB.
    public var maxMessageSize: Int
    /// In a session entity, whether a dead-lettered message holds back the rest of its session
    /// until it is resubmitted (GUARANTEES.md §4.12). `false`.
    public var parkSessionOnDeadLetter: Bool

    /// Creates options; every parameter has the default of GUARANTEES.md §2.
    public init(
        lockDuration: Duration = .seconds(60),
        maxDeliveryCount: Int = 10,
        defaultTimeToLive: Duration? = nil,
        deadLetterOnExpiration: Bool = true,
        duplicateDetectionWindow: Duration? = nil,
        requiresSession: Bool = false,
        maxMessageSize: Int = EntityOptions.defaultMaxMessageSize,
        parkSessionOnDeadLetter: Bool = false
    ) {
        self.lockDuration = lockDuration
        self.maxDeliveryCount = maxDeliveryCount
        self.defaultTimeToLive = defaultTimeToLive
        self.deadLetterOnExpiration = deadLetterOnExpiration
        self.duplicateDetectionWindow = duplicateDetectionWindow
        self.requiresSession = requiresSession
        self.maxMessageSize = maxMessageSize
        self.parkSessionOnDeadLetter = parkSessionOnDeadLetter
    }

    /// 256 KiB.
    public static let defaultMaxMessageSize = 256 * 1024
    /// The bounds of ``lockDuration``.
    public static let lockDurationRange: ClosedRange<Duration> = .seconds(1) ... .seconds(300)
    /// The bounds of ``maxDeliveryCount``.
    public static let maxDeliveryCountRange: ClosedRange<Int> = 1...2000
    /// The bounds of ``duplicateDetectionWindow``.
    public static let duplicateDetectionWindowRange: ClosedRange<Duration> = .seconds(1) ... .seconds(7 * 24 * 3600)
    /// The bounds of ``maxMessageSize``.
    public static let maxMessageSizeRange: ClosedRange<Int> = 1...1024 * 1024
    /// The bounds of ``defaultTimeToLive``.
    public static let timeToLiveRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(10 * 365 * 24 * 3600)

    /// Checks every option against its bounds.
    ///
    /// - Throws: ``HeraldError/Code/invalidOption`` naming the first option out of bounds.
    public func validate() throws(HeraldError) {
        func check<T: Comparable>(_ name: String, _ value: T, _ range: ClosedRange<T>) throws(HeraldError) {
            guard range.contains(value) else {
                throw HeraldError(.invalidOption, "\(name) must lie in \(range.lowerBound)...\(range.upperBound); got \(value)")
            }
        }
        try check("lockDuration", self.lockDuration, Self.lockDurationRange)
        try check("maxDeliveryCount", self.maxDeliveryCount, Self.maxDeliveryCountRange)
        try check("maxMessageSize", self.maxMessageSize, Self.maxMessageSizeRange)
        if let window = self.duplicateDetectionWindow {
            try check("duplicateDetectionWindow", window, Self.duplicateDetectionWindowRange)
        }
        if let ttl = self.defaultTimeToLive {
            try check("defaultTimeToLive", ttl, Self.timeToLiveRange)
        }
        if self.parkSessionOnDeadLetter && !self.requiresSession {
            throw HeraldError(.invalidOption, "parkSessionOnDeadLetter needs requiresSession")
        }
    }
}

/// The limits of GUARANTEES.md §4, each checked exactly: the limit is accepted, one more is rejected.
public enum HeraldLimits {
    /// Longest `messageId`, `sessionId`, `correlationId`, `causationId`, `replyTo`,
    /// `replyToSessionId`, `to`, `subject`, `contentType` and `senderId`, in UTF-8 bytes.
    public static let maxIdentifierLength = 128
    /// Largest single application property (key plus value), in bytes.
    public static let maxPropertySize = 32 * 1024
    /// Largest total of all application properties and annotations, in bytes.
    public static let maxPropertiesSize = 64 * 1024
    /// Most messages in one batch or one transaction.
    public static let maxBatchCount = 100
    /// Most rules one subscription has.
    public static let maxRulesPerSubscription = 100
    /// Longest rule name, in characters (as Azure Service Bus's).
    public static let maxRuleNameLength = 50
    /// Most messages one receive returns.
    public static let maxReceiveCount = 1000
    /// Most sequence numbers one cancellation of scheduled messages names.
    public static let maxCancelCount = 1000
    /// The longest delay of an abandon before the message is visible again: 10 years, the
    /// longest time to live (a delay past that could never be waited out).
    public static let maxAbandonDelay: Duration = EntityOptions.timeToLiveRange.upperBound
    /// Longest session state, in bytes.
    public static let maxSessionStateSize = 256 * 1024
    /// Longest dead-letter reason or description, in UTF-8 bytes.
    public static let maxDeadLetterTextLength = 4096
    /// How long a store remembers how a lock token settled its message, counted from the
    /// settlement, by the broker's wall clock: within it a retry that settles the same way answers
    /// ``SettlementOutcome/alreadySettled`` (see ``SettlementOutcome``). As long as the longest
    /// lock duration, so a receiver can always learn the outcome of a settlement it made in time.
    public static let settlementMemory: Duration = .seconds(300)
    /// The accepted `scheduledEnqueueTime`s: 0001-01-01 to 9999-12-31 (UTC). The stores keep
    /// times as milliseconds in an `Int64`; a time far outside this overflowed that conversion
    /// (found by Fuzz/fuzz-wire-bodies).
    public static let scheduledEnqueueTimeRange: ClosedRange<Date> =
        Date(timeIntervalSince1970: -62_135_596_800)...Date(timeIntervalSince1970: 253_402_300_799.999)
}

extension HeraldLimits {
    /// Checks how many messages a receive, peek or read asks for: 1 to ``maxReceiveCount``.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument`` otherwise.
    package static func checkReceiveCount(_ maxCount: Int) throws(HeraldError) {
        guard (1...Self.maxReceiveCount).contains(maxCount) else {
            throw HeraldError(.invalidArgument, "maxCount must lie in 1...\(Self.maxReceiveCount); got \(maxCount)")
        }
    }

    /// Checks an abandon's delay: `nil`, or 0 to ``maxAbandonDelay``. Every store and the server
    /// check it here, before any arithmetic on the clock.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument`` for a negative or longer delay.
    package static func checkAbandonDelay(_ delay: Duration?) throws(HeraldError) {
        guard let delay else { return }
        guard delay >= .zero, delay <= Self.maxAbandonDelay else {
            throw HeraldError(.invalidArgument, "an abandon delay must lie in 0 ms...10 years; got \(delay)")
        }
    }

    /// Checks how long a receive or session accept may wait: zero or more.
    ///
    /// - Throws: ``HeraldError/Code/invalidArgument`` for a negative wait.
    package static func checkWaitTime(_ maxWaitTime: Duration) throws(HeraldError) {
        if maxWaitTime < .zero { throw HeraldError(.invalidArgument, "maxWaitTime cannot be negative") }
    }
}
