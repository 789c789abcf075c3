import Synchronization

/// Makes a broker's commits fail once thrown, like a disk (or a database) that stopped writing:
/// a store's test calls ``check()`` from its `_beforeCommit` hook and a conformance context's
/// `failStorage` calls ``fail()``. A reopened broker gets a fresh switch, so it writes again.
public final class StorageSwitch: Sendable {
    /// The error ``check()`` throws once the switch is thrown.
    public struct InjectedStorageFailure: Error, CustomStringConvertible {
        public var description: String { "injected storage failure" }
    }

    private let failing = Mutex(false)

    /// Creates a switch that lets commits through.
    public init() {}

    /// Makes every later ``check()`` fail.
    public func fail() { self.failing.withLock { $0 = true } }

    /// Throws ``InjectedStorageFailure`` once ``fail()`` was called.
    public func check() throws {
        if self.failing.withLock({ $0 }) { throw InjectedStorageFailure() }
    }
}
