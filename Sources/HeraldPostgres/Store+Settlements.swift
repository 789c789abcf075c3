import Foundation
import HeraldCore
import PostgresNIO

// Remembering settlements, so that a retried settlement learns what happened (SettlementOutcome).
// The rows are written in the settlement's own transaction (or statement): what a crash keeps of
// one, it keeps of the other.

extension Store {
    /// Runs `settle`, which settles `token` as `kind` and returns its entity and a value, and
    /// remembers the settlement; when `settle` finds the lock lost, answers a retry of a
    /// remembered settlement instead, with `retried` as the value.
    func settling<T>(
        _ token: LockToken, as kind: SettlementKind, retried: T, _ settle: () async throws -> (entity: CachedEntity, value: T)
    ) async throws -> (outcome: SettlementOutcome, value: T) {
        let settled: (entity: CachedEntity, value: T)
        do {
            settled = try await settle()
        } catch let error as HeraldError where error.code == .lockLost {
            let entity = try await self.receiveSource(token.entity)
            guard let remembered = try await self.rememberedSettlements(of: entity, [token])[token] else { throw error }
            return (try remembered.retry(kind, of: token, now: self.now.wall, lockLost: error), retried)
        }
        try await self.remember(token, as: kind, in: settled.entity)
        return (.settled, settled.value)
    }

    /// The settlements remembered of `tokens` of `entity` (forgotten ones included: the caller decides), by token.
    func rememberedSettlements(of entity: CachedEntity, _ tokens: [LockToken]) async throws -> [LockToken: RememberedSettlement] {
        var found: [LockToken: RememberedSettlement] = [:]
        for (nonce, group) in Dictionary(grouping: tokens, by: \.nonce) {
            // A later row wins: a session's messages keep the session's nonce, so one may settle again.
            let rows = try await self.rows(
                """
                SELECT kind, settled_at, seqs FROM \(unescaped: self.tables.settledDelivery)
                WHERE entity_id = \(entity.id) AND nonce = \(nonce) AND seqs && \(group.map(\.sequenceNumber)) ORDER BY settled_at
                """
            )
            for row in rows {
                let (kind, settledAt, sequenceNumbers) = try row.decode((Int64, Int64, [Int64]).self)
                guard let kind = SettlementKind(rawValue: Int(kind)) else { continue }
                let settled = Set(sequenceNumbers)
                for token in group where settled.contains(token.sequenceNumber) {
                    found[token] = RememberedSettlement(kind: kind, settledAt: settledAt)
                }
            }
        }
        return found
    }

    /// Remembers that `token`, of `entity`, settled its message as `kind` now.
    func remember(_ token: LockToken, as kind: SettlementKind, in entity: CachedEntity) async throws {
        try await self.rows(
            """
            INSERT INTO \(unescaped: self.tables.settledDelivery) (entity_id, nonce, kind, settled_at, seqs)
            VALUES (\(entity.id), \(token.nonce), \(Int64(kind.rawValue)), \(self.now.wall), \([token.sequenceNumber]))
            """
        )
    }
}
