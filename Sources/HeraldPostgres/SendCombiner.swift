import HeraldCore
import Synchronization

/// Group commit for sends: concurrent simple sends (see ``SendPlan/isSimple``) to one queue go to
/// the database as one statement, so they share one commit and one WAL flush.
///
/// Sends to one entity are serialized anyway (the entity row's lock, held until commit, orders
/// them), so without combining each would pay a full commit of its own. The first send to an idle
/// entity runs at once; sends that arrive while it runs queue up, and the first of them runs the
/// whole queue as the next statement (leader and followers, no background task). Each caller's
/// batch stays atomic, with consecutive sequence numbers.
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

    private struct Entity {
        var busy = false
        var queue: [Waiter] = []
    }

    /// The most messages one combined statement carries.
    static let maxMessages = 1000

    private let state = Mutex<[Int64: Entity]>([:])

    /// Waits for the caller's turn: `.lead` with the plans to run, or `.done` when a leader ran it.
    func arrive(_ plan: SendPlan) async -> Turn {
        await withCheckedContinuation { continuation in
            let waiter = Waiter(plan: plan, continuation: continuation)
            let leads = self.state.withLock { state -> Bool in
                if state[plan.target.id, default: Entity()].busy {
                    state[plan.target.id]!.queue.append(waiter)
                    return false
                }
                state[plan.target.id, default: Entity()].busy = true
                return true
            }
            if leads { continuation.resume(returning: .lead([waiter])) }
        }
    }

    /// Called by a leader when its statement is done: the next queued group (if any) gets the lead.
    func finished(_ entityId: Int64) {
        let next = self.state.withLock { state -> [Waiter] in
            guard var entity = state[entityId] else { return [] }
            if entity.queue.isEmpty {
                state[entityId] = nil
                return []
            }
            var count = 0
            var take = 0
            while take < entity.queue.count && (take == 0 || count + entity.queue[take].plan.messages.count <= Self.maxMessages) {
                count += entity.queue[take].plan.messages.count
                take += 1
            }
            let group = Array(entity.queue.prefix(take))
            entity.queue.removeFirst(take)
            state[entityId] = entity
            return group
        }
        if let leader = next.first { leader.continuation.resume(returning: .lead(next)) }
    }
}
