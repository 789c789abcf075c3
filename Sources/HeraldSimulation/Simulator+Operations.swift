import Foundation
import HeraldCore
import HeraldSQLite

// MARK: Sending

extension Simulator {
    private func makeMessage(for target: EntityPath) -> Message {
        let prefix = target == Self.work ? "w" : target == Self.orders ? "o" : "e"
        var messageId = self.nextId(prefix)
        if self.random.chance(12), let recent = self.random.pick(self.recentIds[target.entityKey] ?? []) {
            messageId = recent
        } else {
            self.recentIds[target.entityKey, default: []].append(messageId)
            if self.recentIds[target.entityKey]!.count > 20 { self.recentIds[target.entityKey]!.removeFirst() }
        }
        var message = Message(messageId: messageId, body: Data("body of \(messageId) #\(self.counter)".utf8))
        if target == Self.orders { message.sessionId = self.random.pick(Self.sessionIds)! }
        if target == Self.events { message.subject = self.random.chance(50) ? "odd" : "even" }
        if self.random.chance(15) { message.timeToLive = .milliseconds(self.random.int(500...30_000)) }
        if self.random.chance(10) {
            message.scheduledEnqueueTime = self.clock.now().addingTimeInterval(Double(self.random.int(-2000...20_000)) / 1000)
        }
        return message
    }

    func send(to target: EntityPath) async throws {
        // Keep entities small: past 150 messages, receivers catch up instead.
        let backlog = target == Self.events ? [Self.all, Self.odd] : [target]
        if backlog.contains(where: { (self.model.entity($0)?.messages.count ?? 0) > 150 }) {
            if target == Self.orders {
                return try await (self.sessions.isEmpty || self.random.chance(30) ? self.acceptSession() : self.receiveSession())
            }
            return try await self.receive(mode: .peekLock, from: target == Self.events ? self.random.pick([Self.all, Self.odd])! : target)
        }
        var messages = (0..<self.random.int(1...(self.random.chance(20) ? 6 : 3))).map { _ in self.makeMessage(for: target) }
        if target == Self.work && self.random.chance(4) {
            // One invalid message rejects the whole batch.
            let index = self.random.int(0...(messages.count - 1))
            messages[index].body = Data(repeating: 0x61, count: Self.maxBodySize + 1)
        }
        let what = "send \(messages.map(\.messageId)) to \(target)"
        let highest = self.model.entity(target)?.highestAcknowledged ?? 0
        let actual = try await self.check(what) {
            try await self.broker.send(messages, to: target)
        } expect: { model, _, now in
            model.send(messages, to: target, now: now)
        } compare: { receipts, expectedReceipts in
            var previous: Int64?
            for (receipt, expectedReceipt) in zip(receipts, expectedReceipts) {
                if expectedReceipt.isDuplicate && !receipt.isDuplicate {
                    throw self.fail(
                        "duplicate enqueued within window",
                        "\(what): \(receipt) for a messageId accepted within the window (original #\(expectedReceipt.sequenceNumber ?? -1))")
                }
                if !receipt.isDuplicate, let sequenceNumber = receipt.sequenceNumber {
                    if sequenceNumber <= highest {
                        throw self.fail(
                            "sequence numbers strictly increasing, never reused", "\(what): got #\(sequenceNumber), #\(highest) was acknowledged before")
                    }
                    if let previous, sequenceNumber != previous + 1 {
                        throw self.fail("a batch gets consecutive sequence numbers", "\(what): #\(previous) then #\(sequenceNumber)")
                    }
                    previous = sequenceNumber
                }
            }
            guard receipts == expectedReceipts else {
                throw self.fail("wrong answer", "\(what): receipts \(receipts), the model expected \(expectedReceipts)")
            }
        }
        if case .success(let receipts) = actual { self.model.acknowledge(receipts, to: target) }
    }

    func cancelScheduled() async throws {
        let scheduled = self.model.entity(Self.work)!.ordered.filter { $0.state == .scheduled }.map(\.sequenceNumber)
        var numbers: [Int64] = []
        if let pick = self.random.pick(scheduled) { numbers.append(pick) }
        if numbers.isEmpty || self.random.chance(20) { numbers.append(Int64(self.random.int(1...Int(max(1, self.model.entity(Self.work)!.lastSequence))))) }
        try await self.check("cancel scheduled \(numbers) of \(Self.work)") {
            try await self.broker.cancelScheduled(numbers, in: Self.work)
        } expect: { model, _, now in
            model.cancelScheduled(numbers, in: Self.work, now: now)
        }
    }

    /// Cancels through the topic, by the topic's sequence numbers: one of a scheduled copy, and
    /// at times another assigned number (scheduled, due or gone).
    func cancelScheduledOnTopic() async throws {
        let copies = [Self.all, Self.odd].flatMap { self.model.entity($0)!.ordered }
        let scheduled = Set(copies.filter { $0.state == .scheduled }.compactMap(\.topicSequence)).sorted()
        var numbers: [Int64] = []
        if let pick = self.random.pick(scheduled) { numbers.append(pick) }
        if numbers.isEmpty || self.random.chance(20) { numbers.append(Int64(self.random.int(1...Int(max(1, self.model.entity(Self.events)!.lastSequence))))) }
        try await self.check("cancel scheduled \(numbers) of \(Self.events)") {
            try await self.broker.cancelScheduled(numbers, in: Self.events)
        } expect: { model, _, now in
            model.cancelScheduled(numbers, in: Self.events, now: now)
        }
    }
}

// MARK: Receiving

extension Simulator {
    func receive(mode: ReceiveMode, from entity: EntityPath) async throws {
        let maxCount = self.random.int(1...4)
        let what = "receive \(maxCount) from \(entity) (\(mode.rawValue))"
        let actual = try await self.check(what) {
            try await self.broker.receive(from: entity, maxCount: maxCount, maxWaitTime: .zero, mode: mode)
        } expect: { model, actual, now in
            model.receive(from: entity, maxCount: maxCount, mode: mode, nonce: Self.nonce(of: actual), now: now)
        } compare: { messages, expectedMessages in
            try self.compareDeliveries(what, messages, expectedMessages, session: false)
        }
        if case .success(let messages) = actual { self.hold(messages) }
    }

    func receiveDeferred() async throws {
        let entity = self.random.pick([Self.work, Self.all, Self.odd])!
        let deferred = self.model.entity(entity)!.ordered.filter { $0.state == .deferred && !$0.isDeadLetter }.map(\.sequenceNumber)
        var numbers: [Int64] = []
        if let pick = self.random.pick(deferred) { numbers.append(pick) }
        if numbers.isEmpty || self.random.chance(15) {
            let number = Int64(self.random.int(1...Int(max(1, self.model.entity(entity)!.lastSequence))))
            if !numbers.contains(number) { numbers.append(number) }
        }
        let what = "receive deferred \(numbers) from \(entity)"
        let actual = try await self.check(what) {
            try await self.broker.receiveDeferred(from: entity, sequenceNumbers: numbers)
        } expect: { model, actual, now in
            model.receiveDeferred(from: entity, sequenceNumbers: numbers, nonce: Self.nonce(of: actual), now: now)
        } compare: { messages, expectedMessages in
            try self.compareDeliveries(what, messages, expectedMessages, session: false)
        }
        if case .success(let messages) = actual { self.hold(messages) }
    }

    /// The nonce of the locks a receive took, or a dummy one when it took none (the model then
    /// locks nothing either, or the answers differ anyway).
    static func nonce(of received: Result<[ReceivedMessage], any Error>) -> UUID {
        (try? received.get())?.first?.lockToken?.nonce ?? Self.dummyNonce
    }
}

// MARK: Settling

extension Simulator {
    func complete() async throws {
        guard let first = self.takeHeld() else { return }
        var tokens = [first]
        if self.random.chance(25) {
            // Tokens of one receive, completed together. (Tokens of several receives would make
            // the store's order of work, and so the exact I/O a crash lands on, depend on hash
            // order; its error code for several lost groups too.)
            let more = self.held.filter { $0.nonce == first.nonce && $0.entity == first.entity }.prefix(self.random.int(1...2))
            self.held.removeAll { token in more.contains(token) }
            tokens += more
        }
        let what = "complete \(tokens.map { "\($0.entity)#\($0.sequenceNumber)" })"
        let actual = try await self.check(what) {
            if tokens.count == 1 { return try await self.broker.complete(tokens[0]) }
            return try await self.broker.complete(tokens)
        } expect: { model, _, now in
            model.complete(tokens, now: now)
        } compare: { outcome, expectedOutcome in
            try self.compareOutcome(what, outcome, expectedOutcome)
        }
        self.maybeRetryLater(tokens, after: actual)
    }

    /// Fails unless a settlement answered as the model expects: settled now, or already settled
    /// by the same token (a retry).
    private func compareOutcome(_ what: String, _ outcome: SettlementOutcome, _ expected: SettlementOutcome) throws {
        guard outcome == expected else {
            throw self.fail("a retried settlement answers truthfully", "\(what): the broker answered \(outcome), the model expected \(expected)")
        }
    }

    /// Keeps some settled tokens to settle again later, as a receiver retries a settlement whose
    /// answer it lost: once acknowledged (an in-doubt one may have left the model a branch whose
    /// settlements differ from the store's only in what it remembers).
    private func maybeRetryLater(_ tokens: [LockToken], after actual: Result<SettlementOutcome, any Error>) {
        guard case .success = actual, self.random.chance(20) else { return }
        self.held += tokens
    }

    func settle(_ settlement: Settlement) async throws {
        guard let token = self.takeHeld() else { return }
        let what: String
        let operation: () async throws -> SettlementOutcome
        let expect: (inout BrokerModel, BrokerModel.Now) -> Result<SettlementOutcome, HeraldError>
        switch settlement {
        case .abandon:
            let delay: Duration? = self.random.chance(30) ? .milliseconds(self.random.int(0...Self.maxAbandonDelayMilliseconds)) : nil
            what = "abandon \(token.entity)#\(token.sequenceNumber) delay \(delay.map { "\($0)" } ?? "none")"
            operation = { try await self.broker.abandon(token, delay: delay) }
            expect = { model, now in model.abandon(token, delay: delay, now: now) }
        case .deferMessage:
            what = "defer \(token.entity)#\(token.sequenceNumber)"
            operation = { try await self.broker.defer(token) }
            expect = { model, now in model.deferMessage(token, now: now) }
        case .deadLetter:
            let reason = self.random.pick(["Poison", "Rejected"])!
            what = "dead-letter \(token.entity)#\(token.sequenceNumber) \(reason)"
            operation = { try await self.broker.deadLetter(token, reason: reason, description: nil) }
            expect = { model, now in model.deadLetter(token, reason: reason, now: now) }
        case .renewLock:
            what = "renew lock \(token.entity)#\(token.sequenceNumber)"
            operation = {
                _ = try await self.broker.renewLock(token)
                return .settled
            }
            expect = { model, now in model.renewLock(token, now: now).map { .settled } }
            // A renewed delivery is still held.
            self.held.append(token)
        case .resubmit:
            what = "resubmit \(token.entity)#\(token.sequenceNumber)"
            operation = { try await self.broker.resubmit(token) }
            expect = { model, now in model.resubmit(token, now: now) }
        }
        let actual = try await self.check(what, operation, expect: { model, _, now in expect(&model, now) }) { outcome, expectedOutcome in
            try self.compareOutcome(what, outcome, expectedOutcome)
        }
        if settlement != .renewLock { self.maybeRetryLater([token], after: actual) }
        // A resubmitted message starts counting deliveries again: once acknowledged, or once a crash
        // left the resubmit in doubt and the store showed it done.
        if settlement == .resubmit, self.model.entity(token.entity.origin)?.messages[token.sequenceNumber]?.isDeadLetter == false {
            self.seenDeliveryCounts["\(token.entity.origin.entityKey)#\(token.sequenceNumber)"] = nil
        }
    }
}
