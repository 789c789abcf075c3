import CHeraldSpawn
public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started by a test with `posix_spawn`, its output collected, its end awaited.
///
/// Not Foundation's `Process`: on Linux its `run()` crashed the test process (a bad `memmove`
/// inside it) while other tests of the same process opened and closed sockets, and the suite runs
/// its tests in parallel. The child inherits only its three standard streams: a socket a test
/// closes must not stay open in a server another test started meanwhile.
public final class ChildProcess: Sendable {
    /// Where a standard stream of the child goes.
    public enum Stream: Sendable {
        /// `/dev/null`.
        case discard
        /// A pipe read by a thread of the test process; see ``standardOutput`` and ``standardError``.
        case collect
        /// A file, created or truncated.
        case file(String)
        /// The end of a file, created if missing.
        case appending(String)
    }

    /// How a child process ended.
    public enum Termination: Sendable, Equatable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal ended it.
        case signalled(Int32)

        /// The status a shell reports: the exit status, or 128 + the signal.
        public var shellStatus: Int32 {
            switch self {
            case .exited(let status): status
            case .signalled(let signal): 128 + signal
            }
        }
    }

    /// The child's process identifier.
    public let processIdentifier: Int32
    private let output: OutputCollector?
    private let errorOutput: OutputCollector?
    private let ended = Mutex<(termination: Termination?, waiters: [CheckedContinuation<Termination, Never>])>((nil, []))

    /// Starts `executable` with `arguments`, in `currentDirectory` when given, with `environment`
    /// (by default the test process's), and standard input from `/dev/null`.
    public init(
        _ executable: String, _ arguments: [String], currentDirectory: String? = nil, environment: [String: String]? = nil,
        standardOutput: Stream = .collect, standardError: Stream = .collect
    ) throws {
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var variables = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for variable in variables ?? [] { free(variable) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var pipes: [(read: Int32, write: Int32)] = []
        defer { for pipe in pipes { close(pipe.write) } }
        for (descriptor, stream) in [(Int32(1), standardOutput), (Int32(2), standardError)] {
            switch stream {
            case .discard:
                posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            case .appending(let path):
                posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .collect:
                var ends: [Int32] = [0, 0]
                guard herald_pipe_cloexec(&ends) == 0 else { throw ChildProcessError.spawn(executable, errno) }
                pipes.append((ends[0], ends[1]))
                posix_spawn_file_actions_adddup2(&actions, ends[1], descriptor)
            }
        }
        // Descriptors opened without close-on-exec (a test's raw socket) must not be inherited.
        let closing = herald_spawn_close_from(&actions, 3)
        guard closing == 0 else { throw ChildProcessError.spawn(executable, closing) }
        if let currentDirectory {
            let changing = herald_spawn_change_directory(&actions, currentDirectory)
            guard changing == 0 else { throw ChildProcessError.spawn(executable, changing) }
        }
        var identifier: pid_t = 0
        let result =
            if variables != nil {
                variables!.withUnsafeMutableBufferPointer { posix_spawn(&identifier, executable, &actions, nil, argv, $0.baseAddress) }
            } else {
                posix_spawn(&identifier, executable, &actions, nil, argv, environ)
            }
        guard result == 0 else {
            for pipe in pipes { close(pipe.read) }
            throw ChildProcessError.spawn(executable, result)
        }
        self.processIdentifier = identifier
        var readers = pipes.map { OutputCollector(reading: FileHandle(fileDescriptor: $0.read, closeOnDealloc: true)) }
        self.output = if case .collect = standardOutput { readers.removeFirst() } else { nil }
        self.errorOutput = if case .collect = standardError { readers.removeFirst() } else { nil }

        let thread = Thread { [self] in self.reap() }
        thread.name = "herald.child-process"
        thread.start()
    }

    /// Starts `executable` (a file URL) with `arguments`; see ``init(_:_:currentDirectory:environment:standardOutput:standardError:)``.
    public convenience init(
        _ executable: URL, _ arguments: [String], currentDirectory: URL? = nil, environment: [String: String]? = nil,
        standardOutput: Stream = .collect, standardError: Stream = .collect
    ) throws {
        try self.init(
            executable.path, arguments, currentDirectory: currentDirectory?.path, environment: environment,
            standardOutput: standardOutput, standardError: standardError)
    }

    /// What the child wrote to standard output so far (empty unless it is ``Stream/collect``).
    public var standardOutput: String { self.output?.text ?? "" }

    /// What the child wrote to standard error so far (empty unless it is ``Stream/collect``).
    public var standardError: String { self.errorOutput?.text ?? "" }

    /// How the child ended, or `nil` while it runs.
    public var termination: Termination? { self.ended.withLock { $0.termination } }

    /// Whether the child still runs.
    public var isRunning: Bool { self.termination == nil }

    /// Sends `signal` to the child unless it has ended.
    public func signal(_ signal: Int32) {
        // The reaper records the end before the identifier can be reused, under this lock.
        self.ended.withLock { if $0.termination == nil { _ = kill(self.processIdentifier, signal) } }
    }

    /// Waits for the child to end.
    public func waitForExit() async -> Termination {
        await withCheckedContinuation { continuation in
            let ended: Termination? = self.ended.withLock {
                if let termination = $0.termination { return termination }
                $0.waiters.append(continuation)
                return nil
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    /// Waits up to `timeout` for the child to end; `nil` if it still runs then, and it is then
    /// killed with `SIGKILL` when `killOnTimeout`.
    public func waitForExit(timeout: Duration, killOnTimeout: Bool = true) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let termination = self.termination {
                // Let the pipes deliver what the process wrote last.
                try? await Task.sleep(for: .milliseconds(50))
                return termination
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        if let termination = self.termination { return termination }
        if killOnTimeout { self.signal(SIGKILL) }
        return nil
    }

    /// Blocks the calling thread until the child ends.
    public func waitUntilExit() -> Termination {
        while true {
            if let termination = self.termination { return termination }
            usleep(5_000)
        }
    }

    private func reap() {
        var status: Int32 = 0
        while true {
            // WNOWAIT leaves the child a zombie, so its identifier cannot be reused before the end
            // is recorded; `signal` checks the record under the same lock.
            var info = siginfo_t()
            if waitid(P_PID, id_t(self.processIdentifier), &info, WEXITED | WNOWAIT) == 0 { break }
            if errno != EINTR { break }
        }
        // The child is gone: what it wrote last reaches its pipes' readers before anyone is told
        // it ended, so that its output is whole when its end is.
        self.output?.waitForEnd(atMost: .seconds(2))
        self.errorOutput?.waitForEnd(atMost: .seconds(2))
        let (termination, waiters) = self.ended.withLock { ended in
            while waitpid(self.processIdentifier, &status, 0) == -1 && errno == EINTR {}
            let signal = status & 0x7f
            let termination: Termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
            let waiters = ended.waiters
            ended = (termination, [])
            return (termination, waiters)
        }
        for waiter in waiters { waiter.resume(returning: termination) }
    }
}

/// A child process that could not be started.
public enum ChildProcessError: Error, CustomStringConvertible {
    /// `posix_spawn` (or the pipe before it) failed for this executable with this `errno`.
    case spawn(String, Int32)

    public var description: String {
        switch self {
        case .spawn(let executable, let code): "cannot start \(executable): \(String(cString: strerror(code)))"
        }
    }
}
