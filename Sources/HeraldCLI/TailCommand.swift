public import ArgumentParser
import Foundation
import HeraldCore
import HeraldWire

/// `herald tail`: shows the messages that arrive in a queue or subscription, without taking them.
public struct TailCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Show the messages that arrive in a queue or subscription, as they arrive, without receiving them.",
        discussion: """
            Peeks again and again from the first sequence number not shown yet: receivers are not
            disturbed, and a message taken before the next look is not shown (nor is a resubmitted
            dead letter, which comes back with its old sequence number). It starts after the last
            message sent so far (or at --from) and runs until interrupted, until --count messages
            were shown, or for --timeout. On a dead-letter queue it shows each new dead letter,
            whatever its sequence number. With --json it prints one JSON object per line.

            Examples:
              herald tail orders
              herald tail events/subscriptions/audit --from 1 --count 10 --timeout 30s
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or subscription, or its dead-letter queue (…/$deadletterqueue).")
    var entity: String

    @Option(help: "The first sequence number to show (default: the next one sent).")
    var from: Int64?

    @Option(help: "Stop after showing this many messages.")
    var count: Int?

    @Option(help: ArgumentHelp("Stop after this long.", valueName: "duration"))
    var timeout: DurationArgument?

    @Option(help: ArgumentHelp("How long to wait between two looks.", valueName: "duration"))
    var interval = DurationArgument(.milliseconds(500))

    @OptionGroup var connection: ConnectionOptions

    public func validate() throws {
        if let count = self.count, count < 1 { throw ValidationError("--count must be at least 1") }
        if self.interval.duration <= .zero { throw ValidationError("--interval must be positive") }
    }

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity)
            try path.checkReceiveSource()
            try await self.connection.withBroker { broker in
                if path.isDeadLetter { return try await self.tailDeadLetters(path, broker) }
                var next: Int64
                if let from = self.from {
                    next = from
                } else {
                    next = try await manageable(broker).lastSequenceNumber(of: path) + 1
                }
                let deadline = self.timeout.map { ContinuousClock.now + $0.duration }
                var shown = 0
                if !self.connection.json { CommandOutput.print("tailing \(path) from #\(next)") }
                while true {
                    let wanted = min(100, (self.count ?? .max) - shown)
                    let page = try await broker.peek(path, fromSequenceNumber: next, maxCount: wanted)
                    for message in page { try self.show(message) }
                    shown += page.count
                    if let last = page.last { next = last.sequenceNumber + 1 }
                    if let count = self.count, shown >= count { return }
                    if page.count == wanted { continue }
                    if let deadline, ContinuousClock.now + self.interval.duration > deadline { return }
                    try await Task.sleep(for: self.interval.duration)
                }
            }
        }
    }

    /// Tails a dead-letter queue: a message is dead-lettered with the sequence number it had, so
    /// new dead letters can come before the last one shown. Each look reads the whole dead-letter
    /// queue (from --from) and shows the ones not seen before; without --from, those there at the
    /// start count as seen.
    private func tailDeadLetters(_ path: EntityPath, _ broker: any MessageBroker) async throws {
        let start = self.from ?? 0
        func everything() async throws -> [ReceivedMessage] {
            var all: [ReceivedMessage] = []
            var next = start
            while true {
                let page = try await broker.peek(path, fromSequenceNumber: next, maxCount: HeraldLimits.maxReceiveCount)
                all += page
                guard page.count == HeraldLimits.maxReceiveCount, let last = page.last else { return all }
                next = last.sequenceNumber + 1
            }
        }
        var seen = self.from == nil ? Set(try await everything().map(\.sequenceNumber)) : []
        let deadline = self.timeout.map { ContinuousClock.now + $0.duration }
        var shown = 0
        if !self.connection.json { CommandOutput.print("tailing \(path): dead letters as they arrive") }
        while true {
            for message in try await everything() where seen.insert(message.sequenceNumber).inserted {
                try self.show(message)
                shown += 1
                if let count = self.count, shown >= count { return }
            }
            if let deadline, ContinuousClock.now + self.interval.duration > deadline { return }
            try await Task.sleep(for: self.interval.duration)
        }
    }

    private func show(_ message: ReceivedMessage) throws {
        if self.connection.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return CommandOutput.print(String(decoding: try encoder.encode(MessageRendering.wire(message)), as: UTF8.self))
        }
        let fields = [
            "#\(message.sequenceNumber)", MessageRendering.time(message.enqueuedTime), message.state.rawValue, message.message.messageId,
            message.message.subject ?? "-", MessageRendering.preview(message.message.body),
        ]
        CommandOutput.print(fields.joined(separator: "  "))
    }
}

/// `herald cancel-scheduled`: cancels scheduled messages of a queue or topic.
public struct CancelScheduledCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cancel-scheduled",
        abstract: "Cancel scheduled messages of a queue or topic by sequence number.",
        discussion: """
            All or none: a number that is no longer scheduled (its time came, or it was cancelled)
            cancels nothing and fails with messageNotFound. `herald peek` shows scheduled messages.
            For a topic, give the numbers its sends returned: each cancels the message's copy in
            every subscription.

            Example: herald cancel-scheduled orders 41 42
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or topic.")
    var entity: String

    @Argument(help: "The sequence numbers of the scheduled messages (a topic's: what its sends returned).")
    var sequenceNumbers: [Int64]

    @Flag(help: "Address the entity as a topic explicitly.")
    var topic = false

    @OptionGroup var connection: ConnectionOptions

    public func validate() throws {
        if self.sequenceNumbers.isEmpty { throw ValidationError("give the sequence numbers of the messages to cancel") }
    }

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity, isTopic: self.topic)
            try await self.connection.withBroker { broker in
                let cancelled = try await self.cancel(in: path, on: broker)
                if self.connection.json { return try CommandOutput.printJSON(["cancelled": self.sequenceNumbers]) }
                CommandOutput.print("cancelled \(self.sequenceNumbers.count) scheduled message(s) of \(cancelled)")
            }
        }
    }

    /// Cancels in `path`; a name given without `--topic` that is no queue is tried as a topic, as
    /// `herald send` does. Returns the path that held the messages.
    private func cancel(in path: EntityPath, on broker: any MessageBroker) async throws -> EntityPath {
        do {
            try await broker.cancelScheduled(self.sequenceNumbers, in: path)
            return path
        } catch let error as HeraldError where error.code == .entityNotFound && !self.topic && path.kind == .queue && !path.isDeadLetter {
            let topic = EntityPath.topic(path.name)
            do {
                try await broker.cancelScheduled(self.sequenceNumbers, in: topic)
                return topic
            } catch let error as HeraldError where error.code == .entityNotFound {
                throw HeraldError(.entityNotFound, "no queue or topic named '\(path.name)'")
            }
        }
    }
}
