import Synchronization

/// Shares the memory that answers with messages (receive, peek, deferred and session receives)
/// may hold among the answers being prepared at once: alone, an answer may fill its whole budget;
/// with many at once, each holds fewer messages, so that a crowd of large peeks cannot take more
/// memory in all than ``total``.
final class AnswerMemory: Sendable {
    /// What the messages of all answers in preparation may take together.
    let total: Int
    private let inFlight = Atomic<Int>(0)

    /// The least budget an answer gets however many run at once (it still holds at least one message).
    static let minimumShare = 16 * 1024

    init(total: Int) {
        self.total = total
    }

    /// Runs `body` as one more answer in preparation.
    func preparing<T>(_ body: () async throws -> T) async rethrows -> T {
        self.inFlight.add(1, ordering: .relaxed)
        defer { self.inFlight.subtract(1, ordering: .relaxed) }
        return try await body()
    }

    /// The budget of an answer now: its own `limit`, or its share of ``total`` when that is less.
    func share(upTo limit: Int) -> Int {
        let answers = max(1, self.inFlight.load(ordering: .relaxed))
        return min(limit, max(Self.minimumShare, self.total / answers))
    }
}
