/// The code a store keeps in a message row's `state` column: one encoding, written and read by
/// every store.
package enum StoredState: Int, Sendable, CaseIterable {
    /// Deliverable once visible.
    case active = 0
    /// Set aside by a deferral; received again only by its sequence number.
    case deferred = 1
    /// Waiting for its scheduled enqueue time.
    case scheduled = 2

    /// The state stored as `code`.
    ///
    /// - Throws: ``HeraldError/Code/storeFailed`` for a code no store writes.
    package init(code: Int64) throws(HeraldError) {
        guard let state = Int(exactly: code).flatMap(StoredState.init(rawValue:)) else {
            throw HeraldError(.storeFailed, "a stored message has an unknown state code \(code)")
        }
        self = state
    }

    /// The code a store writes for this state.
    package var code: Int64 { Int64(self.rawValue) }

    /// What a reader sees of a message stored in this state, as the state says.
    package var readState: ReceivedMessage.State {
        switch self {
        case .active: .active
        case .deferred: .deferred
        case .scheduled: .scheduled
        }
    }

    /// What a reader sees of a message stored in this state and visible from `visibleAt` (wall-clock
    /// milliseconds, 0: at once), at `now`, in a store that never rewrites a scheduled message to
    /// active: one whose time has come reads as active (GUARANTEES.md §4.7).
    package func readState(visibleAt: Int64, now: Int64) -> ReceivedMessage.State {
        self == .scheduled && visibleAt <= now ? .active : self.readState
    }
}

/// A message as a store read it, with what the broker decides by: the message a reader gets, and
/// when it is visible.
package struct StoredMessage: Sendable {
    /// The message as a receive or peek returns it (before a delivery counts).
    package var received: ReceivedMessage
    /// When it is visible (wall-clock milliseconds; 0: at once).
    package var visibleAt: Int64

    /// Creates a stored message.
    package init(received: ReceivedMessage, visibleAt: Int64) {
        self.received = received
        self.visibleAt = visibleAt
    }

    /// Its sequence number.
    package var sequenceNumber: Int64 { self.received.sequenceNumber }
    /// Whether it is in the dead-letter queue.
    package var isDeadLetter: Bool { self.received.entity.isDeadLetter }
    /// How many times it was delivered.
    package var deliveryCount: Int { self.received.deliveryCount }
    /// Its session, if any.
    package var sessionId: String? { self.received.message.sessionId }
}
