import HeraldCore
import HeraldWire
import Hummingbird
import Logging
import NIOCore

extension Handlers {
    /// The routes that name their entity in the body: send, cancel-scheduled, receive,
    /// receive-deferred, peek, counts.
    func handleMessages(_ route: WireRoute, body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .send:
            let request = try BodyDecoder.decode(SendRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let messages = try request.messages.map { message throws(HeraldError) in try message.message() }
            let receipts = try await self.broker.send(messages, to: entity)
            self.metrics.sent(receipts, to: entity)
            return Reply.receipts(receipts)

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
            if let maxBytes = request.maxBytes, maxBytes < 1 { throw HeraldError(.invalidArgument, "maxBytes must be positive, not \(maxBytes)") }
            let budget = min(request.maxBytes ?? .max, self.messageBudget)
            let (broker, maxCount, mode) = (self.broker, request.maxCount ?? 1, request.mode ?? .peekLock)
            // Receive-and-delete locks too, and deletes once the answer is written (see deletingOnceWritten).
            let messages = try await Self.longPoll(wait, whenShutDown: { [] }) {
                try await broker.receive(from: entity, maxCount: maxCount, maxBytes: budget, maxWaitTime: wait, mode: .peekLock)
            }
            // Only a long poll can outlast its client by more than an instant; a receive that did not
            // wait skips the check (a look-up on the connection's event loop).
            if wait > .zero, !messages.isEmpty, let connection = ClientConnection.current, connection.isGone() {
                // The client left while its messages were being locked: nobody will read them.
                await self.release(messages)
                return Reply.noContent()
            }
            self.metrics.delivered(messages.count, from: entity)
            if mode == .receiveAndDelete { return try self.deletingOnceWritten(messages) }
            return try Reply.messages(messages)

        case .receiveDeferred:
            let request = try BodyDecoder.decode(SequenceNumbersRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            try HeraldLimits.checkDeferredCount(request.sequenceNumbers)
            let messages = try await self.receiveDeferred(request.sequenceNumbers) { page in
                try await self.broker.receiveDeferred(from: entity, sequenceNumbers: page)
            }
            self.metrics.delivered(messages.count, from: entity)
            return try Reply.messages(messages)

        case .peek:
            let request = try BodyDecoder.decode(PeekRequest.self, from: body)
            let entity = try request.entity.path()
            try caller.requireScope(entity)
            let messages = try await self.peek(entity, from: request.fromSequenceNumber ?? 0, maxCount: request.maxCount ?? 1)
            return try Reply.messages(messages)

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

extension Handlers {
    /// What the bodies and properties of one answer's messages may count: half the response
    /// budget (base64 makes a body a third larger and JSON adds each message's fields), or less
    /// when many answers are prepared at once (``AnswerMemory``).
    var messageBudget: Int { self.answerMemory.share(upTo: self.maxResponseBodySize / 2) }

    /// Peeks up to `maxCount` messages from `sequenceNumber` on, page by page, stopping before
    /// the answer would pass its budget (the first message always fits).
    func peek(_ entity: EntityPath, from sequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] {
        try HeraldLimits.checkReceiveCount(maxCount)
        var budget = ReceiveBudget(maxBytes: self.messageBudget)
        var pages = PageSizer()
        var messages: [ReceivedMessage] = []
        var next = sequenceNumber
        while messages.count < maxCount {
            let wanted = pages.next(remainingCount: maxCount - messages.count, remainingBytes: budget.remainingBytes)
            let page = try await self.broker.peek(entity, fromSequenceNumber: next, maxCount: wanted)
            pages.saw(page)
            let admitted = budget.admit(page.map(\.message.budgetSize))
            messages += page.prefix(admitted)
            guard admitted == wanted, let last = page.last?.sequenceNumber, last < .max else { break }
            next = last + 1
        }
        return messages
    }

    /// Receives deferred messages a page at a time with `receive` (from an entity, or from a
    /// session), stopping before the answer would pass its budget: the numbers left out were not
    /// looked at, and the client asks for them again. A page that fails gives the pages before it
    /// back (they become deferred again), so that the request fails as a whole.
    func receiveDeferred(
        _ sequenceNumbers: [Int64], _ receive: ([Int64]) async throws -> [ReceivedMessage]
    ) async throws -> [ReceivedMessage] {
        var budget = ReceiveBudget(maxBytes: self.messageBudget)
        var pages = PageSizer()
        var messages: [ReceivedMessage] = []
        var start = 0
        while start < sequenceNumbers.count && !budget.isSpent {
            let size = pages.next(remainingCount: sequenceNumbers.count - start, remainingBytes: budget.remainingBytes)
            let page = Array(sequenceNumbers[start..<start + size])
            let received: [ReceivedMessage]
            do {
                received = try await receive(page)
            } catch {
                await self.release(messages)
                throw error
            }
            messages += received
            pages.saw(received)
            _ = budget.admit(received.map(\.message.budgetSize))
            start += page.count
        }
        return messages
    }

    /// Receives from a session a page at a time (the first page waits up to `wait`), stopping
    /// before the answer would pass its budget.
    func receive(from session: SessionLock, maxCount: Int, wait: Duration) async throws -> [ReceivedMessage] {
        try HeraldLimits.checkReceiveCount(maxCount)
        let broker = self.broker
        var budget = ReceiveBudget(maxBytes: self.messageBudget)
        var pages = PageSizer()
        let first = pages.next(remainingCount: maxCount, remainingBytes: budget.remainingBytes)
        var messages = try await Self.longPoll(wait, whenShutDown: { [] }) {
            try await broker.receive(from: session, maxCount: first, maxWaitTime: wait)
        }
        if wait > .zero, !messages.isEmpty, let connection = ClientConnection.current, connection.isGone() {
            await self.release(messages)
            return []
        }
        pages.saw(messages)
        var full = messages.count == first && budget.admit(messages.map(\.message.budgetSize)) == messages.count
        while full && messages.count < maxCount {
            let wanted = pages.next(remainingCount: maxCount - messages.count, remainingBytes: budget.remainingBytes)
            let page = try await broker.receive(from: session, maxCount: wanted, maxWaitTime: .zero)
            pages.saw(page)
            messages += page
            full = page.count == wanted && budget.admit(page.map(\.message.budgetSize)) == page.count
        }
        return messages
    }

    /// Gives locked messages back at once (an abandon without delay), for a client that left.
    func release(_ messages: [ReceivedMessage]) async {
        for token in messages.compactMap(\.lockToken) {
            do {
                try await self.broker.abandon(token, delay: nil)
            } catch {
                self.logger.debug("cannot release a lock", metadata: ["herald.lock_token": "\(token)", "error": "\(error)"])
            }
        }
    }

    /// The answer of a receive-and-delete: the locked `messages` shown as received and deleted,
    /// deleted (completed) only once the answer has been handed to the connection. An answer that
    /// cannot be written (the client left) gives them back instead, so that a receive-and-delete
    /// never deletes what nobody received; the cost is one delivery count. Should the server stop
    /// between the write and the completion, the messages are delivered again when their lock
    /// expires: over HTTP a receive-and-delete is at-most-once for the client that reads its
    /// answer, never a loss for the queue.
    func deletingOnceWritten(_ messages: [ReceivedMessage]) throws -> Response {
        let tokens = messages.compactMap(\.lockToken)
        let shown = messages.map { message in
            var shown = message
            shown.lockToken = nil
            shown.lockedUntil = nil
            return shown
        }
        let bytes = try Reply.messagesJSON(shown)
        guard !tokens.isEmpty else { return Reply.bytes(bytes, contentType: "application/json") }
        let handlers = self
        return Response(
            status: .ok,
            headers: [.contentType: "application/json", .contentLength: String(bytes.count)],
            body: ResponseBody(contentLength: bytes.count) { writer in
                do {
                    try await writer.write(ByteBuffer(bytes: bytes))
                    try await writer.finish(nil)
                } catch {
                    await handlers.release(messages)
                    throw error
                }
                await handlers.complete(tokens)
            }
        )
    }

    /// Completes `tokens`, one by one when the batch fails, logging those that cannot be.
    private func complete(_ tokens: [LockToken]) async {
        do {
            try await self.broker.complete(tokens)
            return
        } catch {}
        for token in tokens {
            do {
                try await self.broker.complete(token)
            } catch {
                self.logger.warning(
                    "a receive-and-delete answer was written but its message could not be deleted; it will be delivered again",
                    metadata: ["herald.lock_token": "\(token)", "error": "\(error)"]
                )
            }
        }
    }
}

/// Sizes the pages of a paged read (peek, deferred and session receives) so that what a page
/// loads past the answer's budget stays about one message: the first page is small, later ones
/// hold as many of the largest message seen so far as the budget still has room for.
struct PageSizer {
    static let firstPage = 4
    static let largestPage = 64
    private var largest = 0

    mutating func saw(_ messages: [ReceivedMessage]) {
        self.largest = max(self.largest, messages.map(\.message.budgetSize).max() ?? 0)
    }

    func next(remainingCount: Int, remainingBytes: Int) -> Int {
        let byBytes = self.largest == 0 ? Self.firstPage : remainingBytes / max(1, self.largest)
        return max(1, min(remainingCount, Self.largestPage, byBytes))
    }
}
