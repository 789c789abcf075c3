import HeraldCore

/// One sender's progress through one source: the reorder buffer of a ``MessageProcessor`` with a
/// ``MessageProcessor/Configuration/sequenceGate``, and the rules that decide what happens to
/// each of the sender's messages.
///
/// Pure: no I/O and no clock. The processor reads the gate from its document, asks it, and writes
/// the gate it gets back in the same commit as what it decided (so two workers cannot both move
/// it). The stored document is this type's JSON: keep its properties as they are.
struct SequenceGate: Codable, Hashable, Sendable {
    /// The sender sequence handled next.
    var next: Int64 = 1
    /// Held (deferred) messages: sender sequence → broker sequence number.
    var held: [Int64: Int64] = [:]
    /// When the oldest held message was held (milliseconds since 1970).
    var heldSince: Int64?

    /// What happens to a message that reaches the gate.
    enum Decision: Hashable, Sendable {
        /// It is next in line: handle it, then write ``SequenceGate/advanced()``.
        case handle
        /// It is ahead of a gap: defer it until the gap fills or times out.
        case hold
        /// Its sender sequence was handled (or given up on) before: complete it without effect.
        case duplicate
    }

    /// Decides what happens to the message carrying `senderSequence`, stored at broker sequence
    /// number `sequenceNumber`, `now` (milliseconds since 1970), and records it in the gate: a
    /// held message is remembered, one let through is no longer held.
    mutating func decide(senderSequence: Int64, sequenceNumber: Int64, now: Int64) -> Decision {
        if senderSequence < self.next { return .duplicate }
        if senderSequence == self.next {
            self.held[senderSequence] = nil
            if self.held.isEmpty { self.heldSince = nil }
            return .handle
        }
        self.held[senderSequence] = sequenceNumber
        self.heldSince = self.heldSince ?? now
        return .hold
    }

    /// The gate once the message it let through is handled.
    func advanced() -> SequenceGate {
        var gate = self
        gate.next = Self.successor(of: self.next)
        return gate
    }

    /// The broker sequence number of the held message that is next in line, if any: it can be
    /// released (received from the deferred messages and handled).
    var releasable: Int64? { self.held[self.next] }

    /// A gap that did not fill in time: the held messages to dead-letter, and the gate after them.
    struct ExpiredGap: Hashable, Sendable {
        /// The held messages' broker sequence numbers, in sender order.
        var sequenceNumbers: [Int64]
        /// The sender sequences that never arrived.
        var missing: Range<Int64>
        /// The gate moved past the last held message, holding nothing.
        var gate: SequenceGate

        /// The dead-letter description of each held message.
        func description(timeout: Duration) -> String {
            "sender sequence \(self.missing.lowerBound)...\(self.missing.upperBound - 1) never arrived within \(timeout)"
        }
    }

    /// The gap that has been open for `timeout` or longer at `now` (milliseconds since 1970), if
    /// any. A gate whose next message is held has no gap: that message is to be released instead.
    func expiredGap(now: Int64, timeout: Duration) -> ExpiredGap? {
        guard self.releasable == nil, let since = self.heldSince, let first = self.held.keys.min(), let last = self.held.keys.max()
        else { return nil }
        let (elapsed, overflowed) = now.subtractingReportingOverflow(since)
        guard overflowed ? since < now : elapsed >= timeout.milliseconds else { return nil }
        return ExpiredGap(
            sequenceNumbers: self.held.sorted { $0.key < $1.key }.map(\.value),
            missing: self.next..<max(self.next, first),
            gate: SequenceGate(next: Self.successor(of: last))
        )
    }

    /// `sequence + 1`, held at `Int64.max`: sender sequences come from clients, and none may stop the process.
    private static func successor(of sequence: Int64) -> Int64 {
        sequence == .max ? .max : sequence + 1
    }
}
