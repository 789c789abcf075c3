import Foundation
import HeraldCore
import HeraldSQLite

// MARK: Sessions

extension Simulator {
    func acceptSession() async throws {
        let sessionId: String? = self.random.chance(50) ? nil : self.random.pick(Self.sessionIds)!
        let what = "accept session \(sessionId ?? "(next)") of \(Self.orders)"
        let actual = try await self.check(what, keepsEffectsOnFailure: sessionId == nil) {
            try await self.broker.acceptSession(on: Self.orders, sessionId: sessionId, maxWaitTime: .zero)
        } expect: { model, actual, now -> Result<String?, HeraldError> in
            let nonce = (try? actual.get())?.nonce ?? Self.dummyNonce
            return switch model.acceptSession(on: Self.orders, sessionId: sessionId, nonce: nonce, now: now) {
            case .success(nil): .failure(HeraldError(.noSessionAvailable, "model: no session available"))
            case let other: other
            }
        } compare: { lock, expectedId in
            guard lock.sessionId == expectedId else {
                throw self.fail("wrong answer", "\(what): accepted \(lock.sessionId), the model expected \(expectedId ?? "none")")
            }
        }
        if case .success(let lock) = actual {
            self.sessions.append(lock)
            if self.sessions.count > 6 { self.sessions.removeFirst() }
        }
    }

    func receiveSession() async throws {
        guard let session = self.random.pick(self.sessions) else { return }
        let maxCount = self.random.int(1...3)
        let what = "receive \(maxCount) from session \(session.sessionId)"
        let actual = try await self.check(what) {
            try await self.broker.receive(from: session, maxCount: maxCount, maxWaitTime: .zero)
        } expect: { model, actual, now in
            model.receive(from: session, maxCount: maxCount, nonce: Self.nonce(of: actual), now: now)
        } compare: { messages, expectedMessages in
            try self.compareDeliveries(what, messages, expectedMessages, session: true)
        }
        if case .success(let messages) = actual { self.hold(messages) }
    }

    /// Receives deferred messages of a session by number: mostly with a lock still held and of
    /// its own deferred messages; sometimes with a lost lock, or a number of another session or
    /// one not deferred (not found, and nothing changes).
    func receiveSessionDeferred() async throws {
        let orders = self.model.entity(Self.orders)!
        let now = self.now
        let messages = orders.ordered
        func deferred(of session: SessionLock) -> [Int64] {
            messages.filter { $0.sessionId == session.sessionId && $0.state == .deferred && !$0.isDeadLetter && $0.lockNonce == nil }.map(\.sequenceNumber)
        }
        let held = self.sessions.filter { lock in
            orders.holds[lock.sessionId].map { $0.nonce == lock.nonce && $0.lockedUntil > now.monotonic } ?? false
        }
        let holding = held.filter { !deferred(of: $0).isEmpty }
        let candidates = self.random.chance(20) ? self.sessions : holding.isEmpty ? held : holding
        guard let session = self.random.pick(candidates.isEmpty ? self.sessions : candidates) else { return }
        let own = deferred(of: session)
        var numbers: [Int64] = []
        if let pick = self.random.pick(own) { numbers.append(pick) }
        if numbers.isEmpty || self.random.chance(15) {
            let number = Int64(self.random.int(1...Int(max(1, orders.lastSequence))))
            if !numbers.contains(number) { numbers.append(number) }
        }
        let what = "receive deferred \(numbers) from session \(session.sessionId)"
        let actual = try await self.check(what) {
            try await self.broker.receiveDeferred(from: session, sequenceNumbers: numbers)
        } expect: { model, actual, now in
            model.receiveDeferred(from: session, sequenceNumbers: numbers, nonce: Self.nonce(of: actual), now: now)
        } compare: { messages, expectedMessages in
            try self.compareDeliveries(what, messages, expectedMessages, session: false)
        }
        if case .success(let messages) = actual { self.hold(messages) }
    }

    func renewSession() async throws {
        guard !self.sessions.isEmpty else { return }
        let index = self.random.int(0...(self.sessions.count - 1))
        let session = self.sessions[index]
        try await self.check("renew session \(session.sessionId)") {
            try await self.broker.renewSessionLock(session)
        } expect: { model, _, now in
            model.renewSessionLock(session, now: now)
        }
    }

    func releaseSession() async throws {
        guard !self.sessions.isEmpty else { return }
        let session = self.sessions.remove(at: self.random.int(0...(self.sessions.count - 1)))
        try await self.check("release session \(session.sessionId)") {
            try await self.broker.releaseSession(session)
        } expect: { model, _, now in
            model.releaseSession(session, now: now)
        }
    }

    func sessionState() async throws {
        guard let session = self.random.pick(self.sessions) else { return }
        if self.random.chance(50) {
            let state: Data? = self.random.chance(15) ? nil : Data(self.nextId("state-").utf8)
            try await self.check("set state of session \(session.sessionId)") {
                try await self.broker.setSessionState(state, for: session)
            } expect: { model, _, now in
                model.setSessionState(state, for: session, now: now)
            }
        } else {
            let what = "get state of session \(session.sessionId)"
            try await self.check(what) {
                try await self.broker.sessionState(session)
            } expect: { model, _, now in
                model.sessionState(session, now: now)
            } compare: { state, expectedState in
                guard state == expectedState else {
                    throw self.fail("session state lost", "\(what): read \(Self.text(state)), expected \(Self.text(expectedState))")
                }
            }
        }
    }

    /// Session state as the failure report shows it.
    private static func text(_ state: Data?) -> String {
        state.map { String(decoding: $0, as: UTF8.self) } ?? "nil"
    }
}
