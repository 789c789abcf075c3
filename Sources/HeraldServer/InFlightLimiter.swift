import Synchronization

/// Counts the requests each key has in flight and refuses one more than the limit (HTTP 429
/// `quotaExceeded`), so that one client cannot take every connection and store slot.
final class InFlightLimiter: Sendable {
    private let limit: Int?
    private let inFlight = Mutex<[String: Int]>([:])

    /// A limiter of `limit` requests per key; `nil` for no limit.
    init(limit: Int?) {
        self.limit = limit
    }

    /// Runs `operation` as one of `key`'s requests.
    ///
    /// - Throws: `quotaExceeded` when `key` already has `limit` requests in flight, or what
    ///   `operation` throws.
    func run<T>(for key: String, _ operation: () async throws -> T) async throws -> T {
        guard let limit = self.limit else { return try await operation() }
        let admitted = self.inFlight.withLock { counts in
            guard counts[key, default: 0] < limit else { return false }
            counts[key, default: 0] += 1
            return true
        }
        guard admitted else { throw ServerError.quotaExceeded(limit: limit) }
        defer {
            self.inFlight.withLock { counts in
                counts[key, default: 1] -= 1
                if counts[key] == 0 { counts[key] = nil }
            }
        }
        return try await operation()
    }
}
