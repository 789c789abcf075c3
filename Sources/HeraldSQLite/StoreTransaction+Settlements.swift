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
        try self.remember(delivery: [token], as: kind, in: entity)
        return .settled
    }

    /// The settlements remembered of `tokens` (forgotten ones included: the caller decides), by token.
    func rememberedSettlements(_ tokens: [LockToken]) throws -> [LockToken: RememberedSettlement] {
        var found: [LockToken: RememberedSettlement] = [:]
        for group in LockToken.groupedByDelivery(tokens) {
            let entity = try self.receiveSource(group[0].entity)
            let bySequenceNumber = Dictionary(group.map { ($0.sequenceNumber, $0) }, uniquingKeysWith: { first, _ in first })
            // The rows of the delivery whose range may hold a token, one result row per token they list.
            let rows = try Row.fetchAll(
                self.db.cachedStatement(
                    sql: """
                        SELECT s.kind, s.settled_at, listed.value FROM settled_delivery s, json_each(s.seqs) listed
                        WHERE s.entity_id = ?1 AND s.nonce = ?2 AND s.first_seq <= ?3 AND s.last_seq >= ?4
                        AND listed.value IN (SELECT value FROM json_each(?5)) ORDER BY s.settled_at
                        """),
                arguments: [
                    entity.id, Self.nonceData(group[0].nonce), bySequenceNumber.keys.max(), bySequenceNumber.keys.min(),
                    Self.jsonArray(bySequenceNumber.keys),
                ]
            )
            // A later row wins: a session's messages keep the session's nonce, so one may settle again.
            for row in rows {
                guard let kind = SettlementKind(rawValue: row[0]), let token = bySequenceNumber[row[2]] else { continue }
                found[token] = RememberedSettlement(kind: kind, settledAt: row[1])
            }
        }
        return found
    }

    /// Remembers that `delivery`, tokens of one delivery of `entity` (one nonce), settled their
    /// messages as `kind` now, as one row; forgets, when ``PruneSchedule`` says, a bounded number of
    /// settlements past ``HeraldCore/HeraldLimits/settlementMemory``. Both callers settle within one
    /// delivery already (a token, or a group of ``HeraldCore/LockToken/groupedByDelivery(_:)``).
    func remember(delivery: [LockToken], as kind: SettlementKind, in entity: EntityRecord) throws {
        guard let first = delivery.first else { return }
        assert(delivery.allSatisfy { $0.nonce == first.nonce && $0.entity == first.entity }, "the tokens of one delivery")
        if self.state.settlementPrune.isDue(now: self.nowMilliseconds) {
            try self.execute(
                """
                DELETE FROM settled_delivery WHERE (entity_id, nonce, first_seq) IN
                    (SELECT entity_id, nonce, first_seq FROM settled_delivery WHERE settled_at <= ? LIMIT \(PruneSchedule.batch))
                """,
                [RememberedSettlement.forgottenBefore(now: self.nowMilliseconds)]
            )
        }
        self.state.settlementPrune.added(1)
        let sequenceNumbers = delivery.map(\.sequenceNumber).sorted()
        var insert = try BoundStatement(
            self.db,
            sql: """
                INSERT OR REPLACE INTO settled_delivery (entity_id, nonce, first_seq, last_seq, kind, settled_at, seqs)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """
        )
        insert.bind(entity.id)
        insert.bind(Self.nonceData(first.nonce))
        insert.bind(sequenceNumbers[0])
        insert.bind(sequenceNumbers[sequenceNumbers.count - 1])
        insert.bind(kind.rawValue)
        insert.bind(self.nowMilliseconds)
        insert.bind(Self.jsonArray(sequenceNumbers))
        try insert.execute()
    }
}
