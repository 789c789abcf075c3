import Logging
import Synchronization
import Testing

@testable import HeraldServer

/// The server's log handler renders metadata only for the lines it writes, and writes them as
/// swift-log's `StreamLogHandler` does.
@Suite struct DeferredMetadataLogHandlerTests {
    /// Lines written to memory.
    final class Lines: TextOutputStream, Sendable {
        private let text = Mutex("")
        func write(_ string: String) { self.text.withLock { $0 += string } }
        /// The lines, each without its leading timestamp.
        var withoutTimestamps: [String] {
            self.text.withLock { $0 }.split(separator: "\n").map { String($0.drop { $0 != " " }) }
        }
    }

    /// A metadata value that counts how often it is rendered.
    final class Rendered: CustomStringConvertible, Sendable {
        private let count = Atomic(0)
        var times: Int { self.count.load(ordering: .relaxed) }
        var description: String {
            self.count.add(1, ordering: .relaxed)
            return "id"
        }
    }

    @Test func linesAreThoseOfTheStreamHandler() {
        func log(to lines: Lines, deferred: Bool) {
            let stream = StreamLogHandler(label: "herald.test", stream: lines, metadataProvider: nil)
            var logger = Logger(label: "herald.test") { _ -> any LogHandler in deferred ? DeferredMetadataLogHandler(stream) : stream }
            logger[metadataKey: "request"] = "7"
            logger[metadataKey: "entity"] = "orders"
            logger.info("plain")
            logger.warning("explicit wins", metadata: ["entity": "invoices", "extra": "1"])
            logger.debug("below the level")
            logger[metadataKey: "request"] = nil
            logger.error("after a removal")
        }
        let expected = Lines()
        let actual = Lines()
        log(to: expected, deferred: false)
        log(to: actual, deferred: true)
        #expect(actual.withoutTimestamps.count == 3)
        #expect(actual.withoutTimestamps == expected.withoutTimestamps)
    }

    /// What happens at every request: metadata set on a logger whose lines are below its level.
    /// (`StreamLogHandler` renders the metadata at each change: `times` would be 1,000.)
    @Test func metadataIsNotRenderedForLinesNotWritten() {
        let rendered = Rendered()
        let base = Logger(label: "herald.test") { DeferredMetadataLogHandler(StreamLogHandler(label: $0, stream: Lines(), metadataProvider: nil)) }
        for _ in 0..<1000 {
            var logger = base
            logger[metadataKey: "hb.request.id"] = .stringConvertible(rendered)
            logger.debug("a request")
        }
        #expect(rendered.times == 0)
        var logger = base
        logger[metadataKey: "hb.request.id"] = .stringConvertible(rendered)
        logger.info("a line written")
        #expect(rendered.times == 1)
    }
}
