import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

extension Handlers {
    /// The routes that take lock tokens: complete, abandon, defer, dead-letter, renew, resubmit.
    /// The scope check uses the entity each token names.
    func handleLock(_ route: WireRoute, body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .complete:
            let request = try BodyDecoder.decode(CompleteRequest.self, from: body)
            let tokens = try WireLockToken.decode(request.lockTokens)
            for token in tokens { try caller.requireScope(token.entity) }
            let outcome = try await self.countingLockLoss(tokens.first?.entity) {
                try await self.broker.complete(tokens)
            }
            if outcome == .settled {
                for token in tokens { self.metrics.completed(token.entity) }
            }
            return try Self.settled(outcome)

        case .abandon:
            let request = try BodyDecoder.decode(AbandonRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            let delay = try request.delay()
            let outcome = try await self.countingLockLoss(token.entity) {
                try await self.broker.abandon(token, delay: delay)
            }
            if outcome == .settled { self.metrics.abandoned(token.entity) }
            return try Self.settled(outcome)

        case .deferMessage:
            let request = try BodyDecoder.decode(LockRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            let outcome = try await self.countingLockLoss(token.entity) { try await self.broker.defer(token) }
            return try Self.settled(outcome)

        case .deadLetter:
            let request = try BodyDecoder.decode(DeadLetterRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            let outcome = try await self.countingLockLoss(token.entity) {
                try await self.broker.deadLetter(token, reason: request.reason, description: request.description)
            }
            if outcome == .settled { self.metrics.deadLettered(token.entity) }
            return try Self.settled(outcome)

        case .renewLock:
            let request = try BodyDecoder.decode(LockRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            let lockedUntil = try await self.countingLockLoss(token.entity) { try await self.broker.renewLock(token) }
            return try Reply.json(RenewLockResponse(lockedUntil: lockedUntil.millisecondsSince1970))

        case .resubmit:
            let request = try BodyDecoder.decode(LockRequest.self, from: body)
            let token = try self.authorizedToken(request.lockToken, caller)
            let outcome = try await self.countingLockLoss(token.entity) { try await self.broker.resubmit(token) }
            return try Self.settled(outcome)

        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// The answer of a settlement: 204 for a first one (as before remembered settlements existed),
    /// 200 with `{"alreadySettled": true}` for a retry the store remembered.
    private static func settled(_ outcome: SettlementOutcome) throws -> Response {
        switch outcome {
        case .settled: Reply.noContent()
        case .alreadySettled: try Reply.json(SettlementResponse(alreadySettled: true))
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
