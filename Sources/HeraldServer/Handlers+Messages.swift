import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

extension Handlers {
    /// The routes that name their entity in the body: send, cancel-scheduled, receive,
    /// receive-deferred, peek, counts.
    func handleMessages(_ route: Route, body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .send:
            let request = try BodyDecoder.decode(SendRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let messages = try request.messages.map { message throws(HeraldError) in try message.message() }
            let receipts = try await self.broker.send(messages, to: entity)
            self.metrics.sent(receipts, to: entity)
            return try Reply.json(SendResponse(receipts: receipts.map(WireReceipt.init)))

        case .cancelScheduled:
            let request = try BodyDecoder.decode(SequenceNumbersRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            try await self.broker.cancelScheduled(request.sequenceNumbers, in: entity)
            return Reply.noContent()

        case .receive:
            let request = try BodyDecoder.decode(ReceiveRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let wait = try Self.maxWait(request.maxWaitMs)
            let (broker, maxCount, mode) = (self.broker, request.maxCount ?? 1, request.mode ?? .peekLock)
            let messages = try await Self.longPoll(wait, whenShutDown: { [] }) {
                try await broker.receive(from: entity, maxCount: maxCount, maxWaitTime: wait, mode: mode)
            }
            self.metrics.delivered(messages.count, from: entity)
            return try Reply.json(MessagesResponse(messages: messages.map(WireReceivedMessage.init)))

        case .receiveDeferred:
            let request = try BodyDecoder.decode(SequenceNumbersRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let messages = try await self.broker.receiveDeferred(from: entity, sequenceNumbers: request.sequenceNumbers)
            self.metrics.delivered(messages.count, from: entity)
            return try Reply.json(MessagesResponse(messages: messages.map(WireReceivedMessage.init)))

        case .peek:
            let request = try BodyDecoder.decode(PeekRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let messages = try await self.broker.peek(entity, fromSequenceNumber: request.fromSequenceNumber ?? 0, maxCount: request.maxCount ?? 1)
            return try Reply.json(MessagesResponse(messages: messages.map(WireReceivedMessage.init)))

        case .counts:
            let request = try BodyDecoder.decode(EntityRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            return try Reply.json(WireCounts(try await self.broker.counts(of: entity)))

        default:
            throw ServerError.notFound(route.path)
        }
    }
}
