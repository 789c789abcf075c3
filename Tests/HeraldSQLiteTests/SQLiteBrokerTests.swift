import Foundation
import HeraldCore
import HeraldSQLite
import HeraldTestSupport
import Synchronization
import Testing

/// Behaviour of the embedded store that the shared conformance suite cannot state: fail-stop on
/// storage errors, corruption found on open, group commit under concurrency.
@Suite struct SQLiteBrokerTests {
    struct InjectedFsyncFailure: Error {}

    private static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("herald-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func failedCommitIsNeverAcknowledgedAndStopsTheStore() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let failNext = Mutex(false)
        var configuration = SQLiteBroker.Configuration()
        configuration._beforeCommit = {
            if failNext.withLock({ $0 }) { throw InjectedFsyncFailure() }
        }
        let broker = try SQLiteBroker.running(path: path, configuration: configuration)
        try await broker.createQueue("orders")
        try await broker.send(Message(messageId: "kept", text: "1"), to: .queue("orders"))

        failNext.withLock { $0 = true }
        await #expect {
            try await broker.send(Message(messageId: "lost", text: "2"), to: .queue("orders"))
        } throws: { ($0 as? HeraldError)?.code == .storeFailed }
        // Fail-stop: the store refuses further work even once the fault is gone, and says why.
        failNext.withLock { $0 = false }
        #expect(broker.failure?.code == .storeFailed)
        await #expect {
            try await broker.send(Message(messageId: "after", text: "3"), to: .queue("orders"))
        } throws: { ($0 as? HeraldError)?.code == .storeFailed }
        await #expect {
            _ = try await broker.receive(from: .queue("orders"))
        } throws: { ($0 as? HeraldError)?.code == .storeFailed }
        await broker.close()

        // Reopened, the store holds everything acknowledged. The send whose fsync failed was never
        // acknowledged; whether its commit reached the disk is unknown (the kernel may or may
        // not have written the pages), so it may be there or not, but nothing after it is.
        let reopened = try SQLiteBroker.running(path: path)
        let messages = try await reopened.peek(.queue("orders"), fromSequenceNumber: 0, maxCount: 10)
        let ids = messages.map(\.message.messageId)
        #expect(ids.first == "kept")
        #expect(ids == ["kept"] || ids == ["kept", "lost"])
        #expect(!ids.contains("after"))
        // Sequence numbers go on above every number the file holds.
        let receipt = try await reopened.send(Message(messageId: "next", text: "4"), to: .queue("orders"))
        #expect(receipt.sequenceNumber! > messages.map(\.sequenceNumber).max()!)
        await reopened.close()
    }

    @Test func concurrentFailuresFailEveryWaitingCaller() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let failNext = Mutex(false)
        var configuration = SQLiteBroker.Configuration()
        configuration._beforeCommit = { if failNext.withLock({ $0 }) { throw InjectedFsyncFailure() } }
        let broker = try SQLiteBroker.running(path: directory.appendingPathComponent("h.sqlite").path, configuration: configuration)
        try await broker.createQueue("q")
        failNext.withLock { $0 = true }
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<50 {
                group.addTask {
                    do {
                        try await broker.send(Message(text: "\(index)"), to: .queue("q"))
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { !$0 }, "no send may be acknowledged after a failed commit")
        await broker.close()
    }

    @Test func corruptFileIsRefusedOnOpen() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let broker = try SQLiteBroker.running(path: path)
        try await broker.createQueue("q")
        for index in 0..<200 {
            try await broker.send(Message(body: Data(repeating: UInt8(index % 256), count: 2000)), to: .queue("q"))
        }
        await broker.close()
        // Overwrite a page in the middle of the file with garbage.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2 / 4096 * 4096)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 4096))
        try handle.close()
        #expect {
            _ = try SQLiteBroker(path: path)
        } throws: { ($0 as? HeraldError)?.code == .storeFailed }
    }

    @Test func secondBrokerOnTheSameFileIsRefused() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let broker = try SQLiteBroker.running(path: path)
        try await broker.createQueue("q")
        #expect(throws: HeraldError.self) { _ = try SQLiteBroker(path: path) }
        await broker.close()
    }

    @Test func concurrentSendsShareCommitsAndKeepSequenceNumbersUnique() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let commits = Mutex(0)
        var configuration = SQLiteBroker.Configuration()
        configuration._beforeCommit = { commits.withLock { $0 += 1 } }
        let broker = try SQLiteBroker.running(path: directory.appendingPathComponent("h.sqlite").path, configuration: configuration)
        try await broker.createQueue("q")
        let before = commits.withLock { $0 }
        let sequenceNumbers = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for sender in 0..<32 {
                group.addTask {
                    var numbers: [Int64] = []
                    for index in 0..<50 {
                        let receipt = try await broker.send(Message(text: "\(sender)-\(index)"), to: .queue("q"))
                        numbers.append(receipt.sequenceNumber!)
                    }
                    return numbers
                }
            }
            return try await group.reduce(into: [Int64]()) { $0 += $1 }
        }
        let used = commits.withLock { $0 } - before
        #expect(Set(sequenceNumbers).count == 1600)
        #expect(Set(sequenceNumbers) == Set(1...1600))
        #expect(used < 1600, "1,600 concurrent sends took \(used) commits: group commit must share them")
        await broker.close()
    }

    /// `SQLiteBroker(path: "herald.sqlite")`, a file in the current directory, must work: the
    /// directory to sync is then the current one. The current directory belongs to the whole
    /// test process, so the broker runs in a child `herald bench` started in a fresh directory.
    @Test func aBareFileNameOpensInTheCurrentDirectory() async throws {
        let herald = try #require(HeraldExecutable.url(), "the herald executable is built with the tests (run `swift build`)")
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = try ChildProcess(
            herald, ["bench", "--scenario", "send-sequential", "--messages", "3", "--data", "herald.sqlite"],
            currentDirectory: directory, standardOutput: .discard)
        let termination = await process.waitForExit()
        #expect(termination == .exited(0), "herald bench on a bare file name: \(process.standardError)")
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("herald.sqlite").path), "the file is in the current directory")
    }
}
