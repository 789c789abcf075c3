public import Foundation
import Synchronization

/// Starts the tests' child processes one at a time, apart from tests that open or close many
/// descriptors at once.
///
/// Foundation's `Process.run()` on Linux crashed the test process (a bad `memmove` inside it)
/// while a test of the same process was opening and closing hundreds of sockets; the suite runs
/// its tests in parallel, so both go through this lock.
public enum ChildProcesses {
    private static let lock = Mutex(())

    /// Starts `process`.
    public static func run(_ process: Process) throws {
        try Self.lock.withLock { _ throws(any Error) in try process.run() }
    }

    /// Runs `body`, which opens or closes descriptors, while no child process is being started.
    public static func holdingDescriptors<T>(_ body: () throws -> T) throws -> T {
        try Self.lock.withLock { _ throws(any Error) in try body() }
    }
}
