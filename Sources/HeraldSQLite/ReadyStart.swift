/// Where a receive's walk of a queue (or of its dead letters) may start: past the messages a
/// previous receive walked over, all of which were then locked or not yet visible, for as long as
/// they all still are.
///
/// A receive walks the queue in sequence order from its first candidate and steps over the locked
/// messages and those whose abandon delay has not passed. With many messages locked (receivers
/// holding large batches, or slow ones) every receive stepped over all of them again: 100,000
/// locked messages cost each receive about 36 ms of the writer. After a receive, the writer keeps
/// the sequence number after the last message it took, with the earliest moment one of the
/// messages before it can become receivable by itself (a lock's expiry, an abandon delay's end);
/// the next receive starts there until that moment. Anything else that makes one of them
/// receivable (an abandon, a resubmitted dead letter, a due scheduled message) forgets the start
/// (``WriterState/messagesMayBeReady(in:)``; a message moved to the dead-letter queue forgets only
/// that queue's, ``WriterState/deadLettersMayBeReady(in:)``), and a rolled-back operation forgets
/// the starts it set (``WriterState/operationEnded(rolledBack:)``). An expired message a sweep
/// has not removed yet is walked over like a locked one, but never becomes receivable.
struct ReadyStart: Equatable {
    /// The first sequence number not walked over.
    var sequenceNumber: Int64
    /// Valid while the monotonic clock (nanoseconds) is below this.
    var validUntilMonotonic: Int64
    /// And while the wall clock (milliseconds) is below this.
    var validUntilWall: Int64

    /// The longest a start is kept, however long the locks behind it last: a walk from the first
    /// candidate at least this often bounds what any missed change could hold back.
    static let maxLifetime: Int64 = 5_000_000_000

    func isValid(monotonic: Int64, wall: Int64) -> Bool {
        monotonic < self.validUntilMonotonic && wall < self.validUntilWall
    }

    /// The start after a receive that walked from `previous` (or from the first candidate when
    /// `nil`) up to `lastTaken`, given the earliest lock expiry (monotonic) and the earliest end
    /// of an abandon delay (wall) among the messages it walked over or took and that are still
    /// there; `nil` when there is none.
    static func after(
        _ previous: ReadyStart?, lastTaken: Int64, earliestLockExpiry: Int64?, earliestVisibility: Int64?, monotonic: Int64
    ) -> ReadyStart {
        var start = ReadyStart(
            sequenceNumber: lastTaken + 1,
            validUntilMonotonic: min(earliestLockExpiry ?? .max, monotonic + Self.maxLifetime),
            validUntilWall: earliestVisibility ?? .max
        )
        if let previous {
            start.validUntilMonotonic = min(start.validUntilMonotonic, previous.validUntilMonotonic)
            start.validUntilWall = min(start.validUntilWall, previous.validUntilWall)
        }
        return start
    }
}

/// Which walk a ``ReadyStart`` is for: an entity's messages, or its dead letters.
struct ReadyKey: Hashable {
    var entityId: Int64
    var deadLetter: Bool
}
