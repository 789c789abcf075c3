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
    /// with the same ``clock``; returns the new broker, which the case uses from then on. Only the
    /// cases with ``ConformanceRequirement/durableStorage`` call it: a store whose storage ends with
    /// its broker passes a `reopen` that throws and runs ``BrokerConformance/casesWithout(_:)``.
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

/// What a conformance case needs of the store beyond the ``HeraldCore/MessageBroker`` protocol.
///
/// A store that cannot meet a requirement runs the suite without the cases that have it,
/// `BrokerConformance.casesWithout([.durableStorage])`, and names them in its tests: the
/// exception is explicit, never a silent skip.
public enum ConformanceRequirement: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The case closes the broker and opens its storage again (``ConformanceContext/reopen``), as
    /// after a restart or a crash, and checks what survived (GUARANTEES.md §4.1, §4.2): messages,
    /// entities, sequence numbers, session state, the duplicate window, remembered settlements,
    /// committed transactions. A store whose contents end with its broker, such as
    /// `SQLiteBroker.inMemory()`, cannot meet it.
    case durableStorage

    /// The case releases deliveries (``HeraldCore/MessageBroker/release(_:)``) and checks that
    /// they are not counted. A store that cannot take a delivery back (the HTTP client, whose API
    /// has no release) abandons instead and cannot meet it.
    case uncountedRelease

    /// The requirement's name, as case descriptions show it.
    public var description: String { self.rawValue }
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
    /// What the case needs of the store beyond the protocol; empty for most cases.
    public let requirements: Set<ConformanceRequirement>
    /// Runs the case against the context's broker.
    public let run: @Sendable (ConformanceContext) async throws -> Void

    /// Creates a case.
    ///
    /// - Parameters:
    ///   - name: A unique name, prefixed with its area.
    ///   - guarantee: The section of GUARANTEES.md the case checks.
    ///   - requirements: What the case needs of the store beyond the protocol: ``ConformanceRequirement/durableStorage``
    ///     for a case that calls ``ConformanceContext/reopen``.
    ///   - run: The check; it throws when the broker breaks the guarantee.
    public init(
        name: String, guarantee: String, requires requirements: Set<ConformanceRequirement> = [],
        run: @escaping @Sendable (ConformanceContext) async throws -> Void
    ) {
        self.name = name
        self.guarantee = guarantee
        self.requirements = requirements
        self.run = run
    }

    /// The case's ``name``, which is unique within ``BrokerConformance/cases``.
    public var id: String { self.name }

    /// The name followed by the guarantee (and the requirements, if any), as test reports show it.
    public var description: String {
        let requirements = self.requirements.map(\.rawValue).sorted()
        return "\(self.name) [\(self.guarantee)]" + (requirements.isEmpty ? "" : " (requires \(requirements.joined(separator: ", ")))")
    }
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
        + ruleCases

    /// The cases that a store lacking `unmet` can run: every case but those that require one of them.
    ///
    /// - Parameter unmet: The requirements the store cannot meet.
    /// - Returns: The other cases, in the order of ``cases``.
    public static func casesWithout(_ unmet: Set<ConformanceRequirement>) -> [ConformanceCase] {
        Self.cases.filter { $0.requirements.isDisjoint(with: unmet) }
    }

    /// The cases that require `requirement`, in the order of ``cases``.
    ///
    /// - Parameter requirement: A requirement.
    /// - Returns: The cases that have it.
    public static func casesRequiring(_ requirement: ConformanceRequirement) -> [ConformanceCase] {
        Self.cases.filter { $0.requirements.contains(requirement) }
    }
}
