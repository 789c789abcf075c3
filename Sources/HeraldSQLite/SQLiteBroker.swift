public import HeraldCore
public import Foundation
public import Logging

/// The embedded broker: one SQLite file in WAL mode, every change fsynced before it is
/// acknowledged, concurrent changes sharing one transaction and one fsync (group commit).
public final class SQLiteBroker: Sendable {
    /// How the broker is set up.
    public struct Configuration: Sendable {
        /// The source of time; tests pass a ``HeraldCore/ManualBrokerClock``.
        public var clock: any BrokerClock
        /// Where the broker logs.
        public var logger: Logger
        /// Called before each commit; a thrown error is treated as a failed fsync (tests only).
        public var _beforeCommit: (@Sendable () throws -> Void)?

        /// Creates a configuration.
        public init(clock: any BrokerClock = SystemBrokerClock(), logger: Logger = Logger(label: "herald.sqlite")) {
            self.clock = clock
            self.logger = logger
            self._beforeCommit = nil
        }
    }

    /// Opens (creating if needed) the broker stored at `path`. Messages that were locked when the
    /// file was last closed, or when its process crashed, become visible again.
    public init(path: String, configuration: Configuration = Configuration()) throws {
        fatalError("not yet")
    }

    /// Finishes pending work and closes the file. Later calls throw ``HeraldError/Code/storeClosed``.
    public func close() async {
        fatalError("not yet")
    }
}
