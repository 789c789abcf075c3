import Foundation
import HeraldTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `herald` (or `herald-lab`) process started by a test, with its output collected.
final class HeraldProcess: Sendable {
    let process: ChildProcess

    /// Starts `herald` with `arguments`; with `descriptorLimit`, under that limit on open files
    /// (soft and hard, as `ulimit -n` sets them); with `lab`, `herald-lab` instead of `herald`.
    init(_ arguments: [String], descriptorLimit: Int? = nil, lab: Bool = false) throws {
        guard let executable = lab ? HeraldExecutable.labURL() : Self.executable() else {
            throw HeraldProcessError.executableNotFound(
                "the \(lab ? "herald-lab" : "herald") executable was not found next to the test runner nor in .build/debug; `swift test` builds it, `--skip-build` does not"
            )
        }
        if let descriptorLimit {
            self.process = try ChildProcess(
                "/bin/sh", ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", executable.path] + arguments)
        } else {
            self.process = try ChildProcess(executable, arguments)
        }
    }

    var standardOutput: String { self.process.standardOutput }
    var standardError: String { self.process.standardError }

    /// Waits until standard output has a line `herald listening on http://HOST:PORT …` and returns the port.
    func waitUntilListening(timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for line in self.standardOutput.split(separator: "\n") where line.hasPrefix("herald listening on http://") {
                let address = line.dropFirst("herald listening on http://".count).prefix { $0 != " " }
                if let port = address.split(separator: ":").last.flatMap({ Int($0) }) { return port }
            }
            if !self.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HeraldProcessError.notListening("stdout: \(self.standardOutput) stderr: \(self.standardError.suffix(2000))")
    }

    /// Waits for the process to exit, up to `timeout`; `nil` if it is still running then (it is killed).
    func waitForExit(timeout: Duration) async -> ChildProcess.Termination? {
        await self.process.waitForExit(timeout: timeout)
    }

    func signal(_ signal: Int32) {
        self.process.signal(signal)
    }

    /// Runs `herald` (with `lab`, `herald-lab`) with `arguments` to its end.
    static func run(
        _ arguments: [String], lab: Bool = false, timeout: Duration = .seconds(30)
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try HeraldProcess(arguments, lab: lab)
        guard let exit = await process.waitForExit(timeout: timeout) else {
            throw HeraldProcessError.timedOut("herald \(arguments.joined(separator: " ")) did not finish in \(timeout)")
        }
        return (exit.shellStatus, process.standardOutput, process.standardError)
    }

    /// The `herald` executable built with the tests: beside the test runner, else `.build/debug` of
    /// this package. `HERALD_EXECUTABLE` overrides (as in HeraldSQLiteTests/CrashTests.swift).
    static func executable() -> URL? {
        HeraldExecutable.url()
    }
}

enum HeraldProcessError: Error {
    case executableNotFound(String)
    case notListening(String)
    case timedOut(String)
}
