import Foundation
import HeraldCore
import Synchronization

// Helpers the cases share. Internal: the public surface is the cases and the expectations.

/// The queue most cases use; every case gets a fresh broker, so one name is enough.
let queueName = "q"
/// The path of ``queueName``.
let queuePath = EntityPath.queue(queueName)
/// One millisecond, the resolution stores keep times in.
let oneMillisecond = Duration.milliseconds(1)

/// A body of `size` bytes.
func body(size: Int) -> Data { Data(repeating: 0x61, count: size) }

/// A string of `count` UTF-8 bytes.
func string(bytes count: Int, of character: Character = "x") -> String { String(repeating: character, count: count) }

extension ReceivedMessage {
    /// The body as UTF-8 text.
    var text: String { String(decoding: self.message.body, as: UTF8.self) }
}

extension MessageBroker {
    /// A peek-lock receive of up to `maxCount` messages without waiting.
    func receiveNow(from entity: EntityPath, maxCount: Int = 100) async throws -> [ReceivedMessage] {
        try await self.receive(from: entity, maxCount: maxCount, maxWaitTime: .zero, mode: .peekLock)
    }

    /// Every message of `entity` from sequence number 1 on, without locking.
    func peekAll(_ entity: EntityPath) async throws -> [ReceivedMessage] {
        try await self.peek(entity, fromSequenceNumber: 1, maxCount: 1000)
    }

    /// Sends messages with the given texts one by one; returns their sequence numbers.
    @discardableResult
    func sendTexts(_ texts: [String], to entity: EntityPath, sessionId: String? = nil) async throws -> [Int64] {
        var numbers: [Int64] = []
        for text in texts {
            let receipt = try await self.send(Message(text: text, sessionId: sessionId), to: entity)
            numbers.append(receipt.sequenceNumber ?? -1)
        }
        return numbers
    }

    /// Accepts `sessionId` (or the next available session) without waiting.
    func accept(_ entity: EntityPath, _ sessionId: String?) async throws -> SessionLock {
        try await self.acceptSession(on: entity, sessionId: sessionId, maxWaitTime: .zero)
    }

    /// Receives up to `maxCount` messages of `session` without waiting.
    func receiveNow(from session: SessionLock, maxCount: Int = 100) async throws -> [ReceivedMessage] {
        try await self.receive(from: session, maxCount: maxCount, maxWaitTime: .zero)
    }
}

/// Receives exactly one message from `entity` (peek-lock, no wait) and returns it.
func receiveOne(
    _ broker: any MessageBroker, from entity: EntityPath, _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line
) async throws -> ReceivedMessage {
    let received = try await broker.receive(from: entity, maxCount: 1, maxWaitTime: .zero, mode: .peekLock)
    let context = message()
    try expectEqual(received.count, 1, "\(context.isEmpty ? "" : context + ": ")messages received from \(entity)", file: file, line: line)
    return received[0]
}

/// Fails unless a receive from `entity` returns nothing.
func expectNothing(
    _ broker: any MessageBroker, from entity: EntityPath, _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line
) async throws {
    let received = try await broker.receive(from: entity, maxCount: 10, maxWaitTime: .zero, mode: .peekLock)
    let context = message()
    try expect(
        received.isEmpty,
        "\(context.isEmpty ? "" : context + ": ")expected no message from \(entity), got sequence numbers \(received.map(\.sequenceNumber))",
        file: file, line: line
    )
}

/// Fails unless `entity`'s counts equal `expected`.
func expectCounts(
    _ broker: any MessageBroker, _ entity: EntityPath, _ expected: EntityCounts, _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line
) async throws {
    let counts = try await broker.counts(of: entity)
    let context = message()
    try expectEqual(counts, expected, "\(context.isEmpty ? "" : context + ": ")counts of \(entity)", file: file, line: line)
}

/// Fails unless both dates are set and fall in the same millisecond.
func expectSameMillisecond(
    _ actual: Date?, _ expected: Date?, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) throws {
    try expectEqual(actual?.millisecondsSince1970, expected?.millisecondsSince1970, message(), file: file, line: line)
}

/// `date` plus `duration`.
func adding(_ duration: Duration, to date: Date) -> Date { date.addingTimeInterval(duration.timeInterval) }

// MARK: Snapshots: errors leave the store unchanged

/// What a broker holds, as far as its public API shows.
struct StoreSnapshot: Equatable {
    var queues: [EntityDescription]
    var topics: [EntityDescription]
    var counts: [String: EntityCounts] = [:]
    var messages: [String: [ReceivedMessage]] = [:]
}

/// Reads the entity lists and, for each of `entities` (queues or subscriptions), its counts and
/// every message of it and of its dead-letter queue.
func snapshot(_ broker: any MessageBroker, _ entities: [EntityPath]) async throws -> StoreSnapshot {
    var snapshot = StoreSnapshot(
        queues: try await broker.listQueues().sorted { $0.path.name < $1.path.name },
        topics: try await broker.listTopics().sorted { $0.path.name < $1.path.name }
    )
    for entity in entities {
        snapshot.counts[entity.description] = try await broker.counts(of: entity)
        snapshot.messages[entity.description] = try await broker.peekAll(entity)
        snapshot.messages[entity.deadLetter.description] = try await broker.peekAll(entity.deadLetter)
    }
    return snapshot
}

/// Runs `body`, which must check its own error, and fails unless `entities` (counts, messages,
/// dead letters) and the entity lists are the same afterwards.
func expectUnchanged(
    _ broker: any MessageBroker, _ entities: [EntityPath], _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line,
    _ body: () async throws -> Void
) async throws {
    let context = message()
    let before = try await snapshot(broker, entities)
    try await body()
    let after = try await snapshot(broker, entities)
    try expectEqual(after.queues, before.queues, "\(context): the queues changed", file: file, line: line)
    try expectEqual(after.topics, before.topics, "\(context): the topics changed", file: file, line: line)
    for key in before.counts.keys.sorted() {
        try expectEqual(after.counts[key], before.counts[key], "\(context): the counts of \(key) changed", file: file, line: line)
    }
    for key in before.messages.keys.sorted() {
        try expectEqual(after.messages[key], before.messages[key], "\(context): the messages of \(key) changed", file: file, line: line)
    }
}

/// A queue holding one message in each state.
struct PopulatedQueue {
    /// The queue.
    let path: EntityPath
    /// The active (visible, unlocked) message's sequence number.
    let active: Int64
    /// The locked message, with its token.
    let locked: ReceivedMessage
    /// The deferred message's sequence number.
    let deferred: Int64
    /// The scheduled message's sequence number.
    let scheduled: Int64
    /// The token of a message that was completed: stale.
    let completedToken: LockToken
}

/// Creates ``queueName`` holding one active, one locked, one scheduled (in 30 s), one deferred
/// and one dead-lettered message; also completes a message to leave a stale token behind.
func populateQueue(_ broker: any MessageBroker, clock: ManualBrokerClock, options: EntityOptions = EntityOptions()) async throws -> PopulatedQueue {
    try await broker.createQueue(queueName, options: options)
    try await broker.sendTexts(["locked", "deferred", "dead"], to: queuePath)
    let received = try await broker.receiveNow(from: queuePath, maxCount: 3)
    try expectEqual(received.map(\.text), ["locked", "deferred", "dead"], "set-up receive")
    try await broker.defer(try expectNotNil(received[1].lockToken, "lock token"))
    try await broker.deadLetter(try expectNotNil(received[2].lockToken, "lock token"), reason: "Bad", description: "set-up")
    try await broker.sendTexts(["completed"], to: queuePath)
    let completed = try await receiveOne(broker, from: queuePath, "set-up")
    let completedToken = try expectNotNil(completed.lockToken, "lock token")
    try await broker.complete(completedToken)
    let active = try await broker.sendTexts(["active"], to: queuePath)[0]
    let scheduled = try await broker.schedule(Message(text: "scheduled"), at: adding(.seconds(30), to: clock.now()), to: queuePath)
    try await expectCounts(broker, queuePath, EntityCounts(active: 1, locked: 1, scheduled: 1, deferred: 1, deadLettered: 1), "set-up")
    return PopulatedQueue(
        path: queuePath, active: active, locked: received[0], deferred: received[1].sequenceNumber, scheduled: scheduled,
        completedToken: completedToken
    )
}

// MARK: Real time, for the long-poll cases only

/// Runs `operation`, failing if it takes longer than `limit` of real time (the operation is then
/// cancelled and left behind rather than awaited, so a broker that never returns cannot hang the suite).
func withRealTimeLimit<T: Sendable>(
    _ limit: Duration, _ what: String, file: StaticString = #fileID, line: UInt = #line,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let box = ContinuationBox<T>()
    return try await withCheckedThrowingContinuation { continuation in
        box.set(continuation)
        let work = Task {
            do { box.resume(with: .success(try await operation())) } catch { box.resume(with: .failure(error)) }
        }
        Task {
            try? await Task.sleep(for: limit)
            box.resume(with: .failure(ConformanceFailure("\(what) did not return within \(limit) of real time", file: file, line: line)))
            work.cancel()
        }
    }
}

/// Resumes a continuation once, from whichever task gets there first.
private final class ContinuationBox<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(with result: Result<T, any Error>) {
        let continuation = self.continuation.withLock { stored -> CheckedContinuation<T, any Error>? in
            defer { stored = nil }
            return stored
        }
        continuation?.resume(with: result)
    }
}
