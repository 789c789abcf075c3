import Foundation
import HeraldCore
import HeraldSQLite
import Logging
import ServiceLifecycle
import Testing

/// The in-memory store, `SQLiteBroker.inMemory()`, beyond the conformance suite
/// (`InMemoryConformanceTests`): no file, separate databases, nothing kept, and the same
/// lifecycle as a broker on a file.
@Suite struct InMemoryBrokerTests {
    /// No database, WAL or journal file appears, in the current directory or the temporary one
    /// (the other tests' stores are in folders of their own there), and the broker says it is in memory.
    @Test func writesNoFile() async throws {
        let folders = [FileManager.default.currentDirectoryPath, FileManager.default.temporaryDirectory.path]
        let before = try folders.map { try Set(FileManager.default.contentsOfDirectory(atPath: $0)) }
        try await SQLiteBroker.withInMemoryBroker { broker in
            #expect(broker.isInMemory)
            try await broker.createQueue("orders")
            // Enough to pass the size at which a WAL would be checkpointed (4 MiB), and many commits.
            for batch in 0..<50 {
                let messages = (0..<20).map { Message(messageId: "m\(batch)-\($0)", body: Data(repeating: 0x61, count: 8 << 10)) }
                _ = try await broker.send(messages, to: .queue("orders"))
            }
            #expect(try await broker.counts(of: .queue("orders")).active == 1000)
        }
        let after = try folders.map { try Set(FileManager.default.contentsOfDirectory(atPath: $0)) }
        for (folder, (old, new)) in zip(folders, zip(before, after)) {
            let created = new.subtracting(old).filter {
                $0.contains("memory") || $0.hasSuffix(".sqlite") || $0.hasSuffix("-wal") || $0.hasSuffix("-shm") || $0.hasSuffix("-journal")
            }
            #expect(created.isEmpty, "files created in \(folder): \(created)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("herald-in-memory-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try SQLiteBroker(path: folder.appendingPathComponent("herald.sqlite").path)
        #expect(!file.isInMemory)
        await file.close()
    }

    /// Each in-memory broker has a database of its own, and a new one starts empty.
    @Test func eachBrokerHasItsOwnDatabase() async throws {
        try await SQLiteBroker.withInMemoryBroker { first in
            try await first.createQueue("orders")
            try await first.send(Message(text: "one"), to: .queue("orders"))
            try await SQLiteBroker.withInMemoryBroker { second in
                #expect(try await second.listQueues().isEmpty)
                try await second.createQueue("orders")
                #expect(try await second.counts(of: .queue("orders")).active == 0)
            }
            #expect(try await first.counts(of: .queue("orders")).active == 1)
        }
        try await SQLiteBroker.withInMemoryBroker { third in
            let queues = try await third.listQueues()
            #expect(queues.isEmpty, "nothing survives a closed in-memory broker")
        }
    }

    /// The transactional side (documents, event streams, the inbox) works in memory as on a file.
    @Test func transactionsDocumentsAndStreams() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("out")
            var transaction = BrokerTransaction()
            transaction.write(Data("v1".utf8), collection: "c", key: "k", expectedVersion: 0)
            transaction.append([EventData(type: "E", data: Data("{}".utf8))], to: "s", expectedVersion: .noStream, publishTo: .queue("out"))
            let receipt = try await broker.commit(transaction)
            #expect(receipt.streamVersions["s"] == 1)
            #expect(try await broker.document("k", in: "c")?.data == Data("v1".utf8))
            #expect(try await broker.readStream("s", from: 1, maxCount: 10).count == 1)
            #expect(try await broker.counts(of: .queue("out")).active == 1, "published in the same commit")
            // A rejected transaction leaves no trace.
            var conflicting = BrokerTransaction()
            conflicting.write(Data("v2".utf8), collection: "c", key: "k", expectedVersion: 0)
            conflicting.send(Message(text: "never"), to: .queue("out"))
            await #expect { try await broker.commit(conflicting) } throws: { ($0 as? HeraldError)?.code == .concurrencyConflict }
            #expect(try await broker.document("k", in: "c")?.data == Data("v1".utf8))
            #expect(try await broker.counts(of: .queue("out")).active == 1)
        }
    }

    /// In a `ServiceGroup` it stops with a graceful shutdown like a broker on a file: accepted
    /// operations finish, later ones fail with `storeClosed`.
    @Test func stopsWithItsServiceGroup() async throws {
        let broker = try SQLiteBroker.inMemory()
        let group = ServiceGroup(
            configuration: .init(services: [broker], logger: Logger(label: "herald.test", factory: { _ in SwiftLogNoOpLogHandler() })))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await broker.createQueue("orders")
            try await broker.send(Message(text: "hello"), to: .queue("orders"))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await #expect { try await broker.counts(of: .queue("orders")) } throws: {
            [.storeClosed, .storeFailed].contains(($0 as? HeraldError)?.code)
        }
    }

    /// The disk-space watermark does not apply: nothing is written to a disk.
    @Test func ignoresTheDiskSpaceWatermark() async throws {
        var configuration = SQLiteBroker.Configuration()
        configuration.minimumFreeDiskBytes = .max
        try await SQLiteBroker.withInMemoryBroker(configuration: configuration) { broker in
            try await broker.createQueue("orders")
            try await broker.send(Message(text: "hello"), to: .queue("orders"))
            #expect(try await broker.counts(of: .queue("orders")).active == 1)
        }
    }
}
