import Foundation
import HeraldCore
import PostgresNIO

extension Store {
    private func sessionEntity(_ path: EntityPath) async throws -> CachedEntity {
        try path.checkSessionPath()
        let entity = try await self.receiveSource(path)
        try path.checkSessionsEnabled(entity.options)
        return entity
    }

    /// Removes, at most once a second per broker, expired duplicate-detection entries, forgotten
    /// settlements and session rows that hold nothing (no state, not parked, not locked), a
    /// bounded number at a time.
    func pruneIfDue() async throws {
        guard self.broker.shouldPrune(self.now) else { return }
        try await self.rows(
            """
            DELETE FROM \(unescaped: self.tables.settledDelivery) WHERE ctid IN
                (SELECT ctid FROM \(unescaped: self.tables.settledDelivery) WHERE settled_at <= \(RememberedSettlement.forgottenBefore(now: self.now.wall)) LIMIT 10000)
            """
        )
        try await self.rows(
            """
            DELETE FROM \(unescaped: self.tables.dedup) WHERE ctid IN
                (SELECT ctid FROM \(unescaped: self.tables.dedup) WHERE expires_at <= \(self.now.wall) LIMIT 10000)
            """
        )
        try await self.rows(
            """
            DELETE FROM \(unescaped: self.tables.session) WHERE ctid IN
                (SELECT ctid FROM \(unescaped: self.tables.session) WHERE state IS NULL AND NOT parked
                 AND (lock_nonce IS NULL OR locked_until <= \(self.now.lock)) LIMIT 1000)
            """
        )
    }

    /// Accepts `sessionId`, or the session with the oldest available message; `nil` when none is free.
    func acceptSession(on path: EntityPath, sessionId: String?) async throws -> (lock: SessionLock, entityId: Int64)? {
        let entity = try await self.sessionEntity(path)
        try await self.pruneIfDue()
        var candidates: [String]
        if let sessionId {
            try HeraldLimits.checkSessionId(sessionId)
            candidates = [sessionId]
        } else {
            try await self.sweepExpired(entity)
            candidates = try await self.rows(
                """
                SELECT m.session_id, min(m.seq) AS first FROM \(unescaped: self.tables.message) m
                LEFT JOIN \(unescaped: self.tables.session) s ON s.entity_id = m.entity_id AND s.session_id = m.session_id
                WHERE m.entity_id = \(entity.id) AND NOT m.dlq AND m.state <> 1 AND m.visible_at <= \(self.now.wall) AND m.session_id IS NOT NULL
                AND NOT COALESCE(s.parked, FALSE) AND (s.lock_nonce IS NULL OR s.locked_until <= \(self.now.lock))
                GROUP BY m.session_id ORDER BY first LIMIT 20
                """
            ).map { try $0.decode((String, Int64).self).0 }
        }
        let nonce = try RandomIdentifier.uuid()
        let until = self.now.lock + entity.options.lockDuration.milliseconds
        for candidate in candidates {
            let taken = try await self.rows(
                """
                INSERT INTO \(unescaped: self.tables.session) AS s (entity_id, session_id, lock_nonce, locked_until)
                VALUES (\(entity.id), \(candidate), \(nonce), \(until))
                ON CONFLICT (entity_id, session_id) DO UPDATE SET lock_nonce = excluded.lock_nonce, locked_until = excluded.locked_until
                WHERE s.lock_nonce IS NULL OR s.locked_until <= \(self.now.lock)
                RETURNING 1
                """
            )
            if taken.isEmpty {
                if sessionId != nil {
                    throw HeraldError(.sessionCannotBeLocked, "session '\(candidate)' of '\(path)' is held by another receiver")
                }
                continue  // taken by another receiver since the query
            }
            // Locks of the previous holder's messages die with its session lock.
            try await self.rows(
                """
                UPDATE \(unescaped: self.tables.message) SET lock_nonce = NULL, locked_until = NULL
                WHERE entity_id = \(entity.id) AND session_id = \(candidate) AND NOT dlq AND lock_nonce IS NOT NULL
                """
            )
            let lock = SessionLock(entity: entity.path, sessionId: candidate, nonce: nonce, lockedUntil: self.now.display(lock: until))
            return (lock, entity.id)
        }
        return nil
    }

    /// Checks, with the session's row locked, that `session` is the current, unexpired holder;
    /// returns the entity and the session row's lock expiry and parking.
    private func heldSession(_ session: SessionLock) async throws -> (CachedEntity, until: Int64, parked: Bool) {
        let entity = try await self.sessionEntity(session.entity)
        let rows = try await self.rows(
            """
            SELECT lock_nonce, locked_until, parked FROM \(unescaped: self.tables.session)
            WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId) FOR UPDATE
            """
        )
        guard let row = rows.first else { throw session.lost }
        let (nonce, until, parked) = try row.decode((UUID?, Int64?, Bool).self)
        guard nonce == session.nonce, let until, until > self.now.lock else { throw session.lost }
        return (entity, until, parked)
    }

    func receive(from session: SessionLock, maxCount: Int) async throws -> ReceiveOutcome {
        try HeraldLimits.checkReceiveCount(maxCount)
        let (entity, until, parkedAtStart) = try await self.heldSession(session)
        var wake: Set<String> = []
        if try await self.sweepExpired(entity) { wake.insert(entity.waitKey(deadLetter: true)) }
        let park = entity.options.parkSessionOnDeadLetter
        if park {
            // The sweep may have parked the session.
            let parked = try await self.rows(
                "SELECT parked FROM \(unescaped: self.tables.session) WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId)"
            )
            let parkedBySweep = try parked.first?.decode(Bool.self) ?? false
            if parkedAtStart || parkedBySweep { return ReceiveOutcome(messages: [], wake: wake) }
        }
        let nonce = try RandomIdentifier.uuid()
        var received: [ReceivedMessage] = []
        receiving: while received.count < maxCount {
            let wanted = maxCount - received.count
            let rows = try await self.rows(
                """
                SELECT \(unescaped: Self.messageColumns()) FROM \(unescaped: self.tables.message)
                WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId) AND NOT dlq AND state <> 1
                AND NOT (state = 2 AND visible_at > \(self.now.wall)) AND lock_nonce IS NULL
                ORDER BY seq LIMIT \(Int64(wanted)) FOR UPDATE
                """
            ).map { try self.decode($0, entity: entity) }
            var deliverable: [StoredMessage] = []
            var skipped = false
            var stop = false
            for row in rows {
                // Strictly in order: a message not yet visible again holds back those after it.
                if row.visibleAt > self.now.wall {
                    stop = true
                    break
                }
                if entity.options.isExhausted(deliveryCount: row.deliveryCount, inDeadLetterQueue: false) {
                    try await self.deadLetterExhausted(entity, sequenceNumber: row.sequenceNumber, sessionId: row.sessionId)
                    wake.insert(entity.waitKey(deadLetter: true))
                    skipped = true
                    if park {
                        stop = true
                        break
                    }
                } else {
                    deliverable.append(row)
                }
            }
            if !deliverable.isEmpty {
                try await self.rows(
                    """
                    UPDATE \(unescaped: self.tables.message) SET lock_nonce = \(nonce), locked_until = \(until), delivery_count = delivery_count + 1, state = 0
                    WHERE entity_id = \(entity.id) AND seq = ANY(\(deliverable.map(\.sequenceNumber)))
                    """
                )
                for row in deliverable {
                    var message = row.received
                    message.deliveryCount += 1
                    message.state = .active
                    message.lockToken = LockToken(entity: message.entity, sequenceNumber: row.sequenceNumber, nonce: nonce)
                    message.lockedUntil = self.now.display(lock: until)
                    received.append(message)
                }
            }
            if stop { break receiving }
            if !skipped || rows.count < wanted { break }
        }
        self.broker.locks.add(
            nonce: nonce, entityId: entity.id, deadLetter: false, sequenceNumbers: received.map(\.sequenceNumber),
            lockedUntil: until, lockNow: self.now.lock
        )
        return ReceiveOutcome(messages: received, wake: wake)
    }

    /// Locks deferred messages of the session by number, as `receive(from:maxCount:)` locks the
    /// session's messages: until the session lock's expiry (a message its holder locked is not
    /// found again; the next holder's accept unlocks it). A parked session still gives them.
    func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) async throws -> ReceiveOutcome {
        try HeraldLimits.checkDeferredCount(sequenceNumbers)
        let (entity, until, _) = try await self.heldSession(session)
        try session.entity.checkDistinctDeferred(sequenceNumbers, sessionId: session.sessionId)
        return try await self.lockDeferred(sequenceNumbers, of: entity, from: session.entity, sessionId: session.sessionId, lockedUntil: until)
    }

    func sessionState(_ session: SessionLock) async throws -> Data? {
        let (entity, _, _) = try await self.heldSession(session)
        let rows = try await self.rows(
            "SELECT state FROM \(unescaped: self.tables.session) WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId)"
        )
        return try rows.first?.decode(Data?.self) ?? nil
    }

    func setSessionState(_ state: Data?, for session: SessionLock) async throws {
        try HeraldLimits.checkSessionState(state)
        let (entity, _, _) = try await self.heldSession(session)
        try await self.rows(
            "UPDATE \(unescaped: self.tables.session) SET state = \(state) WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId)"
        )
    }

    func renewSessionLock(_ session: SessionLock) async throws -> SessionLock {
        let (entity, _, _) = try await self.heldSession(session)
        let until = self.now.lock + entity.options.lockDuration.milliseconds
        try await self.rows(
            "UPDATE \(unescaped: self.tables.session) SET locked_until = \(until) WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId)"
        )
        try await self.rows(
            """
            UPDATE \(unescaped: self.tables.message) SET locked_until = \(until)
            WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId) AND NOT dlq AND lock_nonce IS NOT NULL
            """
        )
        var renewed = session
        renewed.lockedUntil = self.now.display(lock: until)
        return renewed
    }

    func releaseSession(_ session: SessionLock) async throws -> Set<String> {
        let (entity, _, _) = try await self.heldSession(session)
        try await self.rows(
            """
            UPDATE \(unescaped: self.tables.message) SET lock_nonce = NULL, locked_until = NULL
            WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId) AND NOT dlq AND lock_nonce IS NOT NULL
            """
        )
        try await self.rows(
            """
            UPDATE \(unescaped: self.tables.session) SET lock_nonce = NULL, locked_until = NULL
            WHERE entity_id = \(entity.id) AND session_id = \(session.sessionId)
            """
        )
        return [entity.waitKey(deadLetter: false)]
    }
}
