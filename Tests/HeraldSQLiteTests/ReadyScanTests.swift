import Foundation
import GRDB
import HeraldCore
import Testing

@testable import HeraldSQLite

/// A receive walks the queue from its first message that is neither deferred nor scheduled, so
/// that the dead letters, deferred and scheduled messages before it are not read at every receive.
@Suite struct ReadyScanTests {
    /// The plan SQLite chooses: the index finds where to start, then the primary key is walked
    /// from there. (Before, the walk started at the entity's first row, whatever it was.)
    @Test func theWalkStartsAtTheFirstReadyCandidate() throws {
        let plan = try QueryPlans().plan(StoreTransaction.readyMessages, [1, false, 0, 0, 0, 10])
        #expect(plan.contains("SEARCH message USING PRIMARY KEY (entity_id=? AND seq>?)"), "\(plan)")
        #expect(plan.contains { $0.contains("COVERING INDEX message_ready") }, "\(plan)")
    }

    /// What the walk skips is still where it was: behind dead letters and deferred messages the
    /// rest is received in order, and so are the dead letters from their queue.
    @Test func skippedRowsStayAndTheRestComesInOrder() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            let queue = EntityPath.queue("work")
            try await broker.createQueue(queue.name, options: EntityOptions())
            _ = try await broker.send((0..<30).map { Message(messageId: "m\($0)", body: Data("\($0)".utf8)) }, to: queue)
            let first = try await broker.receive(from: queue, maxCount: 20, maxWaitTime: .zero, mode: .peekLock)
            for message in first.prefix(10) { _ = try await broker.deadLetter(message.lockToken!, reason: "test", description: nil) }
            for message in first.suffix(10) { _ = try await broker.defer(message.lockToken!) }
            let rest = try await broker.receive(from: queue, maxCount: 20, maxWaitTime: .zero, mode: .peekLock)
            #expect(rest.map(\.message.messageId) == (20..<30).map { "m\($0)" })
            let deadLetters = try await broker.receive(from: queue.deadLetter, maxCount: 20, maxWaitTime: .zero, mode: .peekLock)
            #expect(deadLetters.map(\.message.messageId) == (0..<10).map { "m\($0)" })
            let deferred = try await broker.receiveDeferred(from: queue, sequenceNumbers: first.suffix(10).map(\.sequenceNumber))
            #expect(deferred.map(\.message.messageId) == (10..<20).map { "m\($0)" })
        }
    }
}
