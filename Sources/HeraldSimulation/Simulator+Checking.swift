import Foundation
import HeraldCore

// MARK: Time and bookkeeping

extension Simulator {
    /// The simulated clock's time, as the model takes it.
    var now: BrokerModel.Now {
        BrokerModel.Now(wall: self.clock.now().millisecondsSince1970, monotonic: self.clock.monotonicNow().nanoseconds)
    }

    func log(_ line: String) {
        self.fold(line)
        let entry = "[\(self.step)] \(line)"
        if self.options.trace { print(entry) }
        self.recent.append(entry)
        if self.recent.count > 12 { self.recent.removeFirst() }
    }

    /// Folds `text` into the run's fingerprint (FNV-1a), which replays must reproduce.
    private func fold(_ text: String) {
        for byte in text.utf8 {
            self.report.fingerprint = (self.report.fingerprint ^ UInt64(byte)) &* 0x100_0000_01B3
        }
    }

    func fail(_ invariant: String, _ detail: String) -> SimulationFailure {
        SimulationFailure(
            seed: self.options.seed, steps: self.options.steps, step: self.step, invariant: invariant, detail: detail,
            bug: self.options.bug, recentOperations: self.recent
        )
    }

    func nextId(_ prefix: String) -> String {
        self.counter += 1
        return "\(prefix)\(self.counter)"
    }

    func hold(_ messages: [ReceivedMessage]) {
        for message in messages {
            if let token = message.lockToken { self.held.append(token) }
        }
        if self.held.count > 40 { self.held.removeFirst(self.held.count - 40) }
    }

    func takeHeld() -> LockToken? {
        guard !self.held.isEmpty else { return nil }
        return self.held.remove(at: self.random.int(0...(self.held.count - 1)))
    }

    /// Calls the broker, and returns its answer as a result.
    func call<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        self.report.brokerCalls += 1
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }
}

// MARK: Checking one operation

extension Simulator {
    /// Runs one operation on the broker and on a copy of the model, and checks that they agree
    /// (see ``settleOutcome(_:actual:expected:predicted:keepsEffectsOnFailure:compare:)``);
    /// returns the broker's answer.
    ///
    /// - Parameters:
    ///   - what: The operation, as the log and failure reports show it.
    ///   - operation: The call to the broker.
    ///   - expect: The same operation on the model, at the time the call started; it may look at
    ///     the broker's answer for what the store chooses (the nonce of the locks it took).
    ///   - compare: Checks a successful answer against the model's.
    @discardableResult
    func check<T, U>(
        _ what: String, keepsEffectsOnFailure: Bool = false, _ operation: () async throws -> T,
        expect: (inout BrokerModel, Result<T, any Error>, BrokerModel.Now) -> Result<U, HeraldError>,
        compare: (T, U) throws -> Void = { _, _ in }
    ) async throws -> Result<T, any Error> {
        self.log(what)
        let now = self.now
        let actual = await self.call(operation)
        var predicted = self.model
        let expected = expect(&predicted, actual, now)
        try await self.settleOutcome(
            what, actual: actual, expected: expected, predicted: predicted, keepsEffectsOnFailure: keepsEffectsOnFailure, compare: compare
        )
        return actual
    }

    /// Compares the broker's answer with the model's, adopts the model's new state, and handles a
    /// crash that happened during the call. `predicted` is the model after the operation.
    private func settleOutcome<T, U>(
        _ what: String, actual: Result<T, any Error>, expected: Result<U, HeraldError>, predicted: BrokerModel,
        keepsEffectsOnFailure: Bool = false, compare: (T, U) throws -> Void
    ) async throws {
        let crashed = self.storage.isCrashed
        let answer: String
        switch actual {
        case .success(let value): answer = (value as? SettlementOutcome) == .alreadySettled ? " -> ok (already settled)" : " -> ok"
        case .failure(let error as HeraldError):
            // Which of two lost locks a store reports first is not part of the contract.
            answer = " -> \(error.code == .sessionLockLost ? HeraldError.Code.lockLost : error.code)"
        case .failure: answer = " -> error"
        }
        self.fold(answer)
        if self.options.trace { print("    \(answer)") }
        switch (actual, expected) {
        case (.success(let value), .success(let expectedValue)):
            try compare(value, expectedValue)
            self.model = predicted
        case (.failure(let error as HeraldError), _) where error.code == .storeFailed || error.code == .storeClosed:
            guard crashed else { throw self.fail("store failed", "\(what): the store failed without a crash: \(error)") }
            // The operation's fate is in doubt: it failed, yet its commit may have reached the disk.
            self.log("\(what) -> in doubt (\(error.code))")
            self.isArmed = false
            self.report.inDoubt += 1
            try await self.restart(branches: [self.model, predicted], inDoubt: true)
            return
        case (.failure(let error as HeraldError), .failure(let expectedError)):
            let lockCodes: [HeraldError.Code] = [.lockLost, .sessionLockLost]
            let same = error.code == expectedError.code || (lockCodes.contains(error.code) && lockCodes.contains(expectedError.code))
            guard same else {
                throw self.fail("wrong answer", "\(what): the broker failed with \(error.code), the model expected \(expectedError.code)")
            }
            // An answer decided after the transaction committed (no session available) keeps its sweep.
            if keepsEffectsOnFailure { self.model = predicted }
        case (.failure(let error), .success):
            throw self.fail("wrong answer", "\(what): the broker failed with \(error), the model expected success")
        case (.success, .failure(let expectedError)) where [.lockLost, .sessionLockLost].contains(expectedError.code):
            throw self.fail("settling needs a current lock", "\(what): the broker accepted a lock that is lost (\(expectedError.code))")
        case (.success, .failure(let expectedError)):
            throw self.fail("wrong answer", "\(what): the broker succeeded, the model expected \(expectedError.code)")
        case (.failure(let error), .failure(let expectedError)):
            throw self.fail("wrong answer", "\(what): the broker failed with \(error), the model expected \(expectedError.code)")
        }
        if crashed {
            // A crash during an operation that still answered: what it answered must survive.
            self.isArmed = false
            try await self.restart(branches: [self.model], inDoubt: false)
        }
    }

    /// Checks delivered messages against the model's prediction and the delivery invariants.
    func compareDeliveries(_ what: String, _ actual: [ReceivedMessage], _ expected: [BrokerModel.MessageState], session: Bool) throws {
        for message in actual {
            let key = message.entity.origin.entityKey
            if self.model.entity(message.entity)?.removed.contains(message.sequenceNumber) == true {
                throw self.fail(
                    "completed message redelivered",
                    "\(what): \(message.entity) #\(message.sequenceNumber) (\(message.message.messageId)) left the entity, yet was delivered again")
            }
            if let seen = self.seenDeliveryCounts["\(key)#\(message.sequenceNumber)"], message.deliveryCount <= seen {
                throw self.fail(
                    "delivery count not increasing", "\(what): #\(message.sequenceNumber) delivered with count \(message.deliveryCount) after \(seen)")
            }
        }
        if session {
            let numbers = actual.map(\.sequenceNumber)
            if numbers != numbers.sorted() {
                throw self.fail("per-session order", "\(what): delivered out of order: \(numbers)")
            }
        }
        let actualSummary = actual.map { "#\($0.sequenceNumber) \($0.message.messageId) n=\($0.deliveryCount)" }
        let expectedSummary = expected.map { "#\($0.sequenceNumber) \($0.messageId) n=\($0.deliveryCount)" }
        guard actualSummary == expectedSummary, zip(actual, expected).allSatisfy({ $0.message.body == $1.body }) else {
            let invariant = session ? "per-session order" : "wrong delivery"
            throw self.fail(invariant, "\(what): the broker delivered \(actualSummary), the model expected \(expectedSummary)")
        }
        for message in actual {
            self.seenDeliveryCounts["\(message.entity.origin.entityKey)#\(message.sequenceNumber)"] = message.deliveryCount
        }
    }
}
