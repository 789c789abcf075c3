/// When a store forgets expired entries of a table it remembers into (settled lock tokens, the
/// duplicate-detection history): at most once a second while few entries come, and again after
/// every ``threshold`` new ones when more do, each time at most ``batch`` of them. Forgetting then
/// keeps up with any rate of remembering, in steps of bounded cost (once a second alone, a
/// sustained 10,000 entries a second outgrew it and the table grew without end). The store and
/// the simulator's model of it follow the same schedule, so the model knows what is forgotten.
package struct PruneSchedule: Sendable {
    /// The most entries one prune forgets.
    package static let batch = 10_000
    /// The new entries after which a prune is due even within the second.
    package let threshold: Int
    private var last: Int64 = 0
    private var addedSinceLast = 0

    /// A schedule that prunes again after `threshold` new entries; at most half of ``batch``,
    /// so that one prune forgets more than came since the one before.
    package init(threshold: Int) {
        precondition(threshold > 0 && threshold <= Self.batch / 2)
        self.threshold = threshold
    }

    /// Counts `count` new entries.
    package mutating func added(_ count: Int) {
        self.addedSinceLast += count
    }

    /// Whether a prune is due at `now` (wall-clock milliseconds); if so, the schedule counts it
    /// as done.
    package mutating func isDue(now: Int64) -> Bool {
        guard now - self.last >= 1000 || self.addedSinceLast >= self.threshold else { return false }
        self.last = now
        self.addedSinceLast = 0
        return true
    }
}

extension PruneSchedule {
    /// Settlements: one entry per settlement call and delivery (the tokens of one receive that one
    /// call settles share an entry).
    package static var settlements: PruneSchedule { PruneSchedule(threshold: batch / 2) }
    /// The duplicate-detection history, counted in messages sent: each adds at most two entries
    /// (its message id and its sender's pair).
    package static var duplicateHistory: PruneSchedule { PruneSchedule(threshold: batch / 4) }
}
