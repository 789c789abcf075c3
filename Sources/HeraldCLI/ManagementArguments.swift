import ArgumentParser
import Foundation
import HeraldClient
import HeraldCore
import HeraldWire

/// The broker's operator operations (GUARANTEES.md §6); both stores and the HTTP client have them.
func manageable(_ broker: any MessageBroker) throws -> any ManageableBroker {
    guard let broker = broker as? any ManageableBroker else {
        throw CommandFailure("this broker cannot update options, purge or run bulk jobs")
    }
    return broker
}

/// A time on the command line: ISO 8601 (`2025-03-01T12:00:00Z`), or a date (`2025-03-01`, UTC midnight).
struct DateArgument: ExpressibleByArgument, Sendable {
    var date: Date

    init?(argument: String) {
        if let date = try? Date(argument, strategy: .iso8601) {
            self.date = date
        } else if let date = try? Date(argument + "T00:00:00Z", strategy: .iso8601) {
            self.date = date
        } else {
            return nil
        }
    }
}

/// A duration that can also be `none` (or `off`): an option an update can remove.
struct OptionalDurationArgument: ExpressibleByArgument, Sendable {
    /// The duration; `nil` for `none`.
    var duration: Duration?

    init?(argument: String) {
        if ["none", "off"].contains(argument.lowercased()) {
            self.duration = nil
        } else if let value = DurationArgument(argument: argument) {
            self.duration = value.duration
        } else {
            return nil
        }
    }
}

/// The options `update` takes; each option left out keeps its value.
struct EntityOptionChangeArguments: ParsableArguments {
    @Option(help: ArgumentHelp("How long a peek-lock receive holds a message (1s–5m).", valueName: "duration"))
    var lockDuration: DurationArgument?

    @Option(help: ArgumentHelp("Deliveries after which a message is dead-lettered (1–2000).", valueName: "count"))
    var maxDeliveryCount: Int?

    @Option(help: ArgumentHelp("Time-to-live of messages sent later that set none; `none` removes it.", valueName: "duration|none"))
    var ttl: OptionalDurationArgument?

    @Option(help: ArgumentHelp("Remember message ids this long to drop duplicates (1s–7d); `off` turns it off.", valueName: "duration|off"))
    var duplicateWindow: OptionalDurationArgument?

    @Option(help: ArgumentHelp("The largest body accepted, in bytes.", valueName: "bytes"))
    var maxMessageSize: Int?

    @Option(help: ArgumentHelp("Whether expired messages are dead-lettered (true) or dropped (false).", valueName: "true|false"))
    var deadLetterOnExpiration: Bool?

    @Option(help: ArgumentHelp("In a session entity, whether a dead letter holds back the rest of its session.", valueName: "true|false"))
    var parkSessionOnDeadLetter: Bool?

    /// The change the options state.
    var change: EntityOptionsChange {
        EntityOptionsChange(
            lockDuration: self.lockDuration?.duration, maxDeliveryCount: self.maxDeliveryCount, defaultTimeToLive: self.ttl.map(\.duration),
            deadLetterOnExpiration: self.deadLetterOnExpiration, duplicateDetectionWindow: self.duplicateWindow.map(\.duration),
            maxMessageSize: self.maxMessageSize, parkSessionOnDeadLetter: self.parkSessionOnDeadLetter
        )
    }

    func validate() throws {
        if self.change == EntityOptionsChange() { throw ValidationError("give at least one option to change") }
    }
}

/// Which dead letters a command picks: every condition given must hold.
struct DeadLetterFilterArguments: ParsableArguments {
    @Option(help: "Only dead letters with this dead-letter reason.")
    var reason: String?

    @Option(help: "Only dead letters with this subject.")
    var subject: String?

    @Option(help: "Only dead letters whose body contains this text (ignoring case).")
    var bodyContains: String?

    @Option(
        name: .customLong("property"), help: ArgumentHelp("Only dead letters with this application property (repeatable).", valueName: "key=value"))
    var properties: [PropertyArgument] = []

    @Option(help: ArgumentHelp("Only dead letters enqueued at or after this time (ISO 8601).", valueName: "time"))
    var enqueuedFrom: DateArgument?

    @Option(help: ArgumentHelp("Only dead letters enqueued before this time (ISO 8601).", valueName: "time"))
    var enqueuedBefore: DateArgument?

    /// The filter the options state.
    var filter: DeadLetterFilter {
        DeadLetterFilter(
            reason: self.reason, subject: self.subject, bodyContains: self.bodyContains, properties: PropertyArgument.properties(self.properties),
            enqueuedFrom: self.enqueuedFrom?.date, enqueuedBefore: self.enqueuedBefore?.date
        )
    }
}

/// Searching dead letters the same way on a server (one request per page) and on a data directory.
enum DeadLetterQuery {
    /// Every dead letter of `entity` that matches `filter`, up to `limit`.
    static func search(_ entity: EntityPath, matching filter: DeadLetterFilter, limit: Int, in broker: any MessageBroker) async throws -> [ReceivedMessage] {
        var found: [ReceivedMessage] = []
        var next: Int64? = 0
        while let from = next, found.count < limit {
            let wanted = min(HeraldLimits.maxReceiveCount, limit - found.count)
            let page: DeadLetterPage
            if let client = broker as? HeraldClient {
                page = try await client.searchDeadLetters(of: entity, matching: filter, from: from, maxCount: wanted)
            } else {
                page = try await broker.searchDeadLetters(of: entity, matching: filter, from: from, maxCount: wanted)
            }
            found += page.messages
            next = page.nextSequenceNumber
        }
        return found
    }

    /// How the dead letters of `entity` that match `filter` group.
    static func summary(_ entity: EntityPath, matching filter: DeadLetterFilter, in broker: any MessageBroker) async throws -> DeadLetterSummary {
        if let client = broker as? HeraldClient { return try await client.summarizeDeadLetters(of: entity, matching: filter) }
        return try await broker.summarizeDeadLetters(of: entity, matching: filter)
    }

    /// The message `sequenceNumber` of `entity`.
    static func message(_ sequenceNumber: Int64, in entity: EntityPath, broker: any MessageBroker) async throws -> ReceivedMessage {
        if let client = broker as? HeraldClient { return try await client.message(sequenceNumber, in: entity) }
        return try await broker.message(sequenceNumber, in: entity)
    }
}
