import Foundation
import GRDB
import HeraldCore
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Refuses changes that grow the store while the disk holding it is nearly full, as RabbitMQ's
/// disk alarm blocks publishers, so that what frees space (receives, settlements, dead-letter
/// purges) and the WAL's checkpoints always find room to write.
///
/// The room is the file system's free space (`statvfs` of the database's folder), less what the
/// database file must still grow by to take the WAL's new pages at the next checkpoint, plus the
/// database's free pages, which SQLite reuses before it grows the file: once receivers drain a
/// queue, sends resume by themselves. While the room is below the minimum the writer checkpoints
/// at every commit, so the WAL is written again from its start instead of growing. The room is
/// measured at most every ``measurementInterval``, by the first change that finds the last
/// measurement stale; in between, each admitted change takes its size off the last measurement.
/// The guard is a watermark, not a reservation: a change admitted just above it can still find
/// the disk full, and the writer then rolls it back (``GroupCommitter``).
final class DiskSpaceGuard: Sendable {
    private struct State {
        /// The room at the last measurement, in bytes (`.max`: unknown).
        var room: Int64 = .max
        var measuredAt: ContinuousClock.Instant?
        /// What changes admitted since the last measurement add, in bytes.
        var admitted: Int64 = 0
        var isMeasuring = false
        /// Whether changes are being refused, for logging when that starts and ends.
        var isRefusing = false
    }

    /// How old a measurement may get before the next change measures again.
    static let measurementInterval: Duration = .milliseconds(100)

    private let minimum: Int64
    private let directory: String
    private let fileSystemFreeSpace: @Sendable (_ directory: String) -> Int64?
    private let logger: Logger
    private let onChange: @Sendable (_ isRefusing: Bool) -> Void
    private let state = Mutex(State())

    /// A guard for the database at `databasePath` that keeps `minimum` bytes free (0: no guard);
    /// `onChange` hears when refusing starts and ends.
    init(
        databasePath: String, minimum: Int64, fileSystemFreeSpace: (@Sendable (_ directory: String) -> Int64?)?, logger: Logger,
        onChange: @escaping @Sendable (_ isRefusing: Bool) -> Void
    ) {
        self.minimum = minimum
        self.onChange = onChange
        self.directory =
            (databasePath as NSString).deletingLastPathComponent.isEmpty
            ? "." : (databasePath as NSString).deletingLastPathComponent
        self.fileSystemFreeSpace = fileSystemFreeSpace ?? Self.statvfsFreeSpace
        self.logger = logger
    }

    /// Admits a change that adds about `bytes` to the store, or throws
    /// ``HeraldCore/HeraldError/Code/insufficientStorage`` while the room is below the minimum.
    /// `spareBytes` measures what the database itself adds to the room (see
    /// ``StoreTransaction/spareBytes(databasePath:)``; it runs on the writer).
    func admit(_ bytes: Int, spareBytes: () async throws -> Int64) async throws {
        guard self.minimum > 0 else { return }
        let now = ContinuousClock.now
        let mustMeasure = self.state.withLock { state in
            let isStale = state.measuredAt.map { now - $0 >= Self.measurementInterval } ?? true
            guard isStale && !state.isMeasuring else { return false }
            state.isMeasuring = true
            return true
        }
        if mustMeasure {
            let room: Int64
            do {
                room = try await self.measure(spareBytes)
            } catch {
                self.state.withLock { $0.isMeasuring = false }
                throw error
            }
            self.state.withLock { state in
                state.room = room
                state.measuredAt = now
                state.admitted = 0
                state.isMeasuring = false
            }
        }
        let (refusedRoom, change): (Int64?, Bool?) = self.state.withLock { state in
            let room = state.room - state.admitted
            let isRefusing = room < self.minimum
            var change: Bool?
            if isRefusing != state.isRefusing {
                state.isRefusing = isRefusing
                change = isRefusing
                // Under the lock, so that the writer hears the changes in order.
                self.onChange(isRefusing)
            }
            if isRefusing { return (room, change) }
            state.admitted += Int64(bytes)
            return (nil, change)
        }
        if let change { self.log(refusing: change) }
        if let refusedRoom {
            throw HeraldError(
                .insufficientStorage,
                "the disk holding the store has \(refusedRoom) bytes of room, below the minimum of \(self.minimum): "
                    + "changes that grow the store are refused until space is freed (receives and settlements still run)"
            )
        }
    }

    /// The file system's free space plus what the database adds; `.max` when `statvfs` fails.
    private func measure(_ spareBytes: () async throws -> Int64) async throws -> Int64 {
        guard let free = self.fileSystemFreeSpace(self.directory) else { return .max }
        return free + (try await spareBytes())
    }

    private func log(refusing: Bool) {
        let metadata: Logger.Metadata = ["directory": "\(self.directory)", "minimum": "\(self.minimum)"]
        if refusing {
            self.logger.warning("herald disk space below the minimum: refusing sends until space is freed", metadata: metadata)
        } else {
            self.logger.notice("herald disk space back above the minimum: accepting sends again", metadata: metadata)
        }
    }

    /// The bytes an unprivileged process may still write to the file system holding `directory`.
    private static func statvfsFreeSpace(_ directory: String) -> Int64? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}

extension StoreTransaction {
    /// What the database adds to the file system's free space: its free pages, which SQLite fills
    /// before it grows the file, less what the file at `databasePath` must still grow by to take
    /// the pages that are only in the WAL so far (the next checkpoint writes them).
    func spareBytes(databasePath: String) throws -> Int64 {
        let pageSize = try Int64.fetchOne(self.db, sql: "PRAGMA page_size") ?? 0
        let free = try Int64.fetchOne(self.db, sql: "PRAGMA freelist_count") ?? 0
        let pages = try Int64.fetchOne(self.db, sql: "PRAGMA page_count") ?? 0
        var info = stat()
        let fileSize = stat(databasePath, &info) == 0 ? Int64(info.st_size) : 0
        return free * pageSize - max(0, pages * pageSize - fileSize)
    }
}
