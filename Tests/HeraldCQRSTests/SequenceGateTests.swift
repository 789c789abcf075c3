import Foundation
import HeraldCore
import Testing

@testable import HeraldCQRS

/// The sequence gate's rules, without a broker.
@Suite struct SequenceGateTests {
    @Test func theNextSequenceIsHandledAndAdvancesTheGate() {
        var gate = SequenceGate()
        #expect(gate.decide(senderSequence: 1, sequenceNumber: 10, now: 0) == .handle)
        #expect(gate == SequenceGate(), "nothing held")
        #expect(gate.advanced().next == 2)
    }

    @Test func aSequenceAheadIsHeldFromTheFirstTimeOneWas() {
        var gate = SequenceGate()
        #expect(gate.decide(senderSequence: 3, sequenceNumber: 10, now: 1000) == .hold)
        #expect(gate.decide(senderSequence: 4, sequenceNumber: 11, now: 5000) == .hold)
        #expect(gate == SequenceGate(next: 1, held: [3: 10, 4: 11], heldSince: 1000))
        #expect(gate.releasable == nil, "sequence 1 has not arrived")
    }

    @Test func anOlderSequenceIsADuplicateAndChangesNothing() {
        var gate = SequenceGate(next: 5, held: [7: 20], heldSince: 1000)
        let before = gate
        #expect(gate.decide(senderSequence: 4, sequenceNumber: 30, now: 9000) == .duplicate)
        #expect(gate.decide(senderSequence: 1, sequenceNumber: 31, now: 9000) == .duplicate)
        #expect(gate == before)
    }

    @Test func fillingTheGapReleasesTheHeldMessagesInOrder() {
        // Arrival 3, 1, 4, 2: the order the processor sees in `reorderedMessagesAreHeldAndReleasedInOrder`.
        var gate = SequenceGate()
        #expect(gate.decide(senderSequence: 3, sequenceNumber: 1, now: 0) == .hold)
        #expect(gate.decide(senderSequence: 1, sequenceNumber: 2, now: 0) == .handle)
        gate = gate.advanced()
        #expect(gate.releasable == nil)
        #expect(gate.decide(senderSequence: 4, sequenceNumber: 3, now: 0) == .hold)
        #expect(gate.decide(senderSequence: 2, sequenceNumber: 4, now: 0) == .handle)
        gate = gate.advanced()
        #expect(gate.releasable == 1, "sequence 3 is next: its broker sequence number")
        #expect(gate.decide(senderSequence: 3, sequenceNumber: 1, now: 0) == .handle)
        gate = gate.advanced()
        #expect(gate.releasable == 3)
        #expect(gate.decide(senderSequence: 4, sequenceNumber: 3, now: 0) == .handle)
        #expect(gate.heldSince == nil, "nothing held any more")
        gate = gate.advanced()
        #expect(gate == SequenceGate(next: 5))
    }

    @Test func aGapExpiresAfterTheTimeoutAndTheGateMovesPastTheHeld() throws {
        let gate = SequenceGate(next: 2, held: [5: 50, 4: 40], heldSince: 10_000)
        #expect(gate.expiredGap(now: 39_999, timeout: .seconds(30)) == nil, "not yet")
        let expired = try #require(gate.expiredGap(now: 40_000, timeout: .seconds(30)))
        #expect(expired.sequenceNumbers == [40, 50], "in sender order")
        #expect(expired.missing == 2..<4)
        #expect(expired.gate == SequenceGate(next: 6))
        #expect(expired.description(timeout: .seconds(30)) == "sender sequence 2...3 never arrived within 30.0 seconds")
    }

    @Test func aGateWithNothingHeldOrItsNextHeldHasNoExpiredGap() {
        #expect(SequenceGate(next: 3).expiredGap(now: .max, timeout: .zero) == nil)
        // The next message is held (its release failed): it is released, not dead-lettered.
        #expect(SequenceGate(next: 3, held: [3: 30, 5: 50], heldSince: 0).expiredGap(now: .max, timeout: .zero) == nil)
    }

    /// Sender sequences come from clients: the extremes move the gate without trapping.
    @Test func extremeSequencesDoNotTrap() throws {
        var gate = SequenceGate(next: .max)
        #expect(gate.decide(senderSequence: .max, sequenceNumber: 1, now: 0) == .handle)
        #expect(gate.advanced().next == .max)
        var ahead = SequenceGate()
        #expect(ahead.decide(senderSequence: .max, sequenceNumber: 1, now: .min) == .hold)
        let expired = try #require(ahead.expiredGap(now: .max, timeout: .seconds(1)))
        #expect(expired.gate.next == .max)
        #expect(expired.missing == 1..<Int64.max)
    }

    /// The gate is stored as a document: gates written before it was its own type still read,
    /// and what it writes reads as they did.
    @Test func theStoredFormIsUnchanged() throws {
        let legacy = LegacyGateState(next: 3, held: [5: 50, 7: 70], heldSince: 1234)
        let gate = try MessageCoding.decode(SequenceGate.self, from: MessageCoding.encode(legacy))
        #expect(gate == SequenceGate(next: 3, held: [5: 50, 7: 70], heldSince: 1234))
        #expect(try MessageCoding.decode(LegacyGateState.self, from: MessageCoding.encode(gate)) == legacy)
    }
}

/// The gate's document as the processor wrote it before ``HeraldCQRS/SequenceGate`` existed.
private struct LegacyGateState: Codable, Hashable {
    var next: Int64 = 1
    var held: [Int64: Int64] = [:]
    var heldSince: Int64?
}
