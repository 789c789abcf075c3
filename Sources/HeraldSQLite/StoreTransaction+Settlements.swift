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
        for token in tokens {
            let entity = try self.receiveSource(token.entity)
            let row = try Row.fetchOne(
                self.db.cachedStatement(sql: "SELECT kind, settled_at FROM settlement WHERE entity_id = ? AND seq = ? AND nonce = ?"),
                arguments: [entity.id, token.sequenceNumber, Self.nonceData(token.nonce)]
            )
            if let row, let kind = SettlementKind(rawValue: row[0]) {
                found[token] = RememberedSettlement(kind: kind, settledAt: row[1])
            }
        }
        return found
    }

    /// Remembers that `tokens`, of `entity`, settled their messages as `kind` now; forgets, when
    /// ``PruneSchedule`` says, a bounded number of settlements past ``HeraldCore/HeraldLimits/settlementMemory``.
    func remember(_ tokens: [LockToken], as kind: SettlementKind, in entity: EntityRecord) throws {
        guard !tokens.isEmpty else { return }
        if self.state.settlementPrune.isDue(now: self.nowMilliseconds) {
            try self.execute(
                """
                DELETE FROM settlement WHERE (entity_id, seq, nonce) IN
                    (SELECT entity_id, seq, nonce FROM settlement WHERE settled_at <= ? LIMIT \(PruneSchedule.batch))
                """,
                [RememberedSettlement.forgottenBefore(now: self.nowMilliseconds)]
            )
        }
        self.state.settlementPrune.added(tokens.count)
        if tokens.count > 1 && Set(tokens.map(\.nonce)).count == 1 {
            let sequenceNumbers = "[" + tokens.map { String($0.sequenceNumber) }.joined(separator: ",") + "]"
            try self.execute(
                """
                INSERT OR REPLACE INTO settlement (entity_id, seq, nonce, kind, settled_at)
                SELECT ?, value, ?, ?, ? FROM json_each(?)
                """,
                [entity.id, Self.nonceData(tokens[0].nonce), kind.rawValue, self.nowMilliseconds, sequenceNumbers]
            )
        } else {
            for token in tokens {
                var insert = try BoundStatement(
                    self.db, sql: "INSERT OR REPLACE INTO settlement (entity_id, seq, nonce, kind, settled_at) VALUES (?, ?, ?, ?, ?)")
                insert.bind(entity.id)
                insert.bind(token.sequenceNumber)
                insert.bind(Self.nonceData(token.nonce))
                insert.bind(kind.rawValue)
                insert.bind(self.nowMilliseconds)
                try insert.execute()
            }
        }
    }
}
