import HeraldCore
import Synchronization

// MARK: - The sequence gate's reads and writes (its rules are SequenceGate's)

extension MessageProcessor {
    /// The document collection that keeps one ``SequenceGate`` per source and sender.
    static let gateCollection = "herald.sequence-gate"

    /// A message's way through its sender's gate: the decision, and the gate to write with it.
    struct GatePassage {
        /// What happens to the message.
        var decision: SequenceGate.Decision
        /// The gate's document key.
        var key: String
        /// The gate after the decision (still to be advanced when the message is handled).
        var gate: SequenceGate
        /// The version of the gate's document the decision was made on.
        var version: Int64

        /// Writes `gate` into `transaction`, on condition that nobody moved the gate since it was read.
        func write(_ gate: SequenceGate, in transaction: inout BrokerTransaction) throws {
            transaction.write(try MessageCoding.encode(gate), collection: MessageProcessor.gateCollection, key: self.key, expectedVersion: self.version)
        }
    }

    private func gateKey(_ sender: String) -> String { "\(self.source)|\(sender)" }

    /// Reads the gate of `sender` and decides what happens to `message`, its `sequence`th.
    func passGate(_ message: ReceivedMessage, sender: String, sequence: Int64) async throws -> GatePassage {
        let key = self.gateKey(sender)
        let document = try await self.broker.document(key, in: Self.gateCollection)
        var gate = try document.map { try MessageCoding.decode(SequenceGate.self, from: $0.data) } ?? SequenceGate()
        let decision = gate.decide(senderSequence: sequence, sequenceNumber: message.sequenceNumber, now: self.clock.now().millisecondsSince1970)
        return GatePassage(decision: decision, key: key, gate: gate, version: document?.version ?? 0)
    }

    /// Handles the held message that is next in line, if any, and so on. Not while draining: a
    /// later sweep of ``releaseExpiredGaps()`` releases it.
    func releaseHeld(_ key: String) async throws {
        guard !self.isDraining, let document = try await self.broker.document(key, in: Self.gateCollection) else { return }
        let gate = try MessageCoding.decode(SequenceGate.self, from: document.data)
        guard let sequenceNumber = gate.releasable else { return }
        let released: [ReceivedMessage]
        do {
            released = try await self.broker.receiveDeferred(from: self.source, sequenceNumbers: [sequenceNumber])
        } catch let error as HeraldError where error.code == .messageNotFound {
            return  // another worker released it
        }
        for message in released { try await self.process(message) }
    }

    /// Releases held messages that are next in line, and dead-letters messages held longer than
    /// the gate's timeout and moves the gate past them.
    func releaseExpiredGaps() async throws {
        guard let timeout = self.configuration.sequenceGate else { return }
        // Look at most a few times per timeout (and at least once a second), not on every receive.
        let now = self.clock.monotonicNow()
        let due = self.lastGapSweep.withLock { last -> Bool in
            if let previous = last, now - previous < min(timeout / 4, .seconds(1)) { return false }
            last = now
            return true
        }
        guard due else { return }
        let wallNow = self.clock.now().millisecondsSince1970
        let prefix = "\(self.source)|"
        for (key, document) in try await self.broker.documents(in: Self.gateCollection) where key.hasPrefix(prefix) {
            let gate = try MessageCoding.decode(SequenceGate.self, from: document.data)
            if gate.releasable != nil {
                // Next in line but still held: its release failed and was abandoned (a deferred
                // message stays deferred), or the worker stopped before releasing it.
                try await self.releaseHeld(key)
                continue
            }
            guard let expired = gate.expiredGap(now: wallNow, timeout: timeout) else { continue }
            let held: [ReceivedMessage]
            do {
                held = try await self.broker.receiveDeferred(from: self.source, sequenceNumbers: expired.sequenceNumbers)
            } catch let error as HeraldError where error.code == .messageNotFound {
                continue  // another worker is on it
            }
            let tokens = held.compactMap(\.lockToken)
            var transaction = BrokerTransaction()
            for token in tokens {
                transaction.deadLetter(token, reason: ProcessorDeadLetterReason.sequenceGapTimeout, description: expired.description(timeout: timeout))
            }
            transaction.write(try MessageCoding.encode(expired.gate), collection: Self.gateCollection, key: key, expectedVersion: document.version)
            do {
                _ = try await self.broker.commit(transaction)
                self.count { $0.deadLettered[ProcessorDeadLetterReason.sequenceGapTimeout, default: 0] += held.count }
                for message in held {
                    self.logDeadLetter(message, reason: ProcessorDeadLetterReason.sequenceGapTimeout, description: expired.description(timeout: timeout))
                }
            } catch let error as HeraldError where error.code == .concurrencyConflict || error.code == .lockLost {
                for token in tokens { _ = try? await self.broker.abandon(token, delay: nil) }
            }
        }
    }
}
