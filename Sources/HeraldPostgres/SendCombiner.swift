import HeraldCore
import Synchronization

/// Group commit for sends: concurrent simple sends (see ``SendPlan/isSimple``) to one queue go to
/// the database as one statement, so they share one commit and one WAL flush.
///
/// Sends to one entity are serialized anyway (the entity row's lock, held until commit, orders
/// them), so without combining each would pay a full commit of its own. The first send to an idle
/// entity runs at once; sends that arrive while it runs queue up, and the first of them runs the
/// whole queue as the next statement (leader and followers, no background task). Each caller's
/// batch stays atomic, with consecutive sequence numbers. The decisions are
/// ``SendCombinerStateMachine``'s; this class suspends and resumes the callers.
final class SendCombiner: Sendable {
    typealias Result = Swift.Result<SendOutcome, any Error>

    /// A caller waiting for its turn or for its result.
    struct Waiter: Sendable {
        let plan: SendPlan
        let continuation: CheckedContinuation<Turn, Never>
    }

    enum Turn: Sendable {
        /// Run these plans (the first is the caller's own) and hand the others their results.
        case lead([Waiter])
        case done(Result)
    }

    private let state = Mutex(SendCombinerStateMachine<Waiter>())

    /// How many senders wait for a statement to `entityId` now.
    func waiting(for entityId: Int64) -> Int {
        self.state.withLock { $0.waiting(entityId) }
    }

    /// Sends `plan`: as the leader, `run` gets the plans of the group (the caller's first) and
    /// sends them as one statement, and each follower gets its share of the outcome (or the
    /// error); as a follower, the leader's statement sends it.
    func send(_ plan: SendPlan, run: ([SendPlan]) async throws -> SendOutcome) async throws -> SendOutcome {
        let entityId = plan.target.id
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let waiter = Waiter(plan: plan, continuation: continuation)
            switch self.state.withLock({ $0.arrive(waiter, entity: entityId, messages: plan.messages.count) }) {
            case .lead: continuation.resume(returning: .lead([waiter]))
            case .wait: break
            }
        }
        switch turn {
        case .done(let result):
            return try result.get()
        case .lead(let group):
            let plans = group.map(\.plan)
            let result: Result
            do {
                result = .success(try await run(plans))
            } catch {
                result = .failure(error)
            }
            let shares = SendCombinerStateMachine<Waiter>.shares(of: result, counts: plans.map(\.messages.count))
            for (waiter, share) in zip(group, shares).dropFirst() { waiter.continuation.resume(returning: .done(share)) }
            switch self.state.withLock({ $0.finished(entity: entityId) }) {
            case .idle: break
            case .handOff(let leader, let next): leader.continuation.resume(returning: .lead(next))
            }
            return try (shares.first ?? .failure(HeraldError(.storeFailed, "the send was not run"))).get()
        }
    }
}

/// The decisions of ``SendCombiner``: who leads the next statement of an entity, who waits, and
/// what share of a combined outcome each sender gets. It does no I/O.
///
/// `Waiter` is what a waiting sender is resumed through (a continuation in the combiner).
struct SendCombinerStateMachine<Waiter> {
    private struct Entity {
        /// The waiting senders and how many messages each sends, in arrival order.
        var queue: [(waiter: Waiter, messages: Int)] = []
    }

    /// The most messages one combined statement carries (a single sender's batch may carry more).
    static var maxMessages: Int { 1000 }

    /// The entities with a statement running, by id.
    private var busy: [Int64: Entity] = [:]

    /// Whether a statement runs for `entity` now.
    func isBusy(_ entity: Int64) -> Bool { self.busy[entity] != nil }

    /// How many senders wait for `entity`.
    func waiting(_ entity: Int64) -> Int { self.busy[entity]?.queue.count ?? 0 }

    enum ArriveAction: Equatable {
        /// The entity was idle: the sender leads a statement of its own plan alone.
        case lead
        /// A statement runs: the sender waits to lead the next or to be sent by its leader.
        case wait
    }

    /// A sender of `messages` messages to `entity` arrives.
    mutating func arrive(_ waiter: Waiter, entity: Int64, messages: Int) -> ArriveAction {
        guard self.busy[entity] != nil else {
            self.busy[entity] = Entity()
            return .lead
        }
        self.busy[entity, default: Entity()].queue.append((waiter, messages))
        return .wait
    }

    enum FinishedAction {
        /// Nobody waits: the entity is idle.
        case idle
        /// `leader` leads the next statement, which sends the plans of `group` (the leader first).
        case handOff(leader: Waiter, group: [Waiter])
    }

    /// The leader of `entity`'s statement is done (and handed each follower its share).
    mutating func finished(entity: Int64) -> FinishedAction {
        guard var state = self.busy[entity], !state.queue.isEmpty else {
            self.busy[entity] = nil
            return .idle
        }
        var count = 0
        var take = 0
        while take < state.queue.count && (take == 0 || count + state.queue[take].messages <= Self.maxMessages) {
            count += state.queue[take].messages
            take += 1
        }
        let leader = state.queue[0].waiter
        let group = state.queue.prefix(take).map(\.waiter)
        state.queue.removeFirst(take)
        self.busy[entity] = state
        return .handOff(leader: leader, group: group)
    }

    /// Each sender's share of a combined statement's outcome, for senders of `counts` messages in
    /// the order of the statement: its receipts and the entities to wake, or the statement's error.
    static func shares(of result: Result<SendOutcome, any Error>, counts: [Int]) -> [Result<SendOutcome, any Error>] {
        var offset = 0
        return counts.map { count in
            defer { offset += count }
            return result.map { outcome in
                SendOutcome(receipts: Array(outcome.receipts[offset..<(offset + count)]), wake: outcome.wake)
            }
        }
    }
}
