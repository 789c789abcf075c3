public import ArgumentParser
import Foundation
import HeraldCore
import HeraldWire

/// The file formats of `export` and `import`.
enum MessageFileFormat: String, ExpressibleByArgument, CaseIterable {
    /// One JSON object per line: the API's received-message form, a UTF-8 body as `text`.
    case jsonl
}

/// `herald export`: writes every message of an entity to a file, without taking them.
public struct ExportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the messages of a queue, subscription or dead-letter queue to a file, without receiving them.",
        discussion: """
            Every message in any state, in sequence-number order, one JSON object per line (the
            API's received-message form; a UTF-8 body as `text`, others as base64 `body`).
            `herald import` reads the file back.

            Examples:
              herald export orders --format jsonl --output orders.jsonl
              herald export 'orders/$deadletterqueue' > dead.jsonl
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or subscription, or its dead-letter queue (…/$deadletterqueue).")
    var entity: String

    @Option(help: "The file format.")
    var format: MessageFileFormat = .jsonl

    @Option(help: "The file to write (default: standard output).")
    var output: String?

    @OptionGroup var connection: ConnectionOptions

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity)
            try path.checkReceiveSource()
            try await self.connection.withBroker { broker in
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                var lines = Data()
                var count = 0
                var next: Int64 = 0
                while true {
                    let page = try await broker.peek(path, fromSequenceNumber: next, maxCount: HeraldLimits.maxReceiveCount)
                    for message in page {
                        lines += try encoder.encode(MessageRendering.wire(message))
                        lines.append(0x0A)
                    }
                    count += page.count
                    guard page.count == HeraldLimits.maxReceiveCount, let last = page.last else { break }
                    next = last.sequenceNumber + 1
                }
                guard let output = self.output else { return CommandOutput.current.standardOutput(String(decoding: lines, as: UTF8.self)) }
                do {
                    try lines.write(to: URL(fileURLWithPath: output))
                } catch {
                    throw CommandFailure("cannot write '\(output)': \(error.localizedDescription)")
                }
                if self.connection.json { return try CommandOutput.printJSON(["exported": count]) }
                CommandOutput.print("exported \(count) message(s) of \(path) to \(output)")
            }
        }
    }
}

/// `herald import`: sends the messages of an exported file to a queue or topic.
public struct ImportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Send the messages of a file `herald export` wrote to a queue or topic.",
        discussion: """
            Each line's message is sent as it was (id, body, properties, subject, session…), in
            batches of 100; what the broker added (sequence number, delivery count, dead-letter
            reason) is not. A line that is not a message stops the import before anything is sent.

            Examples:
              herald import orders --input orders.jsonl
              herald import events --topic < events.jsonl
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or topic.")
    var entity: String

    @Option(help: "The file format.")
    var format: MessageFileFormat = .jsonl

    @Option(help: "The file to read (default: standard input).")
    var input: String?

    @Flag(help: "Address the entity as a topic.")
    var topic = false

    @OptionGroup var connection: ConnectionOptions

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity, isTopic: self.topic)
            try path.checkSendTarget()
            let messages = try Self.messages(try self.read())
            try await self.connection.withBroker { broker in
                // The target must exist even when the file holds nothing.
                _ = try await manageable(broker).lastSequenceNumber(of: path)
                var duplicates = 0
                for start in stride(from: 0, to: messages.count, by: HeraldLimits.maxBatchCount) {
                    let batch = Array(messages[start..<min(start + HeraldLimits.maxBatchCount, messages.count)])
                    duplicates += try await broker.send(batch, to: path).filter(\.isDuplicate).count
                }
                if self.connection.json { return try CommandOutput.printJSON(["imported": messages.count - duplicates, "duplicates": duplicates]) }
                let note = duplicates > 0 ? " (\(duplicates) duplicate(s) not enqueued again)" : ""
                CommandOutput.print("imported \(messages.count - duplicates) message(s) to \(path)\(note)")
            }
        }
    }

    private func read() throws -> Data {
        guard let input = self.input else { return FileHandle.standardInput.readDataToEndOfFile() }
        // A file handle reads devices and pipes too (/dev/stdin, a fifo), which Data(contentsOf:) refuses.
        guard let handle = FileHandle(forReadingAtPath: input) else { throw CommandFailure("cannot read '\(input)'") }
        defer { try? handle.close() }
        return handle.readDataToEndOfFile()
    }

    /// The messages of a JSON-lines file: each line a received message (as `export` writes) or a
    /// message to send (as the API's send takes).
    static func messages(_ data: Data) throws -> [Message] {
        var messages: [Message] = []
        for (index, line) in data.split(separator: 0x0A).enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            if let received = try? WireDecoding.decode(WireReceivedMessage.self, from: Data(line)) {
                messages.append(try received.message.message())
            } else if let message = try? WireDecoding.decode(WireMessage.self, from: Data(line)) {
                messages.append(try message.message())
            } else {
                throw CommandFailure("line \(index + 1) is not a message in JSON", code: "invalidFile")
            }
        }
        return messages
    }
}
