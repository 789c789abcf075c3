import Foundation
import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

extension Handlers {
    /// The session routes: accept, receive, receive deferred messages, get and set state, renew,
    /// release. The scope check uses the session's entity.
    func handleSession(_ route: WireRoute, body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .acceptSession:
            let request = try BodyDecoder.decode(AcceptSessionRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let wait = try Self.maxWait(request.maxWaitMs)
            let (broker, sessionId) = (self.broker, request.sessionId)
            // No session available within the wait is nothing to do yet, as an empty receive:
            // 204 No Content, not an error.
            let lock: SessionLock? = try await Self.longPoll(wait, whenShutDown: { nil }) {
                do {
                    return try await broker.acceptSession(on: entity, sessionId: sessionId, maxWaitTime: wait)
                } catch let error as HeraldError where error.code == .noSessionAvailable {
                    return nil
                }
            }
            guard let lock else { return Reply.noContent() }
            return try Reply.json(WireSessionLock(lock))

        case .receiveFromSession:
            let request = try BodyDecoder.decode(SessionReceiveRequest.self, from: body)
            let session = try self.authorizedSession(request.session, caller)
            let wait = try Self.maxWait(request.maxWaitMs)
            let messages = try await self.countingLockLoss(session.entity) {
                try await self.receive(from: session, maxCount: request.maxCount ?? 1, wait: wait)
            }
            self.metrics.delivered(messages.count, from: session.entity)
            return try Reply.messages(messages)

        case .receiveDeferredFromSession:
            let request = try BodyDecoder.decode(SessionReceiveDeferredRequest.self, from: body)
            let session = try self.authorizedSession(request.session, caller)
            try HeraldLimits.checkDeferredCount(request.sequenceNumbers)
            try session.entity.checkDistinctDeferred(request.sequenceNumbers, sessionId: session.sessionId)
            let messages = try await self.countingLockLoss(session.entity) {
                try await self.receiveDeferred(request.sequenceNumbers) { page in
                    try await self.broker.receiveDeferred(from: session, sequenceNumbers: page)
                }
            }
            self.metrics.delivered(messages.count, from: session.entity)
            return try Reply.messages(messages)

        case .getSessionState:
            let request = try BodyDecoder.decode(SessionRequest.self, from: body)
            let session = try self.authorizedSession(request.session, caller)
            let state = try await self.countingLockLoss(session.entity) { try await self.broker.sessionState(session) }
            return try Reply.json(SessionStateBody(session: nil, state: state?.base64EncodedString()))

        case .setSessionState:
            let request = try BodyDecoder.decode(SessionStateBody.self, from: body)
            guard let wireSession = request.session else { throw HeraldError(.invalidArgument, "set-state needs the session") }
            let session = try self.authorizedSession(wireSession, caller)
            let state = try request.state.map { encoded throws(HeraldError) in try WireBase64.decode(encoded, "state") }
            try await self.countingLockLoss(session.entity) { try await self.broker.setSessionState(state, for: session) }
            return Reply.noContent()

        case .renewSessionLock:
            let request = try BodyDecoder.decode(SessionRequest.self, from: body)
            let session = try self.authorizedSession(request.session, caller)
            let renewed = try await self.countingLockLoss(session.entity) { try await self.broker.renewSessionLock(session) }
            return try Reply.json(WireSessionLock(renewed))

        case .releaseSession:
            let request = try BodyDecoder.decode(SessionRequest.self, from: body)
            let session = try self.authorizedSession(request.session, caller)
            try await self.countingLockLoss(session.entity) { try await self.broker.releaseSession(session) }
            return Reply.noContent()

        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// The session lock `wire` describes, after checking that the caller's scope covers its entity.
    private func authorizedSession(_ wire: WireSessionLock, _ caller: Caller) throws -> SessionLock {
        let session = try wire.lock()
        try caller.requireScope(session.entity)
        return session
    }
}
