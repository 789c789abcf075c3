import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import ServiceLifecycle
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
    func isGone() -> Bool {
        guard self.channel.isActive else { return true }
        return ClientDepartureHandler.watching(self.channel)?.hasDeparted ?? false
    }

    /// Runs `operation`, cancelling it as soon as the client goes away (a long poll then ends
    /// without taking anything for nobody) or the server begins a graceful shutdown.
    func cancellingWhenGone<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        // On the connection's event loop, as the request is (``EventLoopBoundChannel``): an
        // unstructured task would otherwise run on the global executor, two more thread wake-ups.
        let task = Task(executorPreference: EventLoopTaskExecutor(self.channel.eventLoop)) { try await operation() }
        let watcher = ClientDepartureHandler.watching(self.channel)
        let registration = watcher?.onDeparture { task.cancel() }
        if watcher == nil { self.channel.closeFuture.whenComplete { _ in task.cancel() } }
        defer { if let watcher, let registration { watcher.forget(registration) } }
        return try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await task.value
            } onGracefulShutdown: {
                task.cancel()
            }
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
///
/// Each connection's handler is found by its channel in a table (``watching(_:)``), not through
/// the channel pipeline, whose look-ups hop to the connection's event loop and back.
final class ClientDepartureHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private struct State {
        var hasDeparted = false
        var callbacks: [Int: @Sendable () -> Void] = [:]
        var nextRegistration = 0
    }
    private let state = Mutex(State())
    private static let byChannel = Mutex<[ObjectIdentifier: ClientDepartureHandler]>([:])

    /// The handler watching `channel`, while it is in the channel's pipeline.
    static func watching(_ channel: any Channel) -> ClientDepartureHandler? {
        Self.byChannel.withLock { $0[ObjectIdentifier(channel)] }
    }

    var hasDeparted: Bool { self.state.withLock { $0.hasDeparted } }

    /// Calls `callback` once the client has gone (at once if it already has); the registration
    /// (`nil` when it was called at once) lets ``forget(_:)`` drop it.
    func onDeparture(_ callback: @escaping @Sendable () -> Void) -> Int? {
        let registration = self.state.withLock { state -> Int? in
            guard !state.hasDeparted else { return nil }
            state.nextRegistration += 1
            state.callbacks[state.nextRegistration] = callback
            return state.nextRegistration
        }
        if registration == nil { callback() }
        return registration
    }

    /// Drops a callback that is no longer wanted: a keep-alive connection makes many long polls.
    func forget(_ registration: Int) {
        self.state.withLock { _ = $0.callbacks.removeValue(forKey: registration) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = ObjectIdentifier(context.channel)
        Self.byChannel.withLock { $0[channel] = self }
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
        let channel = ObjectIdentifier(context.channel)
        Self.byChannel.withLock { table in
            if table[channel] === self { table[channel] = nil }
        }
    }

    private func depart() {
        let callbacks = self.state.withLock { state in
            defer { state.callbacks = [:] }
            state.hasDeparted = true
            return Array(state.callbacks.values)
        }
        for callback in callbacks { callback() }
    }
}
