import ArgumentParser
import HeraldCore

/// The entity options `create` takes; an option left out keeps GUARANTEES.md §2's default.
struct EntityOptionArguments: ParsableArguments {
    @Option(help: ArgumentHelp("How long a peek-lock receive holds a message (1s–5m; default 60s).", valueName: "duration"))
    var lockDuration: DurationArgument?

    @Option(help: ArgumentHelp("Deliveries after which a message is dead-lettered (1–2000; default 10).", valueName: "count"))
    var maxDeliveryCount: Int?

    @Option(help: ArgumentHelp("Time-to-live of messages that set none (default: none).", valueName: "duration"))
    var ttl: DurationArgument?

    @Option(help: ArgumentHelp("Remember message ids this long to drop duplicates (1s–7d; default: off).", valueName: "duration"))
    var duplicateWindow: DurationArgument?

    @Option(help: ArgumentHelp("The largest body accepted, in bytes (default 262144).", valueName: "bytes"))
    var maxMessageSize: Int?

    @Flag(help: "Every message carries a session id; receivers accept sessions.")
    var requiresSession = false

    @Flag(help: "With --requires-session: a dead letter holds back the rest of its session until resubmitted.")
    var parkSessionOnDeadLetter = false

    @Flag(help: "Drop expired messages instead of dead-lettering them.")
    var dropExpired = false

    /// The options; the broker checks their bounds.
    var options: EntityOptions {
        var options = EntityOptions()
        if let value = self.lockDuration { options.lockDuration = value.duration }
        if let value = self.maxDeliveryCount { options.maxDeliveryCount = value }
        if let value = self.ttl { options.defaultTimeToLive = value.duration }
        if let value = self.duplicateWindow { options.duplicateDetectionWindow = value.duration }
        if let value = self.maxMessageSize { options.maxMessageSize = value }
        options.requiresSession = self.requiresSession
        options.parkSessionOnDeadLetter = self.parkSessionOnDeadLetter
        options.deadLetterOnExpiration = !self.dropExpired
        return options
    }
}
