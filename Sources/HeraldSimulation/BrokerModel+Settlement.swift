import Foundation
import HeraldCore

// MARK: Settlement

extension BrokerModel {
    /// The message `token` holds a current lock on, or why it does not (GUARANTEES.md §4.3, §4.13).
    private func locked(_ token: LockToken, now: Now) -> Result<MessageState, HeraldError> {
        guard let entity = self.entity(token.entity), let message = entity.messages[token.sequenceNumber],
            message.isDeadLetter == token.entity.isDeadLetter, message.lockNonce == token.nonce
        else { return .failure(HeraldError(.lockLost, "model")) }
        if entity.options.requiresSession && !token.entity.isDeadLetter, let sessionId = message.sessionId {
            guard let hold = entity.holds[sessionId], hold.lockedUntil > now.monotonic else {
                return .failure(HeraldError(.sessionLockLost, "model"))
            }
        } else if (message.lockedUntil ?? 0) <= now.monotonic {
            return .failure(HeraldError(.lockLost, "model"))
        }
        return .success(message)
    }

    /// The answer to settling `token` as `kind` after its lock was found lost with `error`: a
    /// remembered settlement of the same kind is a retry (see ``SettlementOutcome``).
    private func retry(_ token: LockToken, as kind: SettlementKind, after error: HeraldError, now: Now) -> Result<SettlementOutcome, HeraldError> {
        guard error.code == .lockLost, let remembered = self.settlements[token] else { return .failure(error) }
        do {
            return .success(try remembered.retry(kind, of: token, now: now.wall, lockLost: error))
        } catch {
            return .failure(error)
        }
    }

    /// Remembers that `tokens` settled their messages as `kind`; first forgets, when
    /// ``PruneSchedule`` says, settlements past the window, as the store does.
    private mutating func remember(_ tokens: [LockToken], as kind: SettlementKind, now: Now) {
        guard !tokens.isEmpty else { return }
        if self.settlementPrune.isDue(now: now.wall) {
            self.settlements = self.settlements.filter { $0.value.settledAt > RememberedSettlement.forgottenBefore(now: now.wall) }
        }
        self.settlementPrune.added(LockToken.groupedByDelivery(tokens).count)
        for token in tokens {
            self.settlements[token] = RememberedSettlement(kind: kind, settledAt: now.wall)
        }
    }

    mutating func complete(_ tokens: [LockToken], now: Now) -> Result<SettlementOutcome, HeraldError> {
        var completedNow: [LockToken] = []
        for token in tokens {
            switch self.locked(token, now: now) {
            case .success: completedNow.append(token)
            case .failure(let error):
                // A token that completed its message before counts as completed (a retry).
                guard case .success = self.retry(token, as: .complete, after: error, now: now) else { return .failure(error) }
            }
        }
        for token in completedNow {
            let key = token.entity.origin.entityKey
            self.entities[key]!.messages[token.sequenceNumber] = nil
            self.entities[key]!.removed.insert(token.sequenceNumber)
        }
        self.remember(completedNow, as: .complete, now: now)
        return .success(completedNow.isEmpty ? .alreadySettled : .settled)
    }

    mutating func abandon(_ token: LockToken, delay: Duration?, now: Now) -> Result<SettlementOutcome, HeraldError> {
        let message: MessageState
        switch self.locked(token, now: now) {
        case .failure(let error): return self.retry(token, as: .abandon, after: error, now: now)
        case .success(let found): message = found
        }
        let key = token.entity.origin.entityKey
        var entity = self.entities[key]!
        if !token.entity.isDeadLetter && message.deliveryCount >= entity.options.maxDeliveryCount {
            Self.moveToDeadLetter(&entity, token.sequenceNumber, reason: DeadLetterReason.maxDeliveryCountExceeded)
        } else {
            entity.messages[token.sequenceNumber]!.lockNonce = nil
            entity.messages[token.sequenceNumber]!.lockedUntil = nil
            entity.messages[token.sequenceNumber]!.visibleAt = delay.map { $0 > .zero ? now.wall + $0.milliseconds : 0 } ?? 0
        }
        self.entities[key] = entity
        self.remember([token], as: .abandon, now: now)
        return .success(.settled)
    }

    mutating func deferMessage(_ token: LockToken, now: Now) -> Result<SettlementOutcome, HeraldError> {
        if case .failure(let error) = self.locked(token, now: now) { return self.retry(token, as: .deferral, after: error, now: now) }
        if token.entity.isDeadLetter { return .failure(HeraldError(.invalidArgument, "model")) }
        let key = token.entity.origin.entityKey
        self.entities[key]!.messages[token.sequenceNumber]!.state = .deferred
        self.entities[key]!.messages[token.sequenceNumber]!.lockNonce = nil
        self.entities[key]!.messages[token.sequenceNumber]!.lockedUntil = nil
        self.remember([token], as: .deferral, now: now)
        return .success(.settled)
    }

    mutating func deadLetter(_ token: LockToken, reason: String, now: Now) -> Result<SettlementOutcome, HeraldError> {
        if case .failure(let error) = self.locked(token, now: now) { return self.retry(token, as: .deadLetter, after: error, now: now) }
        if token.entity.isDeadLetter { return .failure(HeraldError(.invalidArgument, "model")) }
        Self.moveToDeadLetter(&self.entities[token.entity.origin.entityKey]!, token.sequenceNumber, reason: reason)
        self.remember([token], as: .deadLetter, now: now)
        return .success(.settled)
    }

    mutating func renewLock(_ token: LockToken, now: Now) -> Result<Void, HeraldError> {
        let message: MessageState
        switch self.locked(token, now: now) {
        case .failure(let error): return .failure(error)
        case .success(let found): message = found
        }
        let key = token.entity.origin.entityKey
        var until = now.monotonic + self.entities[key]!.options.lockDuration.nanoseconds
        if self.entities[key]!.options.requiresSession && !token.entity.isDeadLetter, let sessionId = message.sessionId,
            let hold = self.entities[key]!.holds[sessionId]
        {
            until = hold.lockedUntil
        }
        self.entities[key]!.messages[token.sequenceNumber]!.lockedUntil = until
        return .success(())
    }

    mutating func resubmit(_ token: LockToken, now: Now) -> Result<SettlementOutcome, HeraldError> {
        guard token.entity.isDeadLetter else { return .failure(HeraldError(.invalidArgument, "model")) }
        let message: MessageState
        switch self.locked(token, now: now) {
        case .failure(let error): return self.retry(token, as: .resubmit, after: error, now: now)
        case .success(let found): message = found
        }
        var resubmitted = message
        resubmitted.isDeadLetter = false
        resubmitted.state = .active
        resubmitted.deliveryCount = 0
        resubmitted.lockNonce = nil
        resubmitted.lockedUntil = nil
        resubmitted.visibleAt = 0
        resubmitted.expiresAt = message.timeToLive.map { now.wall + $0 }
        resubmitted.deadLetterReason = nil
        resubmitted.deliveryCountAtDeadLetter = nil
        self.entities[token.entity.origin.entityKey]!.messages[token.sequenceNumber] = resubmitted
        self.remember([token], as: .resubmit, now: now)
        return .success(.settled)
    }
}
