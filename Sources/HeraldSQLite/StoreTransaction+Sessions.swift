import Foundation
import GRDB
import HeraldCore

extension StoreTransaction {
    private func sessionEntity(_ path: EntityPath) throws -> EntityRecord {
        try path.checkSessionPath()
        let entity = try self.receiveSource(path)
        try path.checkSessionsEnabled(entity.options)
        return entity
    }

    /// Accepts `sessionId`, or the session with the oldest available message; `nil` when none is free.
    func acceptSession(on path: EntityPath, sessionId: String?) throws -> SessionLock? {
        let entity = try self.sessionEntity(path)
        let chosen: String
        if let sessionId {
            try HeraldLimits.checkSessionId(sessionId)
            if let hold = self.state.sessionLocks[entity.id]?[sessionId], hold.lockedUntil > self.monotonic {
                throw HeraldError(.sessionCannotBeLocked, "session '\(sessionId)' of '\(path)' is held by another receiver")
            }
            chosen = sessionId
        } else {
            try self.sweep(entity)
            guard let next = try self.nextAvailableSession(entity) else { return nil }
            chosen = next
        }
        let hold = SessionHold(nonce: try RandomIdentifier.uuid(), lockedUntil: self.monotonic + entity.options.lockDuration.nanoseconds)
        // Locks of the previous holder's messages die with its session lock.
        try self.unlockMessages(of: entity, session: chosen)
        self.state.sessionLocks[entity.id, default: [:]][chosen] = hold
        return SessionLock(entity: entity.path, sessionId: chosen, nonce: hold.nonce, lockedUntil: self.wallTime(ofMonotonic: hold.lockedUntil))
    }

    private func nextAvailableSession(_ entity: EntityRecord) throws -> String? {
        let held = self.state.sessionLocks[entity.id]?.filter { $0.value.lockedUntil > self.monotonic }.keys ?? [:].keys
        var offset = 0
        while true {
            let rows = try Row.fetchAll(
                self.db.cachedStatement(
                    sql: """
                        SELECT m.session_id, MIN(m.seq) AS first FROM message m
                        LEFT JOIN session s ON s.entity_id = m.entity_id AND s.session_id = m.session_id
                        WHERE m.entity_id = ? AND m.dlq = 0 AND m.state = 0 AND m.visible_at <= ? AND m.session_id IS NOT NULL
                        AND COALESCE(s.parked, 0) = 0
                        GROUP BY m.session_id ORDER BY first LIMIT 100 OFFSET ?
                        """),
                arguments: [entity.id, self.nowMilliseconds, offset]
            )
            for row in rows {
                let sessionId: String = row[0]
                if !held.contains(sessionId) { return sessionId }
            }
            if rows.count < 100 { return nil }
            offset += rows.count
        }
    }

    /// Checks that `session` is the current, unexpired holder of its session.
    func heldSession(_ session: SessionLock) throws -> (EntityRecord, SessionHold) {
        let entity = try self.sessionEntity(session.entity)
        guard let hold = self.state.sessionLocks[entity.id]?[session.sessionId], hold.nonce == session.nonce,
            hold.lockedUntil > self.monotonic
        else {
            throw session.lost
        }
        return (entity, hold)
    }

    func receive(from session: SessionLock, maxCount: Int) throws -> [ReceivedMessage] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let (entity, hold) = try self.heldSession(session)
        try self.sweep(entity)
        let nonce = try RandomIdentifier.uuid()
        var received: [ReceivedMessage] = []
        receiving: while received.count < maxCount {
            if try self.isParked(entity, session.sessionId) { break }
            let wanted = maxCount - received.count
            let rows = try self.fetchMessages(
                """
                SELECT \(Self.messageColumns) FROM message
                WHERE entity_id = ? AND session_id = ? AND dlq = 0 AND state = 0 AND lock_nonce IS NULL
                AND (expires_at IS NULL OR expires_at > ?)
                ORDER BY seq LIMIT ?
                """,
                [entity.id, session.sessionId, self.nowMilliseconds, wanted],
                entity: entity
            )
            var skipped = false
            for row in rows {
                // Strictly in order: a message not yet visible again holds back those after it.
                if row.visibleAt > self.nowMilliseconds { break receiving }
                if let message = try self.deliver(row, of: entity, mode: .peekLock, nonce: nonce, lockedUntil: hold.lockedUntil) {
                    received.append(message)
                } else {
                    skipped = true
                    if entity.options.parkSessionOnDeadLetter { break receiving }
                }
            }
            if !skipped || rows.count < wanted { break }
        }
        return received
    }

    /// Locks deferred messages of the session by number, as `receive(from:maxCount:)` locks the
    /// session's messages: while the session lock holds (a message locked by its holder is not
    /// found again, and the next holder's accept unlocks it). A parked session still gives them.
    func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) throws -> [ReceivedMessage] {
        try HeraldLimits.checkDeferredCount(sequenceNumbers)
        let (entity, hold) = try self.heldSession(session)
        try session.entity.checkDistinctDeferred(sequenceNumbers, sessionId: session.sessionId)
        var rows: [StoredMessage] = []
        for sequenceNumber in sequenceNumbers {
            let found = try self.fetchMessages(
                """
                SELECT \(Self.messageColumns) FROM message
                WHERE entity_id = ? AND seq = ? AND session_id = ? AND dlq = 0 AND state = 1 AND lock_nonce IS NULL
                """,
                [entity.id, sequenceNumber, session.sessionId],
                entity: entity
            )
            guard let row = found.first else { throw session.entity.deferredNotFound(sequenceNumber, sessionId: session.sessionId) }
            rows.append(row)
        }
        return try self.deliverDeferred(rows, of: entity, from: session.entity, lockedUntil: hold.lockedUntil)
    }

    private func isParked(_ entity: EntityRecord, _ sessionId: String) throws -> Bool {
        guard entity.options.parkSessionOnDeadLetter else { return false }
        let parked = try Bool.fetchOne(
            self.db.cachedStatement(sql: "SELECT parked FROM session WHERE entity_id = ? AND session_id = ?"),
            arguments: [entity.id, sessionId]
        )
        return parked ?? false
    }

    func sessionState(_ session: SessionLock) throws -> Data? {
        let (entity, _) = try self.heldSession(session)
        let state = try Row.fetchOne(
            self.db.cachedStatement(sql: "SELECT state FROM session WHERE entity_id = ? AND session_id = ?"),
            arguments: [entity.id, session.sessionId]
        )
        return state?[0]
    }

    func setSessionState(_ state: Data?, for session: SessionLock) throws {
        try HeraldLimits.checkSessionState(state)
        let (entity, _) = try self.heldSession(session)
        try self.execute(
            "INSERT INTO session (entity_id, session_id, state) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET state = excluded.state",
            [entity.id, session.sessionId, state]
        )
    }

    func renewSessionLock(_ session: SessionLock) throws -> SessionLock {
        var (entity, hold) = try self.heldSession(session)
        hold.lockedUntil = self.monotonic + entity.options.lockDuration.nanoseconds
        self.state.sessionLocks[entity.id]?[session.sessionId] = hold
        try self.execute(
            "UPDATE message SET locked_until = ? WHERE entity_id = ? AND session_id = ? AND dlq = 0 AND lock_nonce IS NOT NULL",
            [hold.lockedUntil, entity.id, session.sessionId]
        )
        var renewed = session
        renewed.lockedUntil = self.wallTime(ofMonotonic: hold.lockedUntil)
        return renewed
    }

    func releaseSession(_ session: SessionLock) throws {
        let (entity, _) = try self.heldSession(session)
        try self.unlockMessages(of: entity, session: session.sessionId)
        self.state.sessionLocks[entity.id]?[session.sessionId] = nil
        self.state.touch(entity)
    }

    /// Unlocks the messages of `sessionId` that its holder had locked; the walks of `entity` start
    /// from the first candidate again when one was.
    private func unlockMessages(of entity: EntityRecord, session sessionId: String) throws {
        try self.execute(
            "UPDATE message SET lock_nonce = NULL, locked_until = NULL WHERE entity_id = ? AND session_id = ? AND dlq = 0 AND lock_nonce IS NOT NULL",
            [entity.id, sessionId]
        )
        if self.db.changesCount > 0 { self.state.messagesMayBeReady(in: entity.id) }
    }
}
