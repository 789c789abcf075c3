import Foundation
import HeraldCore

// MARK: Sessions

extension BrokerModel {
    /// Accepts `sessionId`, or the available session with the oldest message; `.success(nil)`
    /// when none is available.
    mutating func acceptSession(on path: EntityPath, sessionId: String?, nonce: UUID, now: Now) -> Result<String?, HeraldError> {
        guard var entity = self.entity(path), !path.isDeadLetter else { return .failure(HeraldError(.invalidArgument, "model")) }
        guard entity.options.requiresSession else { return .failure(HeraldError(.sessionNotEnabled, "model")) }
        let chosen: String
        if let sessionId {
            if let hold = entity.holds[sessionId], hold.lockedUntil > now.monotonic {
                return .failure(HeraldError(.sessionCannotBeLocked, "model"))
            }
            chosen = sessionId
        } else {
            Self.sweep(&entity, now: now)
            var firstBySession: [(String, Int64)] = []
            var seen: Set<String> = []
            for message in entity.ordered {
                guard let session = message.sessionId, !message.isDeadLetter, message.state == .active, message.visibleAt <= now.wall,
                    !seen.contains(session)
                else { continue }
                seen.insert(session)
                firstBySession.append((session, message.sequenceNumber))
            }
            guard let next = firstBySession.first(where: { entity.holds[$0.0].map { $0.lockedUntil <= now.monotonic } ?? true }) else {
                self.entities[entity.path.entityKey] = entity
                return .success(nil)
            }
            chosen = next.0
        }
        for sequenceNumber in entity.messages.keys.sorted() {
            let message = entity.messages[sequenceNumber]!
            if message.sessionId == chosen && !message.isDeadLetter && message.lockNonce != nil {
                entity.messages[sequenceNumber]!.lockNonce = nil
                entity.messages[sequenceNumber]!.lockedUntil = nil
            }
        }
        entity.holds[chosen] = SessionHold(nonce: nonce, lockedUntil: now.monotonic + entity.options.lockDuration.nanoseconds)
        self.entities[entity.path.entityKey] = entity
        return .success(chosen)
    }

    private func held(_ session: SessionLock, now: Now) -> Result<SessionHold, HeraldError> {
        guard let entity = self.entity(session.entity), entity.options.requiresSession else {
            return .failure(HeraldError(.sessionNotEnabled, "model"))
        }
        guard let hold = entity.holds[session.sessionId], hold.nonce == session.nonce, hold.lockedUntil > now.monotonic else {
            return .failure(HeraldError(.sessionLockLost, "model"))
        }
        return .success(hold)
    }

    mutating func receive(from session: SessionLock, maxCount: Int, nonce: UUID, now: Now) -> Result<[MessageState], HeraldError> {
        let hold: SessionHold
        switch self.held(session, now: now) {
        case .failure(let error): return .failure(error)
        case .success(let found): hold = found
        }
        let key = session.entity.entityKey
        var entity = self.entities[key]!
        Self.sweep(&entity, now: now)
        var received: [MessageState] = []
        for message in entity.ordered where received.count < maxCount {
            guard message.sessionId == session.sessionId, !message.isDeadLetter, message.state == .active, message.lockNonce == nil else {
                continue
            }
            // Strictly in order: a message not yet visible again holds back those after it.
            if message.visibleAt > now.wall { break }
            if message.deliveryCount >= entity.options.maxDeliveryCount {
                Self.moveToDeadLetter(&entity, message.sequenceNumber, reason: DeadLetterReason.maxDeliveryCountExceeded)
                continue
            }
            received.append(Self.lock(&entity, message.sequenceNumber, nonce: nonce, until: hold.lockedUntil))
        }
        self.entities[key] = entity
        return .success(received)
    }

    /// Receives deferred messages of the session by number: locked as the session's messages
    /// are, until the session lock's expiry; all or nothing.
    mutating func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64], nonce: UUID, now: Now) -> Result<[MessageState], HeraldError> {
        let hold: SessionHold
        switch self.held(session, now: now) {
        case .failure(let error): return .failure(error)
        case .success(let found): hold = found
        }
        guard Set(sequenceNumbers).count == sequenceNumbers.count else { return .failure(HeraldError(.messageNotFound, "model")) }
        let key = session.entity.entityKey
        var entity = self.entities[key]!
        for sequenceNumber in sequenceNumbers {
            guard let message = entity.messages[sequenceNumber], message.sessionId == session.sessionId, !message.isDeadLetter,
                message.state == .deferred, message.lockNonce == nil
            else { return .failure(HeraldError(.messageNotFound, "model")) }
        }
        var received: [MessageState] = []
        for sequenceNumber in sequenceNumbers {
            // Each lock counts, even of a message asked for by number (GUARANTEES.md §4.4).
            if entity.messages[sequenceNumber]!.deliveryCount >= entity.options.maxDeliveryCount {
                Self.moveToDeadLetter(&entity, sequenceNumber, reason: DeadLetterReason.maxDeliveryCountExceeded)
            } else {
                received.append(Self.lock(&entity, sequenceNumber, nonce: nonce, until: hold.lockedUntil))
            }
        }
        self.entities[key] = entity
        return .success(received)
    }

    func sessionState(_ session: SessionLock, now: Now) -> Result<Data?, HeraldError> {
        if case .failure(let error) = self.held(session, now: now) { return .failure(error) }
        return .success(self.entities[session.entity.entityKey]!.sessionStates[session.sessionId])
    }

    mutating func setSessionState(_ state: Data?, for session: SessionLock, now: Now) -> Result<Void, HeraldError> {
        if case .failure(let error) = self.held(session, now: now) { return .failure(error) }
        self.entities[session.entity.entityKey]!.sessionStates[session.sessionId] = state
        return .success(())
    }

    mutating func renewSessionLock(_ session: SessionLock, now: Now) -> Result<Void, HeraldError> {
        if case .failure(let error) = self.held(session, now: now) { return .failure(error) }
        let key = session.entity.entityKey
        let until = now.monotonic + self.entities[key]!.options.lockDuration.nanoseconds
        self.entities[key]!.holds[session.sessionId]!.lockedUntil = until
        for sequenceNumber in self.entities[key]!.messages.keys.sorted() {
            let message = self.entities[key]!.messages[sequenceNumber]!
            if message.sessionId == session.sessionId && !message.isDeadLetter && message.lockNonce != nil {
                self.entities[key]!.messages[sequenceNumber]!.lockedUntil = until
            }
        }
        return .success(())
    }

    mutating func releaseSession(_ session: SessionLock, now: Now) -> Result<Void, HeraldError> {
        if case .failure(let error) = self.held(session, now: now) { return .failure(error) }
        let key = session.entity.entityKey
        for sequenceNumber in self.entities[key]!.messages.keys.sorted() {
            let message = self.entities[key]!.messages[sequenceNumber]!
            if message.sessionId == session.sessionId && !message.isDeadLetter && message.lockNonce != nil {
                self.entities[key]!.messages[sequenceNumber]!.lockNonce = nil
                self.entities[key]!.messages[sequenceNumber]!.lockedUntil = nil
            }
        }
        self.entities[key]!.holds[session.sessionId] = nil
        return .success(())
    }
}
