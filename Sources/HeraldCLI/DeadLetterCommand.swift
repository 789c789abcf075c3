public import ArgumentParser
import HeraldCore
import HeraldWire

/// `herald deadletter`: inspect, resubmit and purge the dead-letter queue of a queue or subscription.
public struct DeadLetterCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "deadletter",
        abstract: "Inspect, resubmit and purge dead letters.",
        discussion: """
            Every queue and subscription has a dead-letter queue: messages that exceeded
            their max delivery count, expired, or were dead-lettered by a receiver.

            Examples:
              herald deadletter list orders
              herald deadletter list events/subscriptions/audit --json
              herald deadletter resubmit orders 17 18
              herald deadletter resubmit orders --all
              herald deadletter purge orders
            """,
        subcommands: [List.self, Resubmit.self, Purge.self]
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    /// The dead-letter queue of a queue or subscription path (with or without the `$deadletterqueue` suffix).
    static func deadLetterQueue(of entity: String) throws -> EntityPath {
        let path = try EntityPath(parsing: entity)
        guard path.kind != .topic else {
            throw HeraldError(.invalidArgument, "a topic has no dead-letter queue; its subscriptions do")
        }
        return path.deadLetter
    }

    /// How many messages one receive or peek asks for.
    static let pageSize = 100

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List dead letters: sequence number, message id, reason, description, deliveries, enqueued time.",
            discussion: "Example: herald deadletter list orders --max-count 20"
        )

        @Argument(help: "The queue or subscription (topic/subscriptions/name).")
        var entity: String

        @Option(help: "The most dead letters to list (default: all).")
        var maxCount: Int?

        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if let maxCount = self.maxCount, maxCount < 1 { throw ValidationError("--max-count must be at least 1") }
        }

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                let queue = try DeadLetterCommand.deadLetterQueue(of: self.entity)
                try await self.connection.withBroker { broker in
                    var messages: [ReceivedMessage] = []
                    var next: Int64 = 1
                    let limit = self.maxCount ?? Int.max
                    while messages.count < limit {
                        let wanted = min(DeadLetterCommand.pageSize, limit - messages.count)
                        let page = try await broker.peek(queue, fromSequenceNumber: next, maxCount: wanted)
                        messages += page
                        guard page.count == wanted, let last = page.last else { break }
                        next = last.sequenceNumber + 1
                    }
                    try MessageRendering.printDeadLetters(messages, json: self.connection.json)
                }
            }
        }
    }

    struct Resubmit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move dead letters back to their queue or subscription.",
            discussion: """
                A resubmitted message keeps its sequence number and starts again with a delivery
                count of zero. Dead letters not named are left in place (their delivery count
                in the dead-letter queue goes up by one).
                Examples:
                  herald deadletter resubmit orders 17 18
                  herald deadletter resubmit events/subscriptions/audit --all
                """
        )

        @Argument(help: "The queue or subscription (topic/subscriptions/name).")
        var entity: String

        @Argument(help: "The sequence numbers of the dead letters to resubmit.")
        var sequenceNumbers: [Int64] = []

        @Flag(help: "Resubmit every dead letter.")
        var all = false

        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if self.all == !self.sequenceNumbers.isEmpty {
                throw ValidationError("give sequence numbers or --all (one of them)")
            }
        }

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                let queue = try DeadLetterCommand.deadLetterQueue(of: self.entity)
                try await self.connection.withBroker { broker in
                    var wanted = Set(self.sequenceNumbers)
                    var resubmitted: [Int64] = []
                    var kept: [LockToken] = []
                    do {
                        // Locked messages stay invisible, so receiving until empty sees each dead letter once.
                        while self.all || !wanted.isEmpty {
                            let batch = try await broker.receive(from: queue, maxCount: DeadLetterCommand.pageSize, maxWaitTime: .zero, mode: .peekLock)
                            if batch.isEmpty { break }
                            for message in batch {
                                guard let token = message.lockToken else { continue }
                                if self.all || wanted.remove(message.sequenceNumber) != nil {
                                    try await broker.resubmit(token)
                                    resubmitted.append(message.sequenceNumber)
                                } else {
                                    kept.append(token)
                                }
                            }
                        }
                    } catch {
                        for token in kept { _ = try? await broker.abandon(token, delay: nil) }
                        throw error
                    }
                    for token in kept { try await broker.abandon(token, delay: nil) }
                    let missing = wanted.sorted()
                    if self.connection.json {
                        try CommandOutput.printJSON(ResubmitReport(resubmitted: resubmitted, notFound: missing))
                    } else {
                        CommandOutput.print("resubmitted \(resubmitted.count) dead letter(s) to \(queue.origin)")
                    }
                    if !missing.isEmpty {
                        throw HeraldError(
                            .messageNotFound, "no dead letter of \(queue.origin) with sequence number \(missing.map(String.init).joined(separator: ", "))")
                    }
                }
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete every dead letter of a queue or subscription.",
            discussion: "Example: herald deadletter purge orders"
        )

        @Argument(help: "The queue or subscription (topic/subscriptions/name).")
        var entity: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                let queue = try DeadLetterCommand.deadLetterQueue(of: self.entity)
                try await self.connection.withBroker { broker in
                    var purged = 0
                    while true {
                        let batch = try await broker.receive(from: queue, maxCount: HeraldLimits.maxReceiveCount, maxWaitTime: .zero, mode: .receiveAndDelete)
                        if batch.isEmpty { break }
                        purged += batch.count
                    }
                    if self.connection.json { return try CommandOutput.printJSON(["purged": purged]) }
                    CommandOutput.print("purged \(purged) dead letter(s) of \(queue.origin)")
                }
            }
        }
    }
}

/// The JSON answer of `deadletter resubmit`.
struct ResubmitReport: Encodable {
    var resubmitted: [Int64]
    var notFound: [Int64]
}
