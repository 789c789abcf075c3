import ArgumentParser
import Foundation
import HeraldCore
import HeraldPostgres

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `herald-lab pg-worker`: one process of the PostgreSQL multi-process test
/// (Tests/HeraldPostgresTests/MultiProcessTests.swift). A sender sends `--count` messages and
/// exits; a receiver receives, holds each batch briefly, completes it, until the stop file appears.
///
/// Log lines, one `write(2)` each:
/// - `start <pid>`;
/// - `sent <messageId> <seq>` after a send returned;
/// - `recv <messageId> <seq> <deliveryCount> <lock expiry, wall ms>` after a receive returned the
///   message (the broker's own expiry, so the test needs no timestamp taken after the receive);
/// - `completing <messageId>` before `complete`, `completed <messageId>` after it returned;
/// - `error <operation> <description>` when a broker call fails (the test expects none);
/// - `done` when the worker finished its work.
struct PostgresWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pg-worker",
        abstract: "Send or receive on a PostgreSQL queue, logging every step (for the multi-process test)."
    )

    enum Role: String, ExpressibleByArgument {
        case send
        case receive
    }

    @Option(help: "The database URL.")
    var url: String

    @Option(help: "The schema.")
    var schema: String

    @Option(help: "The queue (it must exist).")
    var queue: String

    @Option(help: "send or receive.")
    var role: Role

    @Option(help: "The event log, appended to.")
    var log: String

    @Option(help: "Messages to send (send).")
    var count: Int = 1000

    @Option(help: "Message id prefix (send).")
    var prefix: String = "s"

    @Option(help: "The most messages one receive takes (receive).")
    var batch: Int = 50

    @Option(help: "How long a receiver holds a batch before completing it, in milliseconds (receive).")
    var holdMs: Int = 10

    @Option(help: "A file whose appearance stops a receiver.")
    var stopFile: String?

    func run() async throws {
        let log = try CrashWorker.EventLog(path: self.log)
        let client = try PostgresBroker.clientConfiguration(url: self.url, maximumConnections: 4)
        let worker = self
        try await PostgresBroker.withBroker(clientConfiguration: client, configuration: .init(schema: self.schema)) { broker in
            log.write("start \(getpid())")
            switch worker.role {
            case .send: try await worker.send(broker, log)
            case .receive: try await worker.receive(broker, log)
            }
            log.write("done")
        }
    }

    private func send(_ broker: PostgresBroker, _ log: CrashWorker.EventLog) async throws {
        let entity = EntityPath.queue(self.queue)
        var index = 0
        while index < self.count {
            // Mostly single sends; now and then an atomic batch.
            let size = min(self.count - index, Int.random(in: 0..<10) == 0 ? Int.random(in: 2...10) : 1)
            let messages = (index..<(index + size)).map { Message(messageId: "\(self.prefix)-\($0)", body: Data("m\($0)".utf8)) }
            do {
                let receipts = try await broker.send(messages, to: entity)
                for (message, receipt) in zip(messages, receipts) {
                    log.write("sent \(message.messageId) \(receipt.sequenceNumber.map(String.init) ?? "nil")")
                }
                index += size
            } catch {
                log.write("error send \(error)")
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    private func receive(_ broker: PostgresBroker, _ log: CrashWorker.EventLog) async throws {
        let entity = EntityPath.queue(self.queue)
        while !self.stopRequested() {
            let batch: [ReceivedMessage]
            do {
                batch = try await broker.receive(from: entity, maxCount: Int.random(in: 1...self.batch), maxWaitTime: .milliseconds(500), mode: .peekLock)
            } catch {
                log.write("error receive \(error)")
                try await Task.sleep(for: .milliseconds(10))
                continue
            }
            if batch.isEmpty { continue }
            for message in batch {
                let expiry = message.lockedUntil.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? 0
                log.write("recv \(message.message.messageId) \(message.sequenceNumber) \(message.deliveryCount) \(expiry)")
            }
            if self.holdMs > 0 { try await Task.sleep(for: .milliseconds(self.holdMs)) }
            for message in batch { log.write("completing \(message.message.messageId)") }
            do {
                try await broker.complete(batch.compactMap(\.lockToken))
                for message in batch { log.write("completed \(message.message.messageId)") }
            } catch {
                log.write("error complete \(error)")
            }
        }
    }

    private func stopRequested() -> Bool {
        guard let stopFile = self.stopFile else { return false }
        return FileManager.default.fileExists(atPath: stopFile)
    }
}
