public import HeraldCore

/// What a conformance case runs against: a fresh, empty broker, the manual clock it reads, and a
/// way to restart it.
///
/// A store's test target builds one context per case, the way swift-collections' conformance
/// checkers take the collection under test:
///
/// ```swift
/// @Test(arguments: BrokerConformance.cases)
/// func conformance(_ testCase: ConformanceCase) async throws {
///     let clock = ManualBrokerClock()
///     let broker = try MyBroker(clock: clock)
///     try await testCase.run(ConformanceContext(broker: broker, clock: clock, reopen: { ... }))
/// }
/// ```
public struct ConformanceContext: Sendable {
    /// The broker under test. It is empty when the case starts and reads ``clock``.
    public let broker: any MessageBroker
    /// The clock the broker reads; cases move time only through it.
    public let clock: ManualBrokerClock
    /// Closes the current broker and opens the same storage again, as after a crash or restart,
    /// with the same ``clock``; returns the new broker, which the case uses from then on.
    public let reopen: @Sendable () async throws -> any MessageBroker
    /// Makes every later durable write of the current broker (its fsync or commit) fail, as a
    /// failing disk would, until ``reopen`` opens the storage again (GUARANTEES.md §4.10).
    public let failStorage: @Sendable () -> Void

    /// Creates a context.
    ///
    /// - Parameters:
    ///   - broker: A fresh, empty broker that reads `clock`.
    ///   - clock: The clock `broker` reads.
    ///   - reopen: Closes the current broker, opens its storage again and returns the new broker.
    ///   - failStorage: Makes the current broker's later durable writes fail.
    public init(
        broker: any MessageBroker, clock: ManualBrokerClock,
        reopen: @escaping @Sendable () async throws -> any MessageBroker,
        failStorage: @escaping @Sendable () -> Void
    ) {
        self.broker = broker
        self.clock = clock
        self.reopen = reopen
        self.failStorage = failStorage
    }
}

/// One check of the broker's semantics (GUARANTEES.md §2–§4), runnable against any ``HeraldCore/MessageBroker``.
///
/// A case throws a ``ConformanceFailure`` (or the broker's own error) when the broker breaks the
/// guarantee it checks.
public struct ConformanceCase: Sendable, CustomStringConvertible, Identifiable {
    /// A unique, human-readable name, prefixed with its area (for example `peekLock.completeRemoves`).
    public let name: String
    /// The part of GUARANTEES.md the case checks, for example `§4.3`.
    public let guarantee: String
    /// Runs the case against the context's broker.
    public let run: @Sendable (ConformanceContext) async throws -> Void

    /// Creates a case.
    ///
    /// - Parameters:
    ///   - name: A unique name, prefixed with its area.
    ///   - guarantee: The section of GUARANTEES.md the case checks.
    ///   - run: The check; it throws when the broker breaks the guarantee.
    public init(name: String, guarantee: String, run: @escaping @Sendable (ConformanceContext) async throws -> Void) {
        self.name = name
        self.guarantee = guarantee
        self.run = run
    }

    /// The case's ``name``, which is unique within ``BrokerConformance/cases``.
    public var id: String { self.name }

    /// The name followed by the guarantee, as test reports show it.
    public var description: String { "\(self.name) [\(self.guarantee)]" }
}

/// The conformance suite: every case that any ``HeraldCore/MessageBroker`` must pass.
///
/// The cases are grouped by area (entities, limits, sending, peek-lock, delivery count, duplicate
/// detection, order, scheduling and deferral, sessions, topics, dead letters, restart, and errors
/// that must leave the store unchanged). Each case expects a fresh, empty broker.
public enum BrokerConformance {
    /// Every case, in a stable order; names are unique.
    public static let cases: [ConformanceCase] =
        entityCases
        + limitCases
        + sendingCases
        + peekLockCases
        + settlementRetryCases
        + deliveryCountCases
        + expiryCases
        + duplicateDetectionCases
        + orderCases
        + sessionCases
        + topicCases
        + deadLetterCases
        + restartCases
        + receivingCases
        + unchangedCases
        + failStopCases
        + transactionCases
        + hostileNumberCases
        + managementCases
}
