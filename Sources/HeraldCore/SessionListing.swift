public import Foundation

/// One session of a session queue or subscription, as an operator sees it
/// (``ManageableBroker/sessions(of:after:maxCount:)``).
public struct SessionInfo: Hashable, Sendable {
    /// The session's id.
    public var sessionId: String
    /// How many messages of the session the entity holds (dead letters not included).
    public var messageCount: Int
    /// Whether a receiver holds the session now.
    public var isLocked: Bool
    /// Until when, if it is held (wall-clock time, for display).
    public var lockedUntil: Date?
    /// Whether a dead letter holds back the rest of the session (GUARANTEES.md §4.12).
    public var isParked: Bool
    /// How many bytes the session's state has; `nil` without state.
    public var stateSize: Int?

    /// Creates a session's description; stores and clients build these.
    public init(sessionId: String, messageCount: Int, isLocked: Bool, lockedUntil: Date?, isParked: Bool, stateSize: Int?) {
        self.sessionId = sessionId
        self.messageCount = messageCount
        self.isLocked = isLocked
        self.lockedUntil = lockedUntil
        self.isParked = isParked
        self.stateSize = stateSize
    }
}

extension SessionInfo {
    /// The sessions a store found, in id order after `after`, at most `maxCount`: every session
    /// with messages, with a stored row (state or parking) or with a lock, merged by id.
    ///
    /// - Parameters:
    ///   - messages: Message counts by session.
    ///   - stored: State sizes and parking by session.
    ///   - locks: Lock expiries (display times) of the sessions held now.
    package static func merge(
        messages: [String: Int], stored: [String: (stateSize: Int?, isParked: Bool)], locks: [String: Date], after: String?, maxCount: Int
    ) -> [SessionInfo] {
        let ids = Set(messages.keys).union(stored.keys).union(locks.keys).filter { id in after.map { id > $0 } ?? true }
        return ids.sorted().prefix(maxCount).map { id in
            SessionInfo(
                sessionId: id, messageCount: messages[id] ?? 0, isLocked: locks[id] != nil, lockedUntil: locks[id],
                isParked: stored[id]?.isParked ?? false, stateSize: stored[id]?.stateSize ?? nil
            )
        }
    }
}
