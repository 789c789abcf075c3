/// The one error type every `MessageBroker` throws.
///
/// Each failure has its own ``Code`` so callers can react to it precisely
/// (`catch let error as HeraldError where error.code == .lockLost`). The
/// ``description`` never contains message bodies or credentials.
public struct HeraldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a closed set of codes that may grow.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidName
            case invalidOption
            case invalidArgument
            case entityNotFound
            case entityAlreadyExists
            case messageTooLarge
            case propertyTooLarge
            case propertiesTooLarge
            case identifierTooLong
            case batchTooLarge
            case messageNotFound
            case lockLost
            case sessionLockLost
            case sessionRequired
            case sessionNotEnabled
            case sessionCannotBeLocked
            case noSessionAvailable
            case storeFailed
            case storeClosed
            case storeUnavailable
            case insufficientStorage
            case concurrencyConflict
            case alreadyProcessed
            case jobNotFound
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// A name breaks GUARANTEES.md §2's rule: 1–128 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
        public static let invalidName = Code(.invalidName)
        /// An entity option lies outside its bounds (for example a lock duration over 5 minutes).
        public static let invalidOption = Code(.invalidOption)
        /// An argument is out of range (for example a receive `maxCount` of zero, or a negative delay).
        public static let invalidArgument = Code(.invalidArgument)
        /// The queue, topic or subscription does not exist, or a subscription has no rule of that name.
        public static let entityNotFound = Code(.entityNotFound)
        /// An entity of that name already exists, or a subscription already has a rule of that name.
        public static let entityAlreadyExists = Code(.entityAlreadyExists)
        /// The body is larger than the entity's `maxMessageSize`.
        public static let messageTooLarge = Code(.messageTooLarge)
        /// One application property is larger than 32 KiB.
        public static let propertyTooLarge = Code(.propertyTooLarge)
        /// All application properties together are larger than 64 KiB.
        public static let propertiesTooLarge = Code(.propertiesTooLarge)
        /// A `messageId`, `sessionId` or other identifier is longer than 128 characters.
        public static let identifierTooLong = Code(.identifierTooLong)
        /// A batch holds more than 100 messages.
        public static let batchTooLarge = Code(.batchTooLarge)
        /// No message with that sequence number is in the expected state (deferred, scheduled).
        public static let messageNotFound = Code(.messageNotFound)
        /// The lock token is expired, unknown, or belongs to an earlier delivery.
        public static let lockLost = Code(.lockLost)
        /// The session lock has expired, was released, or was taken by another receiver.
        public static let sessionLockLost = Code(.sessionLockLost)
        /// The entity requires sessions: sends need a `sessionId`, receives need an accepted session.
        public static let sessionRequired = Code(.sessionRequired)
        /// Sessions were used on an entity that does not require them.
        public static let sessionNotEnabled = Code(.sessionNotEnabled)
        /// The named session is locked by another receiver.
        public static let sessionCannotBeLocked = Code(.sessionCannotBeLocked)
        /// Accepting the next available session found none with messages and no holder within the
        /// wait: nothing to do yet, as an empty receive, not a conflict. Over HTTP: 204 No Content.
        public static let noSessionAvailable = Code(.noSessionAvailable)
        /// The store hit a storage error (failed write or fsync) and stopped accepting work (fail-stop).
        public static let storeFailed = Code(.storeFailed)
        /// The store was closed.
        public static let storeClosed = Code(.storeClosed)
        /// The store cannot reach its database right now (a PostgreSQL restart, a lost connection):
        /// the operation was not acknowledged and may be retried. When the connection was lost during
        /// a commit, the operation may have been applied: the message says the outcome is unknown, and
        /// a retry is safe where duplicate detection or the settlement memory recognizes it. Unlike
        /// ``storeFailed`` the store keeps working and recovers by itself once the database is back.
        public static let storeUnavailable = Code(.storeUnavailable)
        /// The store's disk is (nearly) full: the operation was not applied, and may be retried once
        /// space is freed. Sends and other operations that grow the store are refused while free space
        /// is below the store's watermark; receives and settlements, which free space, still run.
        /// Unlike ``storeFailed`` the store keeps working.
        public static let insufficientStorage = Code(.insufficientStorage)
        /// A document or event stream is not at the version the transaction expected (optimistic concurrency).
        public static let concurrencyConflict = Code(.concurrencyConflict)
        /// The inbox already holds this (handler, message id): the message was handled before.
        public static let alreadyProcessed = Code(.alreadyProcessed)
        /// No bulk job has that id (``ManageableBroker/bulkJob(_:)``).
        public static let jobNotFound = Code(.jobNotFound)

        /// The code as a stable string, for logs and wire formats.
        public var description: String { self.base.rawValue }

        /// Every code, for documentation and wire-format tests.
        public static let all: [Code] = [
            .invalidName, .invalidOption, .invalidArgument, .entityNotFound, .entityAlreadyExists,
            .messageTooLarge, .propertyTooLarge, .propertiesTooLarge, .identifierTooLong, .batchTooLarge,
            .messageNotFound, .lockLost, .sessionLockLost, .sessionRequired, .sessionNotEnabled,
            .sessionCannotBeLocked, .noSessionAvailable, .storeFailed, .storeClosed, .storeUnavailable, .insufficientStorage, .concurrencyConflict,
            .alreadyProcessed, .jobNotFound,
        ]

        /// The code whose ``description`` is `string`, if any.
        public init?(_ string: String) {
            guard let base = Base(rawValue: string) else { return nil }
            self.base = base
        }
    }

    /// What went wrong.
    public let code: Code
    /// A human-readable explanation; never contains bodies or credentials.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }
}

extension HeraldError {
    /// What ``MessageBroker/cancelScheduled(_:in:)`` found of a sequence number it could not
    /// cancel; it decides the wording of the ``Code/messageNotFound`` error.
    public enum Uncancellable: Sendable, Hashable {
        /// The entity holds the message, but not scheduled: its scheduled time has come (it is
        /// active from then on, whether or not anyone received it yet) or it never had one.
        case notScheduled
        /// The entity assigned the sequence number, but the message is gone: cancelled before,
        /// received and settled, or expired.
        case gone
        /// The entity never assigned the sequence number.
        case neverAssigned
        /// A topic assigned the sequence number, but none of its subscriptions holds a scheduled
        /// copy of the message: its scheduled time has come (its copies are active, or were
        /// settled since), it never had one, it was cancelled, or its copies expired or their
        /// subscriptions were deleted. (A topic keeps no message of its own, so which of these it
        /// was is not known.)
        case noScheduledCopy
    }

    /// The ``Code/messageNotFound`` error of cancelling message `sequenceNumber` of `entity`,
    /// which `found` describes.
    public static func cannotCancel(_ sequenceNumber: Int64, in entity: EntityPath, _ found: Uncancellable) -> HeraldError {
        switch found {
        case .notScheduled:
            HeraldError(
                .messageNotFound,
                "message \(sequenceNumber) in '\(entity)' is no longer scheduled: its scheduled time has come (or it never had one), so it is active and cannot be cancelled"
            )
        case .gone:
            HeraldError(.messageNotFound, "message \(sequenceNumber) of '\(entity)' is no longer scheduled: it was cancelled, received and settled, or expired")
        case .neverAssigned:
            HeraldError(.messageNotFound, "'\(entity)' never had a message \(sequenceNumber)")
        case .noScheduledCopy:
            HeraldError(
                .messageNotFound,
                "message \(sequenceNumber) of '\(entity)' is no longer scheduled: no subscription holds a scheduled copy of it (its scheduled time has come, or it was cancelled)"
            )
        }
    }
}
