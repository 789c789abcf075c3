import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import HeraldServer

/// A long poll registers to hear when its client leaves; it must find its connection's watcher
/// without a hop to the event loop, and forget its registration when it ends (a keep-alive
/// connection makes many long polls).
@Suite struct ClientDepartureTests {
    @Test func registrationsAreForgottenAndTheRestHearTheDeparture() throws {
        let channel = EmbeddedChannel()
        let watcher = ClientDepartureHandler()
        try channel.pipeline.syncOperations.addHandler(watcher)
        #expect(ClientDepartureHandler.watching(channel) === watcher)

        let heard = Mutex<[String]>([])
        let forgotten = watcher.onDeparture { heard.withLock { $0.append("forgotten") } }
        _ = watcher.onDeparture { heard.withLock { $0.append("kept") } }
        #expect(forgotten != nil)
        if let forgotten { watcher.forget(forgotten) }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(heard.withLock { $0 } == ["kept"])
        #expect(watcher.hasDeparted)
        // After the departure a registration is called at once.
        #expect(watcher.onDeparture { heard.withLock { $0.append("late") } } == nil)
        #expect(heard.withLock { $0 } == ["kept", "late"])

        _ = try channel.finish()
        #expect(ClientDepartureHandler.watching(channel) == nil)
    }
}
