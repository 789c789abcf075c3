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
            let rows = try await self.rows(
                """
                SELECT seq, kind, settled_at FROM \(unescaped: self.tables.settlement)
                WHERE entity_id = \(entity.id) AND nonce = \(nonce) AND seq = ANY(\(group.map(\.sequenceNumber)))
                """
            )
            for row in rows {
                let (sequenceNumber, kind, settledAt) = try row.decode((Int64, Int64, Int64).self)
                guard let token = group.first(where: { $0.sequenceNumber == sequenceNumber }), let kind = SettlementKind(rawValue: Int(kind)) else { continue }
                found[token] = RememberedSettlement(kind: kind, settledAt: settledAt)
            }
        }
        return found
    }

    /// Remembers that `token`, of `entity`, settled its message as `kind` now.
    func remember(_ token: LockToken, as kind: SettlementKind, in entity: CachedEntity) async throws {
        try await self.rows(
            """
            INSERT INTO \(unescaped: self.tables.settlement) (entity_id, seq, nonce, kind, settled_at)
            VALUES (\(entity.id), \(token.sequenceNumber), \(token.nonce), \(Int64(kind.rawValue)), \(self.now.wall))
            ON CONFLICT (entity_id, seq, nonce) DO UPDATE SET kind = excluded.kind, settled_at = excluded.settled_at
            """
        )
    }
}
