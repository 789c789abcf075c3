import Foundation
import HeraldTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The tests' child processes: what they inherit, where they run, how their end is reported.
struct ChildProcessTests {
    /// A socket a test opened (without close-on-exec, as `RawSocket` does) is not inherited: were
    /// it, closing it in the test would not close the connection while the child lives.
    @Test func aChildInheritsOnlyItsStandardStreams() async throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(socket >= 0)
        defer { close(socket) }
        let child = try ChildProcess("/bin/sh", ["-c", "ls /proc/$$/fd"])
        #expect(await child.waitForExit() == .exited(0))
        let inherited = child.standardOutput.split(separator: "\n").compactMap { Int32($0) }.sorted()
        #expect(inherited == [0, 1, 2], "the child has descriptors \(inherited); the test's socket is \(socket)")
    }

    @Test func aChildRunsInItsDirectoryWithItsEnvironment() async throws {
        let child = try ChildProcess("/bin/sh", ["-c", "pwd; echo \"$HERALD_CHILD\""], currentDirectory: "/tmp", environment: ["HERALD_CHILD": "yes"])
        #expect(await child.waitForExit() == .exited(0))
        #expect(child.standardOutput == "/tmp\nyes\n")
    }

    @Test func exitStatusesAndSignalsAreReported() async throws {
        let exiting = try ChildProcess("/bin/sh", ["-c", "echo oops >&2; exit 3"])
        #expect(await exiting.waitForExit() == .exited(3))
        #expect(exiting.standardError == "oops\n")

        let sleeping = try ChildProcess("/bin/sleep", ["30"])
        #expect(sleeping.isRunning)
        #expect(await sleeping.waitForExit(timeout: .milliseconds(50), killOnTimeout: false) == nil)
        sleeping.signal(SIGKILL)
        #expect(await sleeping.waitForExit() == .signalled(SIGKILL))
        #expect(sleeping.termination?.shellStatus == 128 + SIGKILL)
    }

    @Test func aMissingExecutableIsATypedError() {
        #expect(throws: ChildProcessError.self) { try ChildProcess("/nonexistent/herald", []) }
    }
}
