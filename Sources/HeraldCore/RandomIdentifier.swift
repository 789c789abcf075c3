package import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Random identifiers (message ids, lock nonces) straight from the kernel's `getentropy`, which
/// needs no file descriptor.
///
/// Foundation's `UUID()` on Linux reads `/dev/urandom`; with every descriptor taken it returned
/// `00000000-0000-4000-8000-000000000000` every time, and two deliveries got the same lock token.
/// Here a failure is an error, never a predictable id. The kernel is asked for 256 bytes at a
/// time (the most one `getentropy` gives), enough for 16 ids: a send of 100 messages without ids
/// made 100 system calls.
@usableFromInline
package enum RandomIdentifier {
    /// Random bytes from the kernel not handed out yet.
    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 256)
        var used = 256
    }

    private static let pool = Mutex(Pool())

    /// A random (version 4) UUID.
    ///
    /// - Throws: ``HeraldError/Code/storeFailed`` when the kernel gives no randomness; the
    ///   operation fails rather than hand out an id that may repeat.
    package static func uuid() throws(HeraldError) -> UUID {
        let bytes = try Self.pool.withLock { pool throws(HeraldError) -> [UInt8] in
            if pool.used + 16 > pool.bytes.count {
                let result = pool.bytes.withUnsafeMutableBytes { getentropy($0.baseAddress, $0.count) }
                guard result == 0 else {
                    throw HeraldError(.storeFailed, "no randomness for a new identifier (getentropy: \(String(cString: strerror(errno))))")
                }
                pool.used = 0
            }
            defer { pool.used += 16 }
            return Array(pool.bytes[pool.used..<pool.used + 16])
        }
        return Self.version4(bytes)
    }

    /// A random (version 4) UUID from Swift's `SystemRandomNumberGenerator` (the kernel's
    /// `getrandom`), for defaults that cannot throw; it stops the process rather than repeat.
    @usableFromInline
    package static func uuidString() -> String {
        // Two draws of 64 bits (each draw is a system call), not sixteen of 8.
        var generator = SystemRandomNumberGenerator()
        let words = (generator.next(), generator.next())
        return UUIDText.format(Self.version4(withUnsafeBytes(of: words) { Array($0) }))
    }

    private static func version4(_ bytes: [UInt8]) -> UUID {
        var bytes = bytes
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        )
    }
}
