#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open file descriptors (`RLIMIT_NOFILE`), which every connection and
/// every file of the store count against.
package enum DescriptorLimit {
    /// The current (soft) limit; a very large one is reported as `Int.max / 2`.
    package static func current() -> Int {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return 1024 }
        return limit.rlim_cur >= rlim_t(Int.max / 2) ? Int.max / 2 : Int(clamping: limit.rlim_cur)
    }

    /// Raises the soft limit to the hard one, as servers do at start (the soft default, 1,024
    /// under systemd, is far below what a busy server needs).
    ///
    /// - Returns: The soft limit afterwards.
    @discardableResult
    package static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return Self.current() }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            #if canImport(Darwin)
            // macOS refuses more than OPEN_MAX for the soft limit.
            raised.rlim_cur = min(raised.rlim_cur, rlim_t(OPEN_MAX))
            #endif
            _ = setrlimit(Self.resource, &raised)
        }
        return Self.current()
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(UInt32(RLIMIT_NOFILE.rawValue))
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
