public import ArgumentParser
import Foundation
import HeraldCore

/// `herald message show`: one whole message.
public struct MessageCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "message",
        abstract: "Show one message, whole.",
        subcommands: [Show.self]
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a message by sequence number: every field, its properties and its whole body.",
            discussion: """
                A JSON body is pretty-printed, other text is shown as is, and a binary body in
                base64. Nothing changes: the message is not locked.
                Examples:
                  herald message show orders 17
                  herald message show 'orders/$deadletterqueue' 3 --json
                """
        )

        @Argument(help: "The queue or subscription, or its dead-letter queue (…/$deadletterqueue).")
        var entity: String

        @Argument(help: "The message's sequence number.")
        var sequenceNumber: Int64

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                let path = try EntityPath(parsing: self.entity)
                try path.checkReceiveSource()
                try await self.connection.withBroker { broker in
                    let received = try await DeadLetterQuery.message(self.sequenceNumber, in: path, broker: broker)
                    if self.connection.json { return try CommandOutput.printJSON(MessageRendering.wire(received)) }
                    CommandOutput.print(MessageRendering.details(received))
                }
            }
        }
    }
}

extension MessageRendering {
    /// Every field of `received`, then its properties and its whole body.
    static func details(_ received: ReceivedMessage) -> String {
        let message = received.message
        var details = Details()
        details.append("Entity", received.entity.description)
        details.append("Sequence number", "\(received.sequenceNumber)")
        details.append("State", received.state.rawValue)
        details.append("Message id", message.messageId)
        details.append("Enqueued", Self.time(received.enqueuedTime))
        details.append("Deliveries", "\(received.deliveryCount)")
        let optional: [(String, String?)] = [
            ("Subject", message.subject), ("Content type", message.contentType), ("Correlation id", message.correlationId),
            ("Causation id", message.causationId), ("Session", message.sessionId), ("Reply to", message.replyTo),
            ("Reply to session", message.replyToSessionId), ("To", message.to),
            ("Time to live", message.timeToLive.map(DurationArgument.format)), ("Scheduled", message.scheduledEnqueueTime.map(Self.time)),
            ("Expires", received.expiresAt.map(Self.time)), ("Locked until", received.lockedUntil.map(Self.time)),
            ("Sender", message.senderId.map { "\($0) #\(message.senderSequence ?? 0)" }),
            ("Dead-letter reason", received.deadLetterReason), ("Dead-letter description", received.deadLetterDescription),
        ]
        for case (let key, let value?) in optional { details.append(key, value) }
        for (key, value) in message.applicationProperties.sorted(by: { $0.key < $1.key }) {
            details.append("Property", PropertyArgument.format(key: key, value: value))
        }
        for (key, value) in message.annotations.sorted(by: { $0.key < $1.key }) {
            details.append("Annotation", PropertyArgument.format(key: key, value: value))
        }
        details.append("Body", "\(message.body.count) bytes")
        return details.render() + "\n\n" + Self.fullBody(message.body)
    }

    /// The body for people: pretty-printed JSON, text as it is, or base64 for bytes.
    static func fullBody(_ body: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        {
            return String(decoding: pretty, as: UTF8.self)
        }
        if let text = String(data: body, encoding: .utf8) { return text }
        return "(base64) " + body.base64EncodedString()
    }
}
