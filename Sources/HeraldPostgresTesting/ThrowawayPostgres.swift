import Foundation
import HeraldTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private PostgreSQL server for tests and benchmarks: `initdb` in a temporary folder, a free
/// port on 127.0.0.1, started as the `postgres` user when running as root (PostgreSQL refuses to
/// run as root). A watchdog shell process stops the server and deletes its folder when
/// ``stop()`` is called or when the process that started it exits, however it exits. A test can
/// crash the server (``killPostmaster()``), stop it cleanly (``stopServer()``) and start it again
/// on the same folder and port (``restart()``).
///
/// ```swift
/// let url = try await ThrowawayPostgres.sharedURL()   // HERALD_POSTGRES_URL, or a server of this process
/// ```
///
/// The server binaries are looked for in `HERALD_POSTGRES_BIN`, then `/usr/lib/postgresql/<version>/bin`
/// (newest first), then `PATH`. A server that cannot start is an error, never a skip.
public final class ThrowawayPostgres: Sendable {
    /// Why the server could not start.
    public struct StartFailure: Error, CustomStringConvertible {
        /// What went wrong, with the end of the server's log when there is one.
        public let description: String
    }

    /// `postgres://herald@127.0.0.1:<port>/postgres?sslmode=disable`.
    public let url: String
    /// The port on 127.0.0.1.
    public let port: Int
    private let watchdog: ChildProcess
    private let directory: String
    private let statusPath: String

    private init(url: String, port: Int, watchdog: ChildProcess, directory: String, statusPath: String) {
        self.url = url
        self.port = port
        self.watchdog = watchdog
        self.directory = directory
        self.statusPath = statusPath
    }

    /// Stops the server and deletes its folder; returns once the server has exited.
    public func stop() {
        self.watchdog.signal(SIGTERM)
        _ = self.watchdog.waitUntilExit()
    }

    /// Kills the server's postmaster with SIGKILL, as a crash would (its backends notice and exit
    /// by themselves); returns once the postmaster is gone. The folder stays for ``restart()``.
    public func killPostmaster() async throws {
        let pid = try self.postmasterPID()
        kill(pid, SIGKILL)
        try await self.waitUntil("the postmaster \(pid) exits", timeout: .seconds(10)) { kill(pid, 0) != 0 }
    }

    /// Stops the server cleanly (a fast shutdown, as `pg_ctl stop -m fast`: sessions are ended,
    /// a checkpoint written); returns once it has stopped. The folder stays for ``restart()``.
    public func stopServer() async throws {
        let pid = try self.postmasterPID()
        kill(pid, SIGINT)
        let pidFile = self.directory + "/data/postmaster.pid"
        try await self.waitUntil("the server stops", timeout: .seconds(30)) { !FileManager.default.fileExists(atPath: pidFile) }
    }

    /// Starts the server again on the same folder and port, after ``killPostmaster()`` or
    /// ``stopServer()`` (after a kill it recovers from its write-ahead log first); returns once it
    /// accepts connections.
    public func restart() async throws {
        try? FileManager.default.removeItem(atPath: self.statusPath)
        defer { try? FileManager.default.removeItem(atPath: self.statusPath) }
        self.watchdog.signal(SIGUSR1)
        try await Self.awaitStatus(self.statusPath, timeout: .seconds(60)) { text in
            throw StartFailure(description: "PostgreSQL did not start again on port \(self.port): \(text)")
        }
    }

    /// The process id of the running postmaster, from its `postmaster.pid`.
    private func postmasterPID() throws -> Int32 {
        let path = self.directory + "/data/postmaster.pid"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }), pid > 0
        else {
            throw StartFailure(description: "no running PostgreSQL server in \(self.directory) (no readable \(path))")
        }
        return pid
    }

    private func waitUntil(_ what: String, timeout: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw StartFailure(description: "timed out after \(timeout) waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until the watchdog reports on `path`: returns on `ready`, calls `failed` with its
    /// report otherwise.
    private static func awaitStatus(_ path: String, timeout: Duration, failed: (String) throws -> Never) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.hasSuffix("\n") || text.contains("failed") {
                if text.hasPrefix("ready") { return }
                try failed(text)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try failed("no report within \(timeout)")
    }

    private static let shared = Mutex<Task<String, any Error>?>(nil)
    nonisolated(unsafe) private static var sharedWatchdog: Int32 = 0

    /// The URL of the database tests use: `HERALD_POSTGRES_URL` when it is set, otherwise a
    /// throwaway server started on first use and stopped when this process exits.
    public static func sharedURL() async throws -> String {
        if let url = ProcessInfo.processInfo.environment["HERALD_POSTGRES_URL"], !url.isEmpty { return url }
        let task = Self.shared.withLock { task -> Task<String, any Error> in
            if let task { return task }
            let started = Task {
                let server = try await ThrowawayPostgres.start()
                Self.sharedWatchdog = server.watchdog.processIdentifier
                atexit {
                    // Stop it at once rather than when the watchdog next looks (every half second).
                    if ThrowawayPostgres.sharedWatchdog > 0 {
                        kill(ThrowawayPostgres.sharedWatchdog, SIGTERM)
                        var status: Int32 = 0
                        _ = waitpid(ThrowawayPostgres.sharedWatchdog, &status, 0)
                    }
                }
                return server.url
            }
            task = started
            return started
        }
        return try await task.value
    }

    /// Starts a new server (trying a few ports).
    ///
    /// - Throws: ``StartFailure`` when the binaries are missing or the server does not start.
    public static func start() async throws -> ThrowawayPostgres {
        let bin = try Self.binaries()
        var lastFailure: (any Error)?
        for _ in 0..<3 {
            do {
                return try await Self.start(bin: bin, port: try Self.freePort())
            } catch {
                lastFailure = error
            }
        }
        throw lastFailure ?? StartFailure(description: "PostgreSQL did not start")
    }

    /// The folder of `initdb`, `postgres` and `pg_isready`.
    static func binaries() throws -> String {
        let fileManager = FileManager.default
        var candidates: [String] = []
        if let bin = ProcessInfo.processInfo.environment["HERALD_POSTGRES_BIN"] { candidates.append(bin) }
        if let versions = try? fileManager.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) { candidates.append("/usr/lib/postgresql/\(version)/bin") }
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") { candidates.append(String(directory)) }
        for candidate in candidates
        where fileManager.isExecutableFile(atPath: candidate + "/initdb") && fileManager.isExecutableFile(atPath: candidate + "/postgres") {
            return candidate
        }
        throw StartFailure(
            description: """
                the PostgreSQL server binaries (initdb, postgres) were not found in HERALD_POSTGRES_BIN, /usr/lib/postgresql/*/bin \
                or PATH; install them (Debian: apt-get install postgresql) or set HERALD_POSTGRES_URL to a database of yours
                """
        )
    }

    /// A port on 127.0.0.1 that nothing listens on right now (also for tests of an unreachable server).
    ///
    /// - Throws: ``StartFailure`` when no socket can be bound.
    public static func freePort() throws -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw StartFailure(description: "socket() failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw StartFailure(description: "bind() failed: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw StartFailure(description: "getsockname() failed: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The watchdog: initializes and starts the server, reports through a status file, starts it
    /// again on the same folder and port when told to (USR1, after ``killPostmaster()`` or
    /// ``stopServer()``), then stops the server and deletes the folder when told to (TERM) or when
    /// the parent process is gone. The server exiting by itself does not delete the folder: a test
    /// may mean to start it again.
    static let script = #"""
        dir="$1"; port="$2"; parent="$3"; bin="$4"; status="$5"
        fail() { echo "failed: $*" > "$status"; [ -f "$dir/pg.log" ] && tail -n 20 "$dir/pg.log" >> "$status"; rm -rf "$dir"; exit 1; }
        as=""
        mkdir -p "$dir" || fail "mkdir $dir"
        if [ "$(id -u)" = 0 ]; then
            id postgres >/dev/null 2>&1 || fail "running as root, and there is no 'postgres' user to run PostgreSQL as"
            chown postgres:postgres "$dir" || fail "chown $dir"
            as="setpriv --reuid=postgres --regid=postgres --init-groups"
        fi
        chmod 700 "$dir"
        $as "$bin/initdb" -D "$dir/data" -U herald -A trust -E UTF8 --locale=C --no-instructions > "$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" > "$status.log" 2>/dev/null; fail "initdb failed: $(tail -n 5 "$dir/initdb.log" | tr '\n' ' ')"; }
        pg=""
        # Starts the server and waits until it accepts connections (returns 1 if it exits first). A
        # restart after SIGKILL may find the old server's backends still attached to its shared
        # memory for a moment: the caller tries again.
        launch() {
            $as "$bin/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -p "$port" -c unix_socket_directories="$dir" \
                -c max_connections=250 -c shared_buffers=256MB -c idle_in_transaction_session_timeout=60s >> "$dir/pg.log" 2>&1 &
            pg=$!
            tries=0
            until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U herald -d postgres; do
                kill -0 $pg 2>/dev/null || return 1
                tries=$((tries + 1)); [ $tries -gt 300 ] && { kill -INT $pg; return 1; }
                sleep 0.1
            done
            return 0
        }
        restart() {
            attempts=0
            until launch; do
                attempts=$((attempts + 1))
                [ $attempts -ge 50 ] && { echo "failed: postgres did not start again; $(tail -n 5 "$dir/pg.log" | tr '\n' ' ')" > "$status"; return; }
                sleep 0.2
            done
            echo ready > "$status"
        }
        launch || { kill -INT $pg 2>/dev/null; fail "postgres exited or did not accept connections within 30 s"; }
        trap 'kill -INT $pg 2>/dev/null; wait $pg; rm -rf "$dir"; exit 0' TERM INT
        trap 'restart' USR1
        echo ready > "$status"
        while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
        kill -INT $pg 2>/dev/null; wait $pg; rm -rf "$dir"
        """#

    private static func start(bin: String, port: Int) async throws -> ThrowawayPostgres {
        let base = FileManager.default.temporaryDirectory.path
        let name = "herald-pg-\(UUID().uuidString.prefix(12).lowercased())"
        let directory = "\(base)/\(name)"
        let status = "\(base)/\(name).status"
        defer { try? FileManager.default.removeItem(atPath: status) }
        let watchdog = try ChildProcess(
            "/bin/sh", ["-c", Self.script, "herald-pg-watchdog", directory, String(port), String(getpid()), bin, status],
            standardOutput: .discard, standardError: .discard)
        try await Self.awaitStatus(status, timeout: .seconds(60)) { text in
            if text.hasPrefix("no report") { watchdog.signal(SIGTERM) }
            _ = watchdog.waitUntilExit()
            throw StartFailure(description: "PostgreSQL (\(bin)) did not start on port \(port): \(text)")
        }
        return ThrowawayPostgres(
            url: "postgres://herald@127.0.0.1:\(port)/postgres?sslmode=disable", port: port, watchdog: watchdog, directory: directory, statusPath: status
        )
    }
}
