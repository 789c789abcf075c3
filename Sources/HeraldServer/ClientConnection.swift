import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The request context of the server: Hummingbird's core context and the connection the request
/// came on, so that a long poll can end when its client goes away and an answer can close it.
struct HeraldRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let connection: ClientConnection

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.connection = ClientConnection(channel: source.channel)
    }
}

/// The client's end of one HTTP connection.
struct ClientConnection: Sendable {
    let channel: any Channel

    /// The connection of the request being answered; long polls watch it.
    @TaskLocal static var current: ClientConnection?

    /// Whether the client has gone: it closed its side (a FIN, as `curl -m` or a killed process
    /// sends) or the connection closed.
    func isGone() async -> Bool {
        guard self.channel.isActive else { return true }
        guard let watcher = try? await self.channel.pipeline.handler(type: ClientDepartureHandler.self).get() else { return false }
        return watcher.hasDeparted
    }

    /// Runs `operation`, cancelling it as soon as the client goes away: a long poll then ends
    /// without taking anything for nobody.
    func cancellingWhenGone<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await operation() }
        if let watcher = try? await self.channel.pipeline.handler(type: ClientDepartureHandler.self).get() {
            watcher.onDeparture { task.cancel() }
        } else {
            self.channel.closeFuture.whenComplete { _ in task.cancel() }
        }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Closes the connection `after` a short grace, so that the answer just written reaches the
    /// client, instead of reading what is left of a request that was refused (a body too large,
    /// a request without a valid key), which could be unbounded.
    func close(after grace: TimeAmount) {
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
    }
}

/// Notices when a client half-closes or drops its connection. Hummingbird allows remote
/// half-closure, so a client that leaves during a long poll only sends an `inputClosed` event,
/// which nothing else reports while the handler runs.
final class ClientDepartureHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private struct State {
        var hasDeparted = false
        var callbacks: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    var hasDeparted: Bool { self.state.withLock { $0.hasDeparted } }

    /// Calls `callback` once the client has gone (at once if it already has).
    func onDeparture(_ callback: @escaping @Sendable () -> Void) {
        let now = self.state.withLock { state in
            if !state.hasDeparted { state.callbacks.append(callback) }
            return state.hasDeparted
        }
        if now { callback() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { self.depart() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.depart()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.depart()
    }

    private func depart() {
        let callbacks = self.state.withLock { state in
            defer { state.callbacks = [] }
            state.hasDeparted = true
            return state.callbacks
        }
        for callback in callbacks { callback() }
    }
}
