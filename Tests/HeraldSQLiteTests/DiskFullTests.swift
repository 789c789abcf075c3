import CHeraldFaultVFS
import Foundation
import HeraldCore
import HeraldSQLite
import Testing

/// A full disk: the store refuses what grows it below its free-space watermark, and a write that
/// finds the disk full anyway is rolled back and answered, without stopping the store.
///
/// The disk is the `herald-fault` VFS with a capacity: a write that would grow the database's
/// files past it fails with `SQLITE_FULL`, as a write(2) failing with ENOSPC does, and
/// `herald_fault_free_space` stands in for `statvfs`. No mount is needed.
@Suite struct DiskFullTests {
    /// A folder whose SQLite files live on a small simulated disk.
    struct SmallDisk: ~Copyable {
        let directory: String

        init() throws {
            #expect(herald_fault_register() == 0)
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-disk-\(UUID().uuidString)").path + "/"
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
            herald_fault_domain_reset(self.directory)
        }

        deinit {
            herald_fault_domain_remove(self.directory)
            try? FileManager.default.removeItem(atPath: self.directory)
        }

        var path: String { self.directory + "herald.sqlite" }

        /// A configuration that opens the database on this disk, with the watermark `minimum`.
        func configuration(minimum: Int64) -> SQLiteBroker.Configuration {
            var configuration = SQLiteBroker.Configuration()
            configuration._vfsName = HERALD_FAULT_VFS_NAME
            configuration.minimumFreeDiskBytes = minimum
            let directory = self.directory
            configuration._fileSystemFreeSpace = { _ in
                let free = herald_fault_free_space(directory)
                return free < 0 ? nil : free
            }
            return configuration
        }

        /// The bytes the database's files take now.
        var used: Int64 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: self.directory)) ?? []
            return names.reduce(0) { total, name in
                let size = (try? FileManager.default.attributesOfItem(atPath: self.directory + name)[.size] as? Int64) ?? 0
                return total + size
            }
        }

        /// Lets the files grow by `bytes` more than they take now; `nil`: without limit.
        func limit(toGrowBy bytes: Int64?) {
            herald_fault_set_capacity(self.directory, bytes.map { self.used + $0 } ?? 0)
        }

        /// Writes refused so far because the disk was full.
        var fullWrites: Int64 { herald_fault_get_stats(self.directory).fullWrites }
    }

    static let body = Data(repeating: 0x2A, count: 4096)

    /// Sends 4 KiB messages one at a time until one is refused; returns the acknowledged ids and the refusal.
    static func fill(_ broker: SQLiteBroker, limit: Int = 5000) async throws -> (acknowledged: [String], refusal: HeraldError?) {
        var acknowledged: [String] = []
        for index in 0..<limit {
            let id = "m\(index)"
            do {
                try await broker.send(Message(messageId: id, body: Self.body), to: .queue("orders"))
                acknowledged.append(id)
            } catch let error as HeraldError {
                return (acknowledged, error)
            }
        }
        return (acknowledged, nil)
    }

    /// Every message of `orders`, by peeking (a read that writes nothing).
    static func peekAll(_ broker: SQLiteBroker) async throws -> [String] {
        var ids: [String] = []
        var next: Int64 = 0
        while true {
            let page = try await broker.peek(.queue("orders"), fromSequenceNumber: next, maxCount: 100)
            guard let last = page.last else { return ids }
            ids += page.map(\.message.messageId)
            next = last.sequenceNumber + 1
        }
    }

    @Test func aCommitThatFindsTheDiskFullIsRolledBackAndTheStoreGoesOn() async throws {
        let disk = try SmallDisk()
        let broker = try SQLiteBroker.running(path: disk.path, configuration: disk.configuration(minimum: 0))
        try await broker.createQueue("orders")
        disk.limit(toGrowBy: 1 << 20)

        let (acknowledged, refusal) = try await Self.fill(broker)
        #expect(disk.fullWrites > 0, "the disk filled up")
        #expect(refusal?.code == .insufficientStorage, "a full disk is answered as such, not as a failed store: \(String(describing: refusal))")
        #expect(broker.failure == nil, "a full disk does not stop the store")
        // Nothing of the refused send is stored, everything acknowledged is.
        #expect(try await Self.peekAll(broker) == acknowledged)

        // Space comes back: no restart needed.
        disk.limit(toGrowBy: nil)
        try await broker.send(Message(messageId: "after", body: Self.body), to: .queue("orders"))
        await broker.close()

        let reopened = try SQLiteBroker.running(path: disk.path, configuration: disk.configuration(minimum: 0))
        #expect(try await Self.peekAll(reopened) == acknowledged + ["after"])
        var received: [String] = []
        while true {
            let batch = try await reopened.receive(from: .queue("orders"), maxCount: 100)
            if batch.isEmpty { break }
            try await reopened.complete(batch.compactMap(\.lockToken))
            received += batch.map(\.message.messageId)
        }
        #expect(received == acknowledged + ["after"])
        await reopened.close()
    }

    @Test func aCheckpointThatFindsTheDiskFullIsPostponed() async throws {
        let disk = try SmallDisk()
        let broker = try SQLiteBroker.running(path: disk.path, configuration: disk.configuration(minimum: 0))
        try await broker.createQueue("orders", options: EntityOptions(maxMessageSize: 128 << 10))
        // A WAL past the 4 MiB the writer checkpoints at, with pages the database file does not
        // have yet, and room for the WAL to grow a little but not for a checkpoint to copy it.
        var acknowledged: [String] = []
        for batch in 0..<5 {
            if batch == 3 { disk.limit(toGrowBy: 3 << 20) }
            let messages = (0..<10).map { Message(messageId: "big\(batch)-\($0)", body: Data(repeating: 1, count: 100 << 10)) }
            _ = try await broker.send(messages, to: .queue("orders"))
            acknowledged += messages.map(\.messageId)
        }
        // Small commits until the writer's periodic checkpoint finds the disk full; the commit it
        // follows is acknowledged, and later commits run until they find the disk full themselves
        // (the failed checkpoint may have grown the database file into the last free bytes).
        var refusal: HeraldError?
        var checkpointFoundTheDiskFull = false
        for index in 0..<100 {
            let fullWritesBefore = disk.fullWrites
            do {
                try await broker.send(Message(messageId: "small\(index)", text: "\(index)"), to: .queue("orders"))
                acknowledged.append("small\(index)")
                if fullWritesBefore == 0 && disk.fullWrites > 0 { checkpointFoundTheDiskFull = true }
            } catch let error as HeraldError {
                refusal = error
                break
            }
        }
        #expect(checkpointFoundTheDiskFull, "a checkpoint found the disk full, and the commit before it was acknowledged")
        #expect(refusal == nil || refusal?.code == .insufficientStorage, "\(String(describing: refusal))")
        #expect(broker.failure == nil)

        disk.limit(toGrowBy: nil)
        #expect(try await Self.peekAll(broker) == acknowledged)
        await broker.close()
        let reopened = try SQLiteBroker.running(path: disk.path, configuration: disk.configuration(minimum: 0))
        #expect(try await Self.peekAll(reopened) == acknowledged)
        await reopened.close()
    }

    @Test func belowTheWatermarkWhatGrowsTheStoreIsRefusedAndWhatFreesItRuns() async throws {
        let disk = try SmallDisk()
        let broker = try SQLiteBroker.running(path: disk.path, configuration: disk.configuration(minimum: 3 << 20))
        try await broker.createQueue("orders")
        disk.limit(toGrowBy: 6 << 20)

        let (acknowledged, refusal) = try await Self.fill(broker)
        #expect(refusal?.code == .insufficientStorage, "\(String(describing: refusal))")
        #expect(disk.fullWrites == 0, "the watermark refused sends before a write found the disk full")
        #expect(acknowledged.count > 100)

        // Whatever grows the store is refused.
        await #expect { try await broker.createQueue("more") } throws: { ($0 as? HeraldError)?.code == .insufficientStorage }
        let later = Message(messageId: "scheduled", body: Self.body, scheduledEnqueueTime: Date().addingTimeInterval(3600))
        await #expect { try await broker.send(later, to: .queue("orders")) } throws: { ($0 as? HeraldError)?.code == .insufficientStorage }
        var sending = BrokerTransaction()
        sending.send(Message(messageId: "in-transaction", body: Self.body), to: .queue("orders"))
        await #expect { _ = try await broker.commit(sending) } throws: { ($0 as? HeraldError)?.code == .insufficientStorage }

        // Receives and settlements run: dead-letter some, complete the others, purge the dead letters.
        var received: [String] = []
        let first = try await broker.receive(from: .queue("orders"), maxCount: 20)
        for message in first {
            try await broker.deadLetter(try #require(message.lockToken), reason: "disk test", description: nil)
        }
        received += first.map(\.message.messageId)
        while true {
            let batch = try await broker.receive(from: .queue("orders"), maxCount: 100)
            if batch.isEmpty { break }
            var settling = BrokerTransaction()
            for message in batch { settling.complete(try #require(message.lockToken)) }
            _ = try await broker.commit(settling)
            received += batch.map(\.message.messageId)
        }
        #expect(received == acknowledged)
        let purged = try await broker.receive(from: .queue("orders").deadLetter, maxCount: 100, maxWaitTime: .zero, mode: .receiveAndDelete)
        #expect(purged.map(\.message.messageId) == first.map(\.message.messageId))
        #expect(disk.fullWrites == 0)

        // The drained queue's pages are free again: sends resume by themselves (within seconds; the
        // bound is generous because the whole suite shares two cores).
        let deadline = ContinuousClock.now + .seconds(20)
        var resumed = false
        while !resumed && ContinuousClock.now < deadline {
            do {
                try await broker.send(Message(messageId: "resumed", body: Self.body), to: .queue("orders"))
                resumed = true
            } catch let error as HeraldError where error.code == .insufficientStorage {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(resumed, "sends resume once there is room again")
        #expect(try await Self.peekAll(broker) == ["resumed"])
        #expect(broker.failure == nil)
        await broker.close()
    }
}
