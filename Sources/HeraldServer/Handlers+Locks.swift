import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

extension Handlers {
    /// The routes that take lock tokens: complete, abandon, defer, dead-letter, renew, resubmit.
    /// The scope check uses the entity each token names.
    func handleLock(_ route: Route, body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .complete:
            let request = try BodyDecoder.decode(CompleteRequest.self, from: body)
            let tokens = try request.lockTokens.map { token throws(HeraldError) in try WireLockToken.decode(token) }
            for token in tokens { try caller.requireScope(token.entity) }
            try await self.countingLockLoss(tokens.first?.entity) {
                try await self.broker.complete(tokens)
            }
            for token in tokens { self.metrics.completed(token.entity) }
            return Reply.noContent()

        case .abandon:
            let request = try BodyDecoder.decode(AbandonRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            let delay = try request.delay()
            try await self.countingLockLoss(token.entity) {
                try await self.broker.abandon(token, delay: delay)
            }
            self.metrics.abandoned(token.entity)
            return Reply.noContent()

        case .deferMessage:
            let request = try BodyDecoder.decode(LockRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            try await self.countingLockLoss(token.entity) { try await self.broker.defer(token) }
            return Reply.noContent()

        case .deadLetter:
            let request = try BodyDecoder.decode(DeadLetterRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            try await self.countingLockLoss(token.entity) {
                try await self.broker.deadLetter(token, reason: request.reason, description: request.description)
            }
            self.metrics.deadLettered(token.entity)
            return Reply.noContent()

        case .renewLock:
            let request = try BodyDecoder.decode(LockRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            let lockedUntil = try await self.countingLockLoss(token.entity) { try await self.broker.renewLock(token) }
            return try Reply.json(RenewLockResponse(lockedUntil: lockedUntil.millisecondsSince1970))

        case .resubmit:
            let request = try BodyDecoder.decode(LockRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            try await self.countingLockLoss(token.entity) { try await self.broker.resubmit(token) }
            return Reply.noContent()

        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// The token `text` names, after checking that the caller's scope covers its entity.
    private func authorizedToken(_ text: String, _ caller: Caller) throws -> LockToken {
        let token = try WireLockToken.decode(text)
        try caller.requireScope(token.entity)
        return token
    }

    /// Runs `operation`, counting a `lockLost` or `sessionLockLost` error against `entity`.
    func countingLockLoss<T>(_ entity: EntityPath?, _ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let error as HeraldError where error.code == .lockLost || error.code == .sessionLockLost {
            if let entity { self.metrics.lockLost(entity) }
            throw error
        }
    }
}
