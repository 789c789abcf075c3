public import Foundation
public import HeraldCore
import HeraldWire

extension HeraldClient {
    // MARK: Settlement

    @discardableResult
    public func complete(_ token: LockToken) async throws -> SettlementOutcome {
        try await MessagingTracing.settle("complete", token, tracer: self.tracer) {
            try await self.settle(.complete, body: CompleteRequest(lockTokens: [WireLockToken.encode(token)]))
        }
    }

    @discardableResult
    public func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome {
        // As the stores do: nothing to settle is not a round trip.
        if tokens.isEmpty { return .settled }
        return try await self.settle(.complete, body: CompleteRequest(lockTokens: tokens.map(WireLockToken.encode)))
    }

    @discardableResult
    public func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome {
        try await MessagingTracing.settle("abandon", token, tracer: self.tracer) {
            try await self.settle(.abandon, body: AbandonRequest(lockToken: WireLockToken.encode(token), delayMs: delay.map(\.milliseconds)))
        }
    }

    @discardableResult
    public func `defer`(_ token: LockToken) async throws -> SettlementOutcome {
        try await MessagingTracing.settle("defer", token, tracer: self.tracer) {
            try await self.settle(.deferMessage, body: LockRequest(lockToken: WireLockToken.encode(token)))
        }
    }

    @discardableResult
    public func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome {
        try await MessagingTracing.settle("dead_letter", token, tracer: self.tracer) {
            try await self.settle(.deadLetter, body: DeadLetterRequest(lockToken: WireLockToken.encode(token), reason: reason, description: description))
        }
    }

    public func renewLock(_ token: LockToken) async throws -> Date {
        let response: RenewLockResponse = try await self.fetch(.renewLock, body: LockRequest(lockToken: WireLockToken.encode(token)))
        return Date(millisecondsSince1970: response.lockedUntil)
    }

    @discardableResult
    public func resubmit(_ token: LockToken) async throws -> SettlementOutcome {
        try await MessagingTracing.settle("resubmit", token, tracer: self.tracer) {
            try await self.settle(.resubmit, body: LockRequest(lockToken: WireLockToken.encode(token)))
        }
    }

    /// A settlement's answer: 204 for a first settlement, 200 with `{"alreadySettled": true}` for
    /// a retry the server remembered.
    private func settle(_ route: WireRoute, body: some Encodable) async throws -> SettlementOutcome {
        let answer: SettlementResponse? = try await self.fetchIfAny(route, body: body)
        return answer?.alreadySettled == true ? .alreadySettled : .settled
    }

    // MARK: Sessions

    public func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock {
        // Like a receive, a wait beyond one request's limit is spread over several; only "none
        // available yet" (204 No Content) is worth asking again.
        let lock = try await self.longPoll(maxWaitTime: maxWaitTime, until: { $0 != nil }) { waitMs -> WireSessionLock? in
            let request = AcceptSessionRequest(entity: WireEntity(entity), sessionId: sessionId, maxWaitMs: waitMs)
            return try await self.fetchIfAny(.acceptSession, body: request, waiting: .milliseconds(waitMs))
        }
        guard let lock else { throw HeraldError(.noSessionAvailable, "no session of '\(entity)' has messages and no holder") }
        return try self.sessionLock(lock)
    }

    public func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage] {
        try await MessagingTracing.receive(from: session.entity, tracer: self.tracer) {
            try await self.longPoll(maxWaitTime: maxWaitTime) { waitMs in
                let request = SessionReceiveRequest(session: WireSessionLock(session), maxCount: maxCount, maxWaitMs: waitMs)
                return try await self.messages(.receiveFromSession, request, waiting: .milliseconds(waitMs))
            }
        }
    }

    public func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        try await MessagingTracing.receive(from: session.entity, tracer: self.tracer) {
            let request = SessionReceiveDeferredRequest(session: WireSessionLock(session), sequenceNumbers: sequenceNumbers)
            return try await self.messages(.receiveDeferredFromSession, request)
        }
    }

    public func sessionState(_ session: SessionLock) async throws -> Data? {
        let body: SessionStateBody = try await self.fetch(.getSessionState, body: SessionRequest(session: WireSessionLock(session)))
        guard let state = body.state else { return nil }
        guard let data = Data(base64Encoded: state) else {
            throw HeraldClientError.malformedResponse("getSessionState: the state is not base64")
        }
        return data
    }

    public func setSessionState(_ state: Data?, for session: SessionLock) async throws {
        try await self.invoke(.setSessionState, body: SessionStateBody(session: WireSessionLock(session), state: state?.base64EncodedString()))
    }

    public func renewSessionLock(_ session: SessionLock) async throws -> SessionLock {
        let lock: WireSessionLock = try await self.fetch(.renewSessionLock, body: SessionRequest(session: WireSessionLock(session)))
        return try self.sessionLock(lock)
    }

    public func releaseSession(_ session: SessionLock) async throws {
        try await self.invoke(.releaseSession, body: SessionRequest(session: WireSessionLock(session)))
    }

    private func sessionLock(_ wire: WireSessionLock) throws -> SessionLock {
        do {
            return try wire.lock()
        } catch {
            throw HeraldClientError.malformedResponse("session lock: \(error)")
        }
    }
}
