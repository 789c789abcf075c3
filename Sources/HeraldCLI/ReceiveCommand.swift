public import ArgumentParser
import HeraldCore

/// `herald receive`: receives messages from a queue or subscription and settles them.
public struct ReceiveCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive messages from a queue or subscription, print them, then settle them.",
        discussion: """
            By default the messages are received with peek-lock, printed, and only then
            completed (removed): a failure in between leaves them to be delivered again.
            --settle abandon makes them visible again at once; --settle none leaves them
            locked until the lock expires (their lock tokens are printed).
            --receive-and-delete removes them on receipt (at-most-once).
            Session queues need --session-id. To look without receiving, use `herald peek`.

            Examples:
              herald receive orders
              herald receive orders --max-count 50 --wait 20s --json
              herald receive events/subscriptions/audit --settle abandon
              herald receive payments --session-id customer-7
              herald receive orders/\\$deadletterqueue --receive-and-delete
            """
    )

    /// What happens to peek-locked messages once printed.
    enum Settlement: String, ExpressibleByArgument, CaseIterable {
        case complete, abandon, none
    }

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or subscription (topic/subscriptions/name), or its dead-letter queue (…/$deadletterqueue).")
    var entity: String

    @Option(help: "The most messages to receive (1–1000).")
    var maxCount = 10

    @Option(help: ArgumentHelp("How long to wait for a first message.", valueName: "duration"))
    var wait = DurationArgument(.zero)

    @Option(help: "What to do with the messages once printed: complete, abandon or none.")
    var settle: Settlement = .complete

    @Flag(help: "Remove the messages on receipt instead of locking them (at-most-once).")
    var receiveAndDelete = false

    @Option(help: "Accept this session of a session queue and receive from it.")
    var sessionId: String?

    @OptionGroup var connection: ConnectionOptions

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity)
            try await self.connection.withBroker { broker in
                if let sessionId = self.sessionId {
                    let session = try await broker.acceptSession(on: path, sessionId: sessionId, maxWaitTime: self.wait.duration)
                    do {
                        let messages = try await broker.receive(from: session, maxCount: self.maxCount, maxWaitTime: self.wait.duration)
                        try MessageRendering.printMessages(messages, json: self.connection.json, showLocks: self.settle == .none)
                        try await self.settle(messages, broker: broker)
                        try await broker.releaseSession(session)
                    } catch {
                        try? await broker.releaseSession(session)
                        throw error
                    }
                } else {
                    let mode: ReceiveMode = self.receiveAndDelete ? .receiveAndDelete : .peekLock
                    let messages: [ReceivedMessage]
                    do {
                        messages = try await broker.receive(from: path, maxCount: self.maxCount, maxWaitTime: self.wait.duration, mode: mode)
                    } catch let error as HeraldError where error.code == .sessionRequired {
                        throw HeraldError(.sessionRequired, "\(error.message); pass --session-id ID")
                    }
                    try MessageRendering.printMessages(messages, json: self.connection.json, showLocks: mode == .peekLock && self.settle == .none)
                    try await self.settle(messages, broker: broker)
                }
            }
        }
    }

    private func settle(_ messages: [ReceivedMessage], broker: any MessageBroker) async throws {
        let tokens = messages.compactMap(\.lockToken)
        switch self.settle {
        case .complete:
            for start in stride(from: 0, to: tokens.count, by: HeraldLimits.maxBatchCount) {
                try await broker.complete(Array(tokens[start..<min(start + HeraldLimits.maxBatchCount, tokens.count)]))
            }
        case .abandon:
            for token in tokens { try await broker.abandon(token, delay: nil) }
        case .none:
            break
        }
    }
}
