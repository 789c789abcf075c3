import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The WAL file, opened on first use, for the `fdatasync` that makes commits durable.
final class WALFile: Sendable {
    struct SyncFailed: Error, CustomStringConvertible {
        let call: String
        let code: Int32
        var description: String { "\(self.call) failed: \(String(cString: strerror(self.code)))" }
    }

    private let path: String
    private let descriptor = Mutex<Int32>(-1)

    init(path: String) { self.path = path }

    /// `fdatasync`s the WAL. The first time, also syncs its directory, since SQLite (at
    /// `synchronous=OFF`) never syncs it for the WAL file it created.
    func sync() throws {
        let descriptor = try self.descriptor.withLock { descriptor -> Int32 in
            if descriptor < 0 {
                let opened = open(self.path, O_RDONLY | O_CLOEXEC)
                if opened < 0 {
                    if errno == ENOENT { return -1 }  // no WAL yet: nothing was ever committed to one
                    throw SyncFailed(call: "open(\(self.path))", code: errno)
                }
                let parent = (self.path as NSString).deletingLastPathComponent
                let directoryPath = parent.isEmpty ? "." : parent
                let directory = open(directoryPath, O_RDONLY | O_CLOEXEC)
                guard directory >= 0 else { throw SyncFailed(call: "open(\(directoryPath))", code: errno) }
                defer { closeDescriptor(directory) }
                guard fsync(directory) == 0 else { throw SyncFailed(call: "fsync(\(directoryPath))", code: errno) }
                descriptor = opened
            }
            return descriptor
        }
        guard descriptor >= 0 else { return }
        guard fdatasync(descriptor) == 0 else { throw SyncFailed(call: "fdatasync(wal)", code: errno) }
    }

    func close() {
        self.descriptor.withLock { descriptor in
            if descriptor >= 0 { closeDescriptor(descriptor) }
            descriptor = -1
        }
    }
}

/// Closes a file descriptor: the C library's `close`, which a type's own `close()` hides.
func closeDescriptor(_ descriptor: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #elseif canImport(Darwin)
    _ = Darwin.close(descriptor)
    #endif
}
