import CHeraldFaultVFS
import Foundation

/// The simulation's storage fault layer: a directory whose SQLite files go through the
/// `herald-fault` VFS (see `CHeraldFaultVFS`), which keeps every write since a file's last sync
/// aside so that a simulated crash can discard it.
///
/// Herald's own WAL `fdatasync` reaches the layer through ``sync(_:)``, installed as the
/// broker's `_syncWAL` hook, so a commit the store never synced is lost in a crash, as on a real
/// machine.
final class FaultStorage: Sendable {
    /// The VFS name brokers open their file with (`SQLiteBroker.Configuration._vfsName`).
    static let vfsName = "herald-fault"

    /// The domain's directory, ending in `/`.
    let directory: String

    /// What the layer counted in this directory.
    struct Stats: Sendable {
        var events: Int64
        var syncs: Int64
        var crashes: Int64
        var undoneWrites: Int64
    }

    struct SyncFailed: Error, CustomStringConvertible {
        let path: String
        let code: Int32
        var description: String { "simulated fdatasync(\(self.path)) failed: SQLite I/O error \(self.code)" }
    }

    /// Creates (emptying) `directory` and starts its fault domain.
    init(directory: String) throws {
        let registered = herald_fault_register()
        guard registered == 0 else {
            throw SimulationSetupError("cannot register the herald-fault VFS (SQLite error \(registered))")
        }
        self.directory = directory.hasSuffix("/") ? directory : directory + "/"
        try? FileManager.default.removeItem(atPath: self.directory)
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        herald_fault_domain_reset(self.directory)
    }

    /// Crashes now: every file of the directory loses its unsynced writes (all of them when
    /// `keepSeed` is 0, else all but a seeded prefix), and open handles go inert.
    func crash(keepSeed: UInt64) { herald_fault_crash(self.directory, keepSeed) }

    /// Crashes at the `countdown`-th write, truncation or sync from now, instead of that I/O.
    func arm(countdown: Int64, keepSeed: UInt64) { herald_fault_arm(self.directory, countdown, keepSeed) }

    /// Cancels an armed crash.
    func disarm() { herald_fault_arm(self.directory, 0, 0) }

    /// Whether the directory crashed and has not restarted.
    var isCrashed: Bool { herald_fault_is_crashed(self.directory) != 0 }

    /// Lets new connections open the files again after a crash.
    func restart() { herald_fault_restart(self.directory) }

    /// Herald's WAL sync.
    func sync(_ path: String) throws {
        let result = herald_fault_sync(path)
        if result != 0 { throw SyncFailed(path: path, code: result) }
    }

    var stats: Stats {
        let stats = herald_fault_get_stats(self.directory)
        return Stats(events: stats.events, syncs: stats.syncs, crashes: stats.crashes, undoneWrites: stats.undoneWrites)
    }

    /// Forgets the domain and deletes the directory; every broker on it must be closed.
    func remove() {
        herald_fault_domain_remove(self.directory)
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// The simulation could not be set up (not a failed invariant).
struct SimulationSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
