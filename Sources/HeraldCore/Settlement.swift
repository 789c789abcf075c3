/// What a settlement (complete, abandon, defer, dead-letter, resubmit) answers.
///
/// A receiver whose settlement had an unknown outcome (the connection broke, the server or the
/// process restarted) retries it with the same lock token. Each store remembers, durably and in
/// the transaction of the settlement itself, how each token settled its message, for
/// ``HeraldLimits/settlementMemory``: a retry that settles the same way within that time
/// answers ``alreadySettled`` and changes nothing. A lock lost any other way (expired,
/// superseded by a later delivery, settled another way, or settled longer ago than that) still
/// throws ``HeraldError/Code/lockLost``.
///
/// Over HTTP a first settlement answers 204 No Content, a remembered one 200 with
/// `{"alreadySettled": true}`.
public enum SettlementOutcome: String, Sendable, Hashable, CustomStringConvertible {
    /// This call settled the message.
    case settled
    /// The same lock token had already settled the message the same way; nothing changed.
    case alreadySettled

    public var description: String { self.rawValue }
}

/// The ways a lock token settles its message, as the stores remember them.
public enum SettlementKind: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A complete, of one token or of a batch, also inside a transaction.
    case complete = 0
    /// ``MessageBroker/abandon(_:delay:)``, also when it moved the message to the dead-letter queue.
    case abandon = 1
    /// ``MessageBroker/defer(_:)``, also inside a transaction.
    case deferral = 2
    /// ``MessageBroker/deadLetter(_:reason:description:)``, also inside a transaction.
    case deadLetter = 3
    /// ``MessageBroker/resubmit(_:)``.
    case resubmit = 4

    /// The settlement as a past participle, for messages: "completed", "dead-lettered", …
    public var description: String {
        switch self {
        case .complete: "completed"
        case .abandon: "abandoned"
        case .deferral: "deferred"
        case .deadLetter: "dead-lettered"
        case .resubmit: "resubmitted"
        }
    }
}

/// A settlement a store remembers: how a lock token settled its message, and when.
///
/// The rule of ``SettlementOutcome`` in one place; the stores only keep the rows.
public struct RememberedSettlement: Sendable, Hashable {
    /// How the token settled the message.
    public var kind: SettlementKind
    /// When, in wall-clock milliseconds since 1970.
    public var settledAt: Int64

    /// Creates a remembered settlement.
    public init(kind: SettlementKind, settledAt: Int64) {
        self.kind = kind
        self.settledAt = settledAt
    }

    /// Settlements made at or before this time (wall-clock milliseconds) are forgotten at `now`;
    /// stores may delete them.
    public static func forgottenBefore(now: Int64) -> Int64 {
        now - HeraldLimits.settlementMemory.milliseconds
    }

    /// Whether the settlement is still remembered at `now` (wall-clock milliseconds).
    public func isRemembered(now: Int64) -> Bool {
        self.settledAt > Self.forgottenBefore(now: now)
    }

    /// The answer to settling `token` again as `kind` at `now`, after the store found its lock
    /// lost with `lockLost`: ``SettlementOutcome/alreadySettled`` for the same settlement within
    /// ``HeraldLimits/settlementMemory``, otherwise a `lockLost` error that says what happened.
    public func retry(_ kind: SettlementKind, of token: LockToken, now: Int64, lockLost: HeraldError) throws(HeraldError) -> SettlementOutcome {
        guard self.isRemembered(now: now) else { throw lockLost }
        guard kind == self.kind else {
            throw HeraldError(
                .lockLost,
                "the lock of message \(token.sequenceNumber) in '\(token.entity)' was already used: the message was \(self.kind), so it cannot be \(kind)"
            )
        }
        return .alreadySettled
    }
}
