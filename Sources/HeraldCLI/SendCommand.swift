public import ArgumentParser
import Foundation
import HeraldCore
import HeraldWire

/// `herald send`: sends one message to a queue or topic.
public struct SendCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send one message to a queue or topic.",
        discussion: """
            The body is --text, or the contents of --file (- reads standard input).
            A topic is found by name; queues and topics share one namespace.

            Examples:
              herald send orders --text '{"id": 42}' --content-type application/json
              herald send orders --file order.json --message-id order-42 --subject OrderPlaced
              herald send payments --text hello --session-id customer-7
              herald send events --text ping --property region=eu --delay 5m
            """
    )

    /// Creates the command; ArgumentParser calls this.
    public init() {}

    @Argument(help: "The queue or topic.")
    var entity: String

    @Option(help: "The body, as UTF-8 text.")
    var text: String?

    @Option(help: ArgumentHelp("A file whose contents are the body; - for standard input.", valueName: "path"))
    var file: String?

    @Option(help: "The message id duplicate detection keys on (default: a fresh UUID).")
    var messageId: String?

    @Option(help: "The session id (required by session queues).")
    var sessionId: String?

    @Option(help: "The subject (message type).")
    var subject: String?

    @Option(help: "The correlation id.")
    var correlationId: String?

    @Option(help: "The content type, for example application/json.")
    var contentType: String?

    @Option(help: ArgumentHelp("The message's time-to-live.", valueName: "duration"))
    var ttl: DurationArgument?

    @Option(help: ArgumentHelp("Schedule the message this far in the future.", valueName: "duration"))
    var delay: DurationArgument?

    @Option(
        name: .customLong("property"), help: ArgumentHelp("An application property (repeatable): key=value, key:int=5, key:bool=true.", valueName: "key=value"))
    var properties: [PropertyArgument] = []

    @Flag(help: "Address the entity as a topic explicitly.")
    var topic = false

    @OptionGroup var connection: ConnectionOptions

    public func validate() throws {
        if (self.text == nil) == (self.file == nil) {
            throw ValidationError("give the body with --text or --file (one of them)")
        }
    }

    public func run() async throws {
        try await reportingErrors(json: self.connection.json) {
            let path = try EntityPath(parsing: self.entity, isTopic: self.topic)
            var message = Message(
                messageId: self.messageId ?? RandomIdentifier.uuidString(), body: try self.body(), contentType: self.contentType, subject: self.subject,
                correlationId: self.correlationId, sessionId: self.sessionId, timeToLive: self.ttl?.duration,
                applicationProperties: PropertyArgument.properties(self.properties)
            )
            if let delay = self.delay {
                message.scheduledEnqueueTime = Date().addingTimeInterval(delay.duration.timeInterval)
            }
            try await self.connection.withBroker(creating: false) { broker in
                let (receipt, path) = try await self.send(message, to: path, on: broker)
                if self.connection.json { return try CommandOutput.printJSON(SendResponse(receipts: [WireReceipt(receipt)])) }
                let number = receipt.sequenceNumber.map { " as #\($0)" } ?? ""
                let verb = receipt.isDuplicate ? "duplicate of a message already sent" : (self.delay == nil ? "sent" : "scheduled")
                CommandOutput.print("\(verb) to \(path)\(number) (message id \(message.messageId))")
            }
        }
    }

    /// Sends to `path`; a name given without `--topic` that is no queue is tried as a topic
    /// (queues and topics share one namespace, and a send to a path of the other kind finds
    /// nothing). Returns the receipt and the path that took the message.
    private func send(_ message: Message, to path: EntityPath, on broker: any MessageBroker) async throws -> (SendReceipt, EntityPath) {
        do {
            return (try await broker.send(message, to: path), path)
        } catch let error as HeraldError where error.code == .entityNotFound && !self.topic && path.kind == .queue && !path.isDeadLetter {
            let topic = EntityPath.topic(path.name)
            do {
                return (try await broker.send(message, to: topic), topic)
            } catch let error as HeraldError where error.code == .entityNotFound {
                throw HeraldError(.entityNotFound, "no queue or topic named '\(path.name)'")
            }
        }
    }

    private func body() throws -> Data {
        if let text = self.text { return Data(text.utf8) }
        guard let file = self.file else { return Data() }
        if file == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw CommandFailure("cannot read '\(file)': \(error.localizedDescription)")
        }
    }
}
