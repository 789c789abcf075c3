import Foundation
import HeraldCore
import HeraldSQLite

// MARK: Audits

extension Simulator {
    /// Compares the whole store with the model (or, after an in-doubt crash, with each branch);
    /// returns the index of the branch it matches and adopts it.
    @discardableResult
    func audit(against branches: [BrokerModel], afterRestart: Bool) async throws -> Int {
        self.report.audits += 1
        var contents: [String: [ReceivedMessage]] = [:]
        for key in self.model.receivableKeys {
            let path = self.model.entities[key]!.path
            for entity in [path, path.deadLetter] {
                let peeked = await self.call { () async throws -> [ReceivedMessage] in
                    var messages: [ReceivedMessage] = []
                    while true {
                        let page = try await self.broker.peek(
                            entity, fromSequenceNumber: (messages.last?.sequenceNumber ?? 0) + 1, maxCount: HeraldLimits.maxReceiveCount
                        )
                        messages += page
                        if page.count < HeraldLimits.maxReceiveCount { return messages }
                    }
                }
                switch peeked {
                case .success(let messages): contents[entity.description] = messages
                case .failure(let error as HeraldError) where error.code == .entityNotFound:
                    throw self.fail("acknowledged change lost", "peek \(entity) failed: \(error)")
                case .failure(let error): throw self.fail("store readable", "peek \(entity) failed: \(error)")
                }
            }
        }
        var sessionStates: [String: Data?] = [:]
        if afterRestart {
            // Session state survives a restart; read it through a session lock (none are held now).
            let ids = Set(branches.flatMap { $0.entity(Self.orders)!.sessionStates.keys }).sorted()
            for sessionId in ids {
                let read = await self.call { () async throws -> Data? in
                    let lock = try await self.broker.acceptSession(on: Self.orders, sessionId: sessionId, maxWaitTime: .zero)
                    let state = try await self.broker.sessionState(lock)
                    try await self.broker.releaseSession(lock)
                    return state
                }
                switch read {
                case .success(let state): sessionStates[sessionId] = state
                case .failure(let error): throw self.fail("store readable", "reading the state of session \(sessionId) failed: \(error)")
                }
            }
        }
        var differences: [[(String, String)]] = []
        for (index, branch) in branches.enumerated() {
            let found = self.differences(contents, sessionStates, branch)
            if found.isEmpty {
                self.model = branch
                // Both outcomes of an operation in doubt can fit what peeking shows: an abandon
                // with a delay differs only in when the message is visible again. Let that time
                // pass, so the branch kept cannot disagree with the store.
                if index + 1 < branches.count, self.differences(contents, sessionStates, branches[index + 1]).isEmpty {
                    let pastAnyDelay = Duration.milliseconds(Self.maxAbandonDelayMilliseconds + 1000)
                    self.log("both outcomes fit the store: advance \(pastAnyDelay), past any hidden visibility time")
                    self.clock.advance(by: pastAnyDelay)
                }
                return index
            }
            differences.append(found)
        }
        // Report against the state every acknowledgement promised (the first branch), the gravest first.
        let gravity = ["acknowledged message lost", "completed message came back", "unacknowledged message appeared"]
        let ranked = differences[0].enumerated().sorted { left, right in
            let l = gravity.firstIndex(of: left.element.0) ?? gravity.count
            let r = gravity.firstIndex(of: right.element.0) ?? gravity.count
            return l != r ? l < r : left.offset < right.offset
        }.map(\.element)
        let (invariant, _) = ranked[0]
        let detail = ranked.prefix(6).map { "\($0.0): \($0.1)" }.joined(separator: "; ")
        let context = afterRestart ? (branches.count > 1 ? "after a crash with an operation in doubt" : "after a crash") : "audit"
        throw self.fail(invariant, "\(context): \(detail)")
    }

    private func differences(_ contents: [String: [ReceivedMessage]], _ sessionStates: [String: Data?], _ model: BrokerModel) -> [(String, String)] {
        var found: [(String, String)] = []
        for key in model.receivableKeys {
            let entity = model.entities[key]!
            for path in [entity.path, entity.path.deadLetter] {
                let stored = contents[path.description] ?? []
                let expected = entity.ordered.filter { $0.isDeadLetter == path.isDeadLetter }
                let storedBySequence = Dictionary(stored.map { ($0.sequenceNumber, $0) }, uniquingKeysWith: { first, _ in first })
                let expectedNumbers = Set(expected.map(\.sequenceNumber))
                for message in expected {
                    guard let actual = storedBySequence[message.sequenceNumber] else {
                        let elsewhere =
                            contents[(path.isDeadLetter ? entity.path : entity.path.deadLetter).description]?
                            .contains { $0.sequenceNumber == message.sequenceNumber } ?? false
                        found.append(
                            elsewhere
                                ? ("dead-lettering", "\(path) #\(message.sequenceNumber) (\(message.messageId)) is in the wrong queue")
                                : ("acknowledged message lost", "\(path) #\(message.sequenceNumber) (\(message.messageId)) is missing")
                        )
                        continue
                    }
                    if actual.deliveryCount < message.deliveryCount {
                        found.append(
                            (
                                "delivery count never decreases",
                                "\(path) #\(message.sequenceNumber): count \(actual.deliveryCount), expected \(message.deliveryCount)"
                            ))
                    }
                    // Not yet received from the dead-letter queue (which counts deliveries too).
                    if path.isDeadLetter, actual.deadLetterReason == DeadLetterReason.maxDeliveryCountExceeded,
                        message.deadLetterReason == DeadLetterReason.maxDeliveryCountExceeded, message.deliveryCount == message.deliveryCountAtDeadLetter,
                        actual.deliveryCount != entity.options.maxDeliveryCount
                    {
                        found.append(
                            (
                                "dead-lettering exactly at maxDeliveryCount",
                                "\(path) #\(message.sequenceNumber) dead-lettered at count \(actual.deliveryCount), max \(entity.options.maxDeliveryCount), model \(message.deliveryCount)"
                            ))
                    }
                    let actualFields = Self.fields(actual)
                    let expectedFields = Self.fields(message)
                    if actualFields != expectedFields {
                        found.append(("store matches the model", "\(path) #\(message.sequenceNumber): stored \(actualFields), expected \(expectedFields)"))
                    }
                }
                for message in stored where !expectedNumbers.contains(message.sequenceNumber) {
                    let inOther = entity.messages[message.sequenceNumber] != nil
                    if inOther { continue }  // reported from the other side
                    let invariant = entity.removed.contains(message.sequenceNumber) ? "completed message came back" : "unacknowledged message appeared"
                    found.append((invariant, "\(path) #\(message.sequenceNumber) (\(message.message.messageId)) is in the store"))
                }
            }
        }
        for (sessionId, state) in sessionStates.sorted(by: { $0.key < $1.key }) where state != model.entity(Self.orders)!.sessionStates[sessionId] {
            found.append(("session state survives a crash", "session \(sessionId): stored \(state.map { String(decoding: $0, as: UTF8.self) } ?? "nil")"))
        }
        return found
    }

    private static func fields(_ message: ReceivedMessage) -> String {
        let state = message.state.rawValue
        let lock = message.lockedUntil != nil ? "locked" : "unlocked"
        return "\(message.message.messageId) \(state) n=\(message.deliveryCount) \(lock) session=\(message.message.sessionId ?? "-") "
            + "enq=\(Self.milliseconds(message.enqueuedTime)) exp=\(message.expiresAt.map { String(Self.milliseconds($0)) } ?? "-") "
            + "dl=\(message.deadLetterReason ?? "-") body=\(message.message.body.count)"
    }

    private static func fields(_ message: BrokerModel.MessageState) -> String {
        let lock = message.lockNonce != nil ? "locked" : "unlocked"
        return "\(message.messageId) \(message.state.rawValue) n=\(message.deliveryCount) \(lock) session=\(message.sessionId ?? "-") "
            + "enq=\(message.enqueuedAt) exp=\(message.expiresAt.map { String($0) } ?? "-") "
            + "dl=\(message.deadLetterReason ?? "-") body=\(message.body.count)"
    }

    /// A stored time in milliseconds, rounded (a millisecond count survives the trip through `Date`).
    private static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
