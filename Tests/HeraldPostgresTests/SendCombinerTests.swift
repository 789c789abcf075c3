import Foundation
import HeraldCore
import Synchronization
import Testing

@testable import HeraldPostgres

/// Group commit of sends, without a database: who leads, who waits, and who gets what.
@Suite("SendCombinerTests")
struct SendCombinerTests {
    typealias Machine = SendCombinerStateMachine<String>

    private func handOff(_ machine: inout Machine, _ entity: Int64, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        guard case .handOff(let leader, let group) = machine.finished(entity: entity) else {
            Issue.record("nobody took over", sourceLocation: sourceLocation)
            return []
        }
        #expect(group.first == leader, "the leader sends first", sourceLocation: sourceLocation)
        return group
    }

    @Test func aSenderToAnIdleEntityLeadsAlone() {
        var machine = Machine()
        #expect(machine.arrive("a", entity: 1, messages: 3) == .lead)
        #expect(machine.isBusy(1))
        guard case .idle = machine.finished(entity: 1) else {
            Issue.record("a finished entity without waiters is handed off")
            return
        }
        #expect(!machine.isBusy(1))
        #expect(machine.arrive("b", entity: 1, messages: 1) == .lead, "an idle entity again")
    }

    @Test func waitingSendersAreHandedOffInArrivalOrder() {
        var machine = Machine()
        #expect(machine.arrive("a", entity: 1, messages: 1) == .lead)
        #expect(machine.arrive("b", entity: 1, messages: 2) == .wait)
        #expect(machine.arrive("c", entity: 1, messages: 1) == .wait)
        #expect(machine.waiting(1) == 2)
        #expect(self.handOff(&machine, 1) == ["b", "c"])
        #expect(machine.isBusy(1), "the new leader's statement runs")
        #expect(machine.waiting(1) == 0)
        #expect(machine.arrive("d", entity: 1, messages: 1) == .wait, "arrivals wait for the new leader")
        #expect(self.handOff(&machine, 1) == ["d"])
        guard case .idle = machine.finished(entity: 1) else {
            Issue.record("the last leader hands off to nobody")
            return
        }
        #expect(!machine.isBusy(1))
    }

    @Test func aCombinedStatementCarriesAtMostMaxMessages() {
        var machine = Machine()
        #expect(Machine.maxMessages == 1000)
        _ = machine.arrive("leader", entity: 1, messages: 1)
        for (name, count) in [("a", 600), ("b", 400), ("c", 1), ("d", 5)] {
            #expect(machine.arrive(name, entity: 1, messages: count) == .wait)
        }
        #expect(self.handOff(&machine, 1) == ["a", "b"], "600 + 400 fill a statement")
        #expect(self.handOff(&machine, 1) == ["c", "d"])
    }

    @Test func aBatchLargerThanTheLimitIsSentAlone() {
        var machine = Machine()
        _ = machine.arrive("leader", entity: 1, messages: 1)
        _ = machine.arrive("big", entity: 1, messages: 1500)
        _ = machine.arrive("small", entity: 1, messages: 1)
        #expect(self.handOff(&machine, 1) == ["big"])
        #expect(self.handOff(&machine, 1) == ["small"])
    }

    @Test func entitiesAreCombinedSeparately() {
        var machine = Machine()
        #expect(machine.arrive("a", entity: 1, messages: 1) == .lead)
        #expect(machine.arrive("b", entity: 2, messages: 1) == .lead)
        #expect(machine.arrive("c", entity: 1, messages: 1) == .wait)
        guard case .idle = machine.finished(entity: 2) else {
            Issue.record("entity 2 got entity 1's waiter")
            return
        }
        #expect(self.handOff(&machine, 1) == ["c"])
    }

    @Test func eachSenderGetsItsShareOfTheReceipts() throws {
        let receipts = (1...6).map { SendReceipt(sequenceNumber: Int64($0), isDuplicate: false) }
        let shares = Machine.shares(of: .success(SendOutcome(receipts: receipts, wake: ["7"])), counts: [2, 1, 3])
        #expect(shares.count == 3)
        #expect(try shares.map { try $0.get().receipts.map(\.sequenceNumber) } == [[1, 2], [3], [4, 5, 6]])
        #expect(try shares.map { try $0.get().wake } == [["7"], ["7"], ["7"]])
    }

    @Test func theStatementsErrorReachesEverySender() {
        let shares = Machine.shares(of: .failure(HeraldError(.storeUnavailable, "gone")), counts: [2, 1, 3])
        #expect(shares.count == 3)
        for share in shares {
            #expect(throws: HeraldError.self) { try share.get() }
            if case .failure(let error as HeraldError) = share { #expect(error.message == "gone") }
        }
    }

    /// The statements a test's senders ran, by the texts of their messages.
    private final class Statements: Sendable {
        private let sent = Mutex<[[String]]>([])
        var all: [[String]] { self.sent.withLock { $0 } }
        func record(_ plans: [SendPlan]) {
            self.sent.withLock { $0.append(plans.flatMap { $0.messages.map { String(decoding: $0.body, as: UTF8.self) } }) }
        }
    }

    private static func plan(_ text: String) -> SendPlan {
        let entity = CachedEntity(id: 42, path: .queue("q"), options: EntityOptions(), rules: [], topicId: nil)
        return SendPlan(path: .queue("q"), messages: [Message(text: text)], target: entity, isSimple: true)
    }

    /// The combiner suspends followers while the leader runs, has the next leader send them all,
    /// and hands that statement's error to every one of them.
    @Test func followersShareTheNextLeadersStatementAndItsError() async throws {
        let combiner = SendCombiner()
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        let statements = Statements()
        let leader = Task {
            try await combiner.send(Self.plan("a")) { plans in
                statements.record(plans)
                for await _ in release { break }
                return SendOutcome(receipts: [SendReceipt(sequenceNumber: 1, isDuplicate: false)], wake: ["42"])
            }
        }
        while statements.all.isEmpty { await Task.yield() }
        let followers = ["b", "c"].map { text in
            Task {
                try await combiner.send(Self.plan(text)) { plans in
                    statements.record(plans)
                    throw HeraldError(.storeUnavailable, "the statement failed")
                }
            }
        }
        while combiner.waiting(for: 42) < 2 { await Task.yield() }
        releaseContinuation.yield()
        #expect(try await leader.value.receipts.map(\.sequenceNumber) == [1])
        for follower in followers {
            let error = await #expect(throws: HeraldError.self) { try await follower.value }
            #expect(error?.message == "the statement failed")
        }
        let sent = statements.all
        #expect(sent.count == 2, "one statement for the leader, one for both followers: \(sent)")
        #expect(sent.first == ["a"])
        #expect(sent.last.map { Set($0) } == ["b", "c"])
        #expect(combiner.waiting(for: 42) == 0)
        // The entity is idle again: the next sender leads at once.
        let next = try await combiner.send(Self.plan("d")) { _ in
            SendOutcome(receipts: [SendReceipt(sequenceNumber: 9, isDuplicate: false)], wake: [])
        }
        #expect(next.receipts.map(\.sequenceNumber) == [9])
    }
}
