import Foundation
import GRDB
import HeraldCore

// Remembering settlements, so that a retried settlement learns what happened (SettlementOutcome).
// The rows are written in the settlement's own transaction: what a crash keeps of one, it keeps
// of the other.

extension StoreTransaction {
    /// Runs `settle`, which settles `token` as `kind`, and remembers the settlement; when `settle`
    /// finds the lock lost, answers a retry of a remembered settlement instead.
    func settling(_ token: LockToken, as kind: SettlementKind, _ settle: () throws -> EntityRecord) throws -> SettlementOutcome {
        let entity: EntityRecord
        do {
            entity = try settle()
        } catch let error as HeraldError where error.code == .lockLost {
            guard let remembered = try self.rememberedSettlements([token])[token] else { throw error }
            return try remembered.retry(kind, of: token, now: self.nowMilliseconds, lockLost: error)
        }
        try self.remember([token], as: kind, in: entity)
        return .settled
    }

    /// The settlements remembered of `tokens` (forgotten ones included: the caller decides), by token.
    func rememberedSettlements(_ tokens: [LockToken]) throws -> [LockToken: RememberedSettlement] {
        var found: [LockToken: RememberedSettlement] = [:]
        for group in LockToken.groupedByDelivery(tokens) {
            let entity = try self.receiveSource(group[0].entity)
            let sequenceNumbers = group.map(\.sequenceNumber)
            let rows = try Row.fetchAll(
                self.db.cachedStatement(
                    sql: """
                        SELECT kind, settled_at, seqs FROM settled_delivery
                        WHERE entity_id = ? AND nonce = ? AND first_seq <= ? AND last_seq >= ? ORDER BY settled_at
                        """),
                arguments: [entity.id, Self.nonceData(group[0].nonce), sequenceNumbers.max(), sequenceNumbers.min()]
            )
            // A later row wins: a session's messages keep the session's nonce, so one may settle again.
            for row in rows {
                guard let kind = SettlementKind(rawValue: row[0]) else { continue }
                let settled = Set(SettledSequenceNumbers.parse(row[2]))
                for token in group where settled.contains(token.sequenceNumber) {
                    found[token] = RememberedSettlement(kind: kind, settledAt: row[1])
                }
            }
        }
        return found
    }

    /// Remembers that `tokens`, of `entity`, settled their messages as `kind` now (a row for the
    /// tokens of each delivery); forgets, when ``PruneSchedule`` says, a bounded number of
    /// settlements past ``HeraldCore/HeraldLimits/settlementMemory``.
    func remember(_ tokens: [LockToken], as kind: SettlementKind, in entity: EntityRecord) throws {
        guard !tokens.isEmpty else { return }
        if self.state.settlementPrune.isDue(now: self.nowMilliseconds) {
            try self.execute(
                """
                DELETE FROM settled_delivery WHERE (entity_id, nonce, first_seq) IN
                    (SELECT entity_id, nonce, first_seq FROM settled_delivery WHERE settled_at <= ? LIMIT \(PruneSchedule.batch))
                """,
                [RememberedSettlement.forgottenBefore(now: self.nowMilliseconds)]
            )
        }
        for group in LockToken.groupedByDelivery(tokens) {
            self.state.settlementPrune.added(1)
            let sequenceNumbers = group.map(\.sequenceNumber).sorted()
            var insert = try BoundStatement(
                self.db,
                sql: """
                    INSERT OR REPLACE INTO settled_delivery (entity_id, nonce, first_seq, last_seq, kind, settled_at, seqs)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """
            )
            insert.bind(entity.id)
            insert.bind(Self.nonceData(group[0].nonce))
            insert.bind(sequenceNumbers[0])
            insert.bind(sequenceNumbers[sequenceNumbers.count - 1])
            insert.bind(kind.rawValue)
            insert.bind(self.nowMilliseconds)
            insert.bind(SettledSequenceNumbers.text(sequenceNumbers))
            try insert.execute()
        }
    }
}

/// The sequence numbers a row of `settled_delivery` lists: a JSON array of integers.
enum SettledSequenceNumbers {
    /// `[1,2,3]`.
    static func text(_ sequenceNumbers: [Int64]) -> String {
        "[" + sequenceNumbers.map(String.init).joined(separator: ",") + "]"
    }

    /// The numbers of a ``text(_:)``; what is not a number is passed over.
    static func parse(_ text: String) -> [Int64] {
        text.utf8.split(whereSeparator: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "]") })
            .compactMap { Int64(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces)) }
    }
}
