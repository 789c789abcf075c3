package import Logging

/// A log handler that renders its metadata when a message is logged, not when the metadata changes.
///
/// The server's request handling sets metadata on its logger at every request (Hummingbird's
/// `hb.request.id`), and swift-log's `StreamLogHandler` renders its whole metadata to text at each
/// change: one string formatting per request, for log lines that at the default level are never
/// written. This handler keeps the metadata and hands it to the wrapped handler with each message,
/// which then renders it exactly as it would have: the output is the same, and nothing is rendered
/// for messages below the log level.
package struct DeferredMetadataLogHandler<Base: LogHandler>: LogHandler {
    private var base: Base

    package var metadata: Logger.Metadata = [:]

    package var logLevel: Logger.Level {
        get { self.base.logLevel }
        set { self.base.logLevel = newValue }
    }

    package var metadataProvider: Logger.MetadataProvider? {
        get { self.base.metadataProvider }
        set { self.base.metadataProvider = newValue }
    }

    /// Wraps `base`, whose own metadata this handler takes over.
    package init(_ base: Base) {
        self.base = base
        self.metadata = base.metadata
        self.base.metadata = [:]
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var event = event
        if !self.metadata.isEmpty {
            event.metadata = self.metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        self.base.log(event: event)
    }
}
