/// How a message processor retries a handler that failed: by abandoning the message with a
/// delay that grows exponentially, with jitter, until `maxAttempts`, then dead-lettering it.
public struct RetryPolicy: Sendable, Hashable {
    /// Deliveries before the message is dead-lettered with reason `HandlerFailed`. Keep it below
    /// the entity's `maxDeliveryCount`, or the broker dead-letters first.
    public var maxAttempts: Int
    /// The delay after the first failure.
    public var baseDelay: Duration
    /// The longest delay.
    public var maxDelay: Duration
    /// The share of each delay that is random (0 to 1), so retries of many messages spread out.
    public var jitter: Double

    /// Creates a policy.
    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(30), jitter: Double = 0.5) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// The delay before delivery `attempt + 1`, after `attempt` failed deliveries.
    public func delay(afterAttempt attempt: Int, random: Double = Double.random(in: 0..<1)) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let full = min(self.baseDelay * (1 << exponent), self.maxDelay)
        return full * (1 - self.jitter) + full * (self.jitter * random)
    }
}
