import Foundation
public import HeraldCore
import HeraldWire

extension HeraldClient {
    // MARK: Sending

    public func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] {
        // As the stores do: an empty batch is acknowledged without touching the entity.
        if messages.isEmpty { return [] }
        return try await MessagingTracing.send(messages, to: entity, tracer: self.tracer) { messages in
            try await self.sendUntraced(messages, to: entity)
        }
    }

    private func sendUntraced(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] {
        let response: SendResponse = try await self.fetch(.send, body: SendRequest(entity: WireEntity(entity), messages: messages.map(WireMessage.init)))
        guard response.receipts.count == messages.count else {
            throw HeraldClientError.malformedResponse("send: \(response.receipts.count) receipts for \(messages.count) messages")
        }
        return response.receipts.map(\.receipt)
    }

    public func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws {
        try await self.invoke(.cancelScheduled, body: SequenceNumbersRequest(entity: WireEntity(entity), sequenceNumbers: sequenceNumbers))
    }

    // MARK: Receiving

    public func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxBytes: nil, maxWaitTime: maxWaitTime, mode: mode)
    }

    public func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxBytes: Optional(maxBytes), maxWaitTime: maxWaitTime, mode: mode)
    }

    private func receive(from entity: EntityPath, maxCount: Int, maxBytes: Int?, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] {
        try await MessagingTracing.receive(from: entity, tracer: self.tracer) {
            try await self.longPoll(maxWaitTime: maxWaitTime) { waitMs in
                let request = ReceiveRequest(entity: WireEntity(entity), maxCount: maxCount, maxWaitMs: waitMs, mode: mode, maxBytes: maxBytes)
                return try await self.messages(.receive, request, waiting: .milliseconds(waitMs))
            }
        }
    }

    public func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] {
        try await MessagingTracing.receive(from: entity, tracer: self.tracer) {
            try await self.messages(.receiveDeferred, SequenceNumbersRequest(entity: WireEntity(entity), sequenceNumbers: sequenceNumbers))
        }
    }

    public func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try await self.messages(.peek, PeekRequest(entity: WireEntity(entity), fromSequenceNumber: fromSequenceNumber, maxCount: maxCount))
    }

    public func counts(of entity: EntityPath) async throws -> EntityCounts {
        let counts: WireCounts = try await self.fetch(.counts, body: EntityRequest(entity: WireEntity(entity)))
        return counts.counts
    }

    // MARK: Helpers

    /// Calls a route that answers with messages, and reads them.
    func messages(_ route: WireRoute, _ request: any Encodable, waiting: Duration = .zero) async throws -> [ReceivedMessage] {
        let response: MessagesResponse = try await self.fetch(route, body: request, waiting: waiting)
        do {
            return try response.messages.map { try $0.received() }
        } catch {
            throw HeraldClientError.malformedResponse("\(route.operationId): \(error)")
        }
    }

    /// Runs `attempt` with waits of at most ``HeraldWire/WireLimits/maxWaitPerRequest`` (in
    /// milliseconds) until `isDone` accepts its result or `maxWaitTime` has passed; returns the
    /// last result.
    ///
    /// The first attempt passes the caller's wait through (clamped), so the server judges a
    /// negative one as a store would. A task cancelled between attempts gets the last result (as a
    /// store's waiting receive returns what it has on cancellation).
    func longPoll<Answer>(
        maxWaitTime: Duration, until isDone: (Answer) -> Bool, _ attempt: (Int64) async throws -> Answer
    ) async throws -> Answer {
        let deadline = ContinuousClock.now + maxWaitTime
        var wait = maxWaitTime
        while true {
            let result = try await attempt(min(wait.milliseconds, WireLimits.maxWaitPerRequest.milliseconds))
            wait = deadline - ContinuousClock.now
            if isDone(result) || wait < .milliseconds(1) || Task.isCancelled { return result }
        }
    }

    /// ``longPoll(maxWaitTime:until:_:)`` for messages: until some arrive.
    func longPoll(maxWaitTime: Duration, _ attempt: (Int64) async throws -> [ReceivedMessage]) async throws -> [ReceivedMessage] {
        try await self.longPoll(maxWaitTime: maxWaitTime, until: { !$0.isEmpty }, attempt)
    }
}
