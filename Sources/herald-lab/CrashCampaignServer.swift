import Foundation
import HeraldTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `herald serve` child process of the crash campaign: started on the campaign's store, then
/// killed with SIGKILL (or paused with SIGSTOP and resumed with SIGCONT) by the campaign.
///
/// Its standard output is read for the listening line; its standard error is appended to a log file
/// in the campaign's folder, kept when the campaign fails.
final class CrashCampaignServer: Sendable {
    /// Why the server could not be started.
    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    private let process: ChildProcess

    /// The TCP port the server listens on, once ``start(arguments:log:timeout:)`` returned.
    let port: Int

    private init(process: ChildProcess, port: Int) {
        self.process = process
        self.port = port
    }

    /// The `herald` executable that serves: `HERALD_EXECUTABLE` if set, else the one built beside
    /// `herald-lab` (SwiftPM puts every executable of the package in one folder).
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["HERALD_EXECUTABLE"] { return URL(fileURLWithPath: path) }
        let lab = Bundle.main.executablePath.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return lab.deletingLastPathComponent().appendingPathComponent("herald")
    }

    /// Starts `herald serve <arguments> --port 0` and waits for its listening line.
    ///
    /// - Parameters:
    ///   - arguments: The store arguments (`--data DIR` or `--postgres URL`) and any others.
    ///   - log: The file the server's standard error is appended to.
    ///   - timeout: How long to wait for the listening line.
    /// - Throws: ``StartFailure`` when the server exits or does not listen in time (it is killed).
    static func start(arguments: [String], log: URL, timeout: Duration = .seconds(30)) async throws -> CrashCampaignServer {
        let process = try ChildProcess(
            Self.executable, ["serve", "--insecure-local", "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"] + arguments,
            standardError: .appending(log.path))

        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let port = Self.listeningPort(in: process.standardOutput) {
                return CrashCampaignServer(process: process, port: port)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        process.signal(SIGKILL)
        throw StartFailure(description: "herald serve did not listen (see \(log.path)); stdout: \(process.standardOutput)")
    }

    /// The port of a `herald listening on http://HOST:PORT …` line in `output`, if there is one.
    static func listeningPort(in output: String) -> Int? {
        for line in output.split(separator: "\n") where line.hasPrefix("herald listening on http://") {
            let address = line.dropFirst("herald listening on http://".count).prefix { $0 != " " }
            if let port = address.split(separator: ":").last.flatMap({ Int($0) }) { return port }
        }
        return nil
    }

    /// Sends `signal` to the server.
    func signal(_ signal: Int32) {
        self.process.signal(signal)
    }

    /// Kills the server with SIGKILL and returns once it has exited.
    func killAndWait() async {
        self.signal(SIGCONT)
        self.signal(SIGKILL)
        await self.waitForExit()
    }

    /// Kills the server with SIGKILL if it is still running, without waiting: the cleanup of a campaign
    /// that ends with an error.
    func killIfRunning() {
        guard self.process.isRunning else { return }
        self.signal(SIGCONT)
        self.signal(SIGKILL)
    }

    /// Stops the server with SIGTERM (gracefully), killing it if it is still running after `timeout`.
    func terminate(timeout: Duration = .seconds(10)) async {
        self.signal(SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if self.process.isRunning { await self.killAndWait() }
    }

    /// Returns once the server process has exited.
    func waitForExit() async {
        _ = await self.process.waitForExit()
    }
}
