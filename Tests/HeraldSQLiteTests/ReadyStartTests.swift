import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// A receive starts its walk past the messages an earlier receive found locked (``ReadyStart``),
/// and every change that makes one of them receivable again sends the next walk back to the first.
@Suite struct ReadyStartTests {
    @Test func aStartLastsUntilTheEarliestLockOrDelayEnds() {
        let first = ReadyStart.after(nil, lastTaken: 41, earliestLockExpiry: 900, earliestVisibility: nil, monotonic: 100)
        #expect(first == ReadyStart(sequenceNumber: 42, validUntilMonotonic: 900, validUntilWall: .max))
        #expect(first.isValid(monotonic: 899, wall: 0))
        #expect(!first.isValid(monotonic: 900, wall: 0))
        // A walk from a start keeps what limited the start: the messages before it are still behind.
        let next = ReadyStart.after(first, lastTaken: 99, earliestLockExpiry: 2_000, earliestVisibility: 7_000, monotonic: 200)
        #expect(next == ReadyStart(sequenceNumber: 100, validUntilMonotonic: 900, validUntilWall: 7_000))
        #expect(!next.isValid(monotonic: 300, wall: 7_000))
        // However long the locks, a start is kept at most `maxLifetime`.
        let capped = ReadyStart.after(nil, lastTaken: 1, earliestLockExpiry: nil, earliestVisibility: nil, monotonic: 100)
        #expect(capped.validUntilMonotonic == 100 + ReadyStart.maxLifetime)
    }

    /// The writer's own record: after a receive that walked over 50 locked messages and took 10,
    /// the next walk starts after the 60th; an abandon forgets it.
    @Test func theNextWalkStartsPastWhatWasLocked() throws {
        let database = try DatabaseQueue()
        try Schema.migrator.migrate(database)
        let clock = ManualBrokerClock()
        try database.write { db in
            let state = try WriterState(db: db)
            func transaction() -> StoreTransaction {
                StoreTransaction(db: db, state: state, now: clock.now(), monotonic: clock.monotonicNow())
            }
            let queue = EntityPath.queue("work")
            try transaction().createEntity(queue, options: EntityOptions(lockDuration: .seconds(3)), filter: nil)
            _ = try transaction().send((0..<100).map { Message(messageId: "m\($0)", body: Data()) }, to: queue)
            let locked = try transaction().receive(from: queue, maxCount: 50, mode: .peekLock)
            clock.advance(by: .seconds(1))
            let next = try transaction().receive(from: queue, maxCount: 10, mode: .peekLock)
            #expect(next.map(\.sequenceNumber) == Array(51...60))
            let key = ReadyKey(entityId: 1, deadLetter: false)
            let start = try #require(state.readyStart(key, monotonic: clock.monotonicNow().nanoseconds, wall: 0))
            #expect(start.sequenceNumber == 61)
            // The first 50 locks end first: 3 s after they were taken, 2 s from now.
            #expect(start.validUntilMonotonic == (clock.monotonicNow() + .seconds(2)).nanoseconds)
            _ = try transaction().abandon(try #require(locked[7].lockToken), delay: nil)
            #expect(state.readyStart(key, monotonic: clock.monotonicNow().nanoseconds, wall: 0) == nil)
        }
    }

    /// A rolled-back operation unlocks what its receives locked: the starts it set are forgotten,
    /// those set before it stay; an operation that commits keeps its own.
    @Test func aRolledBackOperationForgetsTheStartsItSet() throws {
        let database = try DatabaseQueue()
        try Schema.migrator.migrate(database)
        try database.read { db in
            let state = try WriterState(db: db)
            let earlier = ReadyKey(entityId: 1, deadLetter: false)
            let mine = ReadyKey(entityId: 2, deadLetter: false)
            let start = ReadyStart(sequenceNumber: 10, validUntilMonotonic: .max, validUntilWall: .max)
            state.setReadyStart(start, for: earlier)
            state.operationEnded(rolledBack: false)
            state.setReadyStart(start, for: mine)
            state.operationEnded(rolledBack: true)
            #expect(state.readyStart(earlier, monotonic: 0, wall: 0) == start)
            #expect(state.readyStart(mine, monotonic: 0, wall: 0) == nil)
            state.setReadyStart(start, for: mine)
            state.operationEnded(rolledBack: false)
            state.operationEnded(rolledBack: true)
            #expect(state.readyStart(mine, monotonic: 0, wall: 0) == start, "kept by the operation that set it, not undone by a later one")
        }
    }

    /// A message moved to the dead-letter queue may lie before where the dead-letter queue's walks
    /// start, so that start is forgotten; the queue's own start stays, since a message that leaves
    /// makes none receivable (an expiry sweep dead-letters up to a thousand at a time, and each
    /// would otherwise send the queue's next receive back over everything locked).
    @Test func aDeadLetteringForgetsOnlyTheDeadLetterQueuesStart() async throws {
        let database = try DatabaseQueue()
        try Schema.migrator.migrate(database)
        try await database.read { db in
            let state = try WriterState(db: db)
            let queue = ReadyKey(entityId: 1, deadLetter: false)
            let deadLetters = ReadyKey(entityId: 1, deadLetter: true)
            let start = ReadyStart(sequenceNumber: 10, validUntilMonotonic: .max, validUntilWall: .max)
            state.setReadyStart(start, for: queue)
            state.setReadyStart(start, for: deadLetters)
            state.deadLettersMayBeReady(in: 1)
            #expect(state.readyStart(queue, monotonic: 0, wall: 0) == start)
            #expect(state.readyStart(deadLetters, monotonic: 0, wall: 0) == nil)
        }
        let clock = ManualBrokerClock()
        try await SQLiteBroker.withInMemoryBroker(configuration: SQLiteBroker.Configuration(clock: clock)) { broker in
            let queue = EntityPath.queue("work")
            try await broker.createQueue(queue.name, options: EntityOptions(lockDuration: .seconds(300)))
            _ = try await broker.send((0..<10).map { Message(messageId: "m\($0)", body: Data()) }, to: queue)
            let locked = try await broker.receive(from: queue, maxCount: 10, maxWaitTime: .zero, mode: .peekLock)
            for index in [5, 6] { _ = try await broker.deadLetter(try #require(locked[index].lockToken), reason: "test", description: nil) }
            let first = try await broker.receive(from: queue.deadLetter, maxCount: 2, maxWaitTime: .zero, mode: .peekLock)
            #expect(first.map(\.message.messageId) == ["m5", "m6"])
            _ = try await broker.deadLetter(try #require(locked[3].lockToken), reason: "test", description: nil)
            let next = try await broker.receive(from: queue.deadLetter, maxCount: 2, maxWaitTime: .zero, mode: .peekLock)
            #expect(next.map(\.message.messageId) == ["m3"], "before the dead-letter queue's start")
        }
    }

    /// What makes a message behind the start receivable again brings it back at the next receive,
    /// in order: an abandon, the end of its lock, a resubmitted dead letter, a scheduled message
    /// coming due. (Without forgetting the start, each would wait for the start's end.)
    @Test func messagesBehindTheStartComeBackInOrder() async throws {
        let clock = ManualBrokerClock()
        try await SQLiteBroker.withInMemoryBroker(configuration: SQLiteBroker.Configuration(clock: clock)) { broker in
            let queue = EntityPath.queue("work")
            try await broker.createQueue(queue.name, options: EntityOptions(lockDuration: .seconds(300)))
            _ = try await broker.send(Message(messageId: "due", body: Data(), scheduledEnqueueTime: clock.now().addingTimeInterval(3)), to: queue)
            _ = try await broker.send((0..<20).map { Message(messageId: "m\($0)", body: Data()) }, to: queue)
            func receive(_ count: Int) async throws -> [ReceivedMessage] {
                try await broker.receive(from: queue, maxCount: count, maxWaitTime: .zero, mode: .peekLock)
            }
            let held = try await receive(5)
            #expect(try await receive(2).map(\.message.messageId) == ["m5", "m6"])

            _ = try await broker.abandon(try #require(held[2].lockToken))
            #expect(try await receive(1).map(\.message.messageId) == ["m2"], "abandoned")

            _ = try await broker.deadLetter(try #require(held[0].lockToken), reason: "test", description: nil)
            #expect(try await receive(1).map(\.message.messageId) == ["m7"])
            let deadLetter = try await broker.receive(from: queue.deadLetter, maxCount: 1, maxWaitTime: .zero, mode: .peekLock)
            _ = try await broker.resubmit(try #require(deadLetter.first?.lockToken))
            #expect(try await receive(1).map(\.message.messageId) == ["m0"], "resubmitted")

            clock.advance(by: .seconds(4))
            #expect(try await receive(1).map(\.message.messageId) == ["due"], "came due")
        }
        // Locks that end: a second receiver takes the expired ones first.
        try await SQLiteBroker.withInMemoryBroker(configuration: SQLiteBroker.Configuration(clock: clock)) { broker in
            let queue = EntityPath.queue("work")
            try await broker.createQueue(queue.name, options: EntityOptions(lockDuration: .seconds(2)))
            _ = try await broker.send((0..<10).map { Message(messageId: "m\($0)", body: Data()) }, to: queue)
            _ = try await broker.receive(from: queue, maxCount: 3, maxWaitTime: .zero, mode: .peekLock)
            clock.advance(by: .seconds(1))
            _ = try await broker.receive(from: queue, maxCount: 3, maxWaitTime: .zero, mode: .peekLock)
            clock.advance(by: .milliseconds(1500))
            let again = try await broker.receive(from: queue, maxCount: 4, maxWaitTime: .zero, mode: .peekLock)
            #expect(again.map(\.message.messageId) == ["m0", "m1", "m2", "m6"])
        }
    }
}
