import Foundation
import HeraldCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads and writes the key file: `{"version": 1, "keys": [AccessKey…]}`, readable only by its owner.
enum KeyFile {
    private struct Contents: Codable {
        var version: Int
        var keys: [AccessKey]
    }

    /// What identifies one version of the file: a rewrite replaces the file (new inode) and changes
    /// its modification time.
    struct Fingerprint: Hashable {
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int
    }

    /// The keys in the file at `path`; none when the file does not exist.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` when the file cannot be read or parsed.
    static func load(_ path: String) throws(HeraldError) -> [AccessKey] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let contents = try decoder.decode(Contents.self, from: data)
            guard contents.version == 1 else {
                throw HeraldError(.invalidArgument, "the key file \(path) has version \(contents.version); this herald reads version 1")
            }
            return contents.keys
        } catch let error as HeraldError {
            throw error
        } catch {
            throw HeraldError(.invalidArgument, "cannot read the key file \(path): \(error)")
        }
    }

    /// Replaces the file at `path` with `keys` atomically (a temporary file created with mode 0600,
    /// fsynced, then renamed over the old one), creating its folder if needed.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` when the file cannot be written.
    static func save(_ keys: [AccessKey], to path: String) throws(HeraldError) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(Contents(version: 1, keys: keys))
        } catch {
            throw HeraldError(.invalidArgument, "cannot encode the keys: \(error)")
        }
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw HeraldError(.invalidArgument, "cannot create the folder \(folder): \(error)")
        }
        let temporary = "\(path).tmp-\(UUID().uuidString)"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw Self.failure("create", temporary) }
        var written = 0
        let wroteAll = data.withUnsafeBytes { buffer -> Bool in
            while written < buffer.count {
                let result = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                written += result
            }
            return true
        }
        guard wroteAll, fsync(descriptor) == 0 else {
            let error = Self.failure("write", temporary)
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let error = Self.failure("rename", temporary)
            unlink(temporary)
            throw error
        }
        // Make the rename itself durable.
        let folderDescriptor = open(folder, O_RDONLY)
        if folderDescriptor >= 0 {
            _ = fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// The file's fingerprint, or `nil` when it does not exist.
    static func fingerprint(_ path: String) -> Fingerprint? {
        // Through FileManager rather than stat(2): Glibc's `struct stat` members fail to resolve
        // under MemberImportVisibility in release builds.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value,
            let size = (attributes[.size] as? NSNumber)?.int64Value,
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970
        else { return nil }
        let seconds = modified.rounded(.down)
        return Fingerprint(
            inode: inode, size: size, modifiedSeconds: Int(seconds), modifiedNanoseconds: Int(((modified - seconds) * 1e9).rounded())
        )
    }

    private static func failure(_ operation: String, _ path: String) -> HeraldError {
        HeraldError(.invalidArgument, "cannot \(operation) \(path): \(String(cString: strerror(errno)))")
    }
}
