import Foundation
import HeraldCore
import HeraldWire

/// How received and peeked messages print: the JSON of the HTTP API, or a table.
enum MessageRendering {
    /// The longest body shown in a table cell.
    static let bodyPreviewLength = 60

    /// The wire form, with a UTF-8 body as `text` rather than base64 so scripts can read it.
    static func wire(_ received: ReceivedMessage) -> WireReceivedMessage {
        var wire = WireReceivedMessage(received)
        if let text = String(data: received.message.body, encoding: .utf8) {
            wire.message.body = nil
            wire.message.text = text
        }
        return wire
    }

    /// Prints `messages` as `{"messages": [...]}` or as a table.
    static func printMessages(_ messages: [ReceivedMessage], json: Bool, showLocks: Bool = false) throws {
        if json { return try CommandOutput.printJSON(MessagesResponse(messages: messages.map(Self.wire))) }
        if messages.isEmpty { return CommandOutput.print("(no messages)") }
        var columns: [Table.Column] = [
            .init("SEQ", alignRight: true), .init("STATE"), .init("MESSAGE ID"), .init("DELIVERIES", alignRight: true),
            .init("ENQUEUED"), .init("SESSION"), .init("SUBJECT"), .init("BODY"),
        ]
        if showLocks { columns.append(.init("LOCK TOKEN")) }
        var table = Table(columns)
        for received in messages {
            let message = received.message
            var row = [
                "\(received.sequenceNumber)", received.state.rawValue, message.messageId, "\(received.deliveryCount)",
                Self.time(received.enqueuedTime), message.sessionId ?? "-", message.subject ?? "-", Self.preview(message.body),
            ]
            if showLocks { row.append(received.lockToken?.description ?? "-") }
            table.append(row)
        }
        CommandOutput.print(table.render())
    }

    /// Prints dead letters with why they were dead-lettered.
    static func printDeadLetters(_ messages: [ReceivedMessage], json: Bool) throws {
        if json { return try CommandOutput.printJSON(MessagesResponse(messages: messages.map(Self.wire))) }
        if messages.isEmpty { return CommandOutput.print("(no dead letters)") }
        var table = Table([
            .init("SEQ", alignRight: true), .init("MESSAGE ID"), .init("REASON"), .init("DESCRIPTION"),
            .init("DELIVERIES", alignRight: true), .init("ENQUEUED"), .init("SUBJECT"), .init("BODY"),
        ])
        for received in messages {
            table.append([
                "\(received.sequenceNumber)", received.message.messageId, received.deadLetterReason ?? "-",
                Table.truncated(received.deadLetterDescription ?? "-", to: 60), "\(received.deliveryCount)", Self.time(received.enqueuedTime),
                received.message.subject ?? "-", Self.preview(received.message.body),
            ])
        }
        CommandOutput.print(table.render())
    }

    /// A time in UTC, to the second: `2025-03-01T12:00:00Z`.
    static func time(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// The body as text, cut short; `<N bytes>` when it is not UTF-8.
    static func preview(_ body: Data) -> String {
        guard let text = String(data: body, encoding: .utf8) else { return "<\(body.count) bytes>" }
        return Table.truncated(Table.singleLine(text), to: Self.bodyPreviewLength)
    }
}
