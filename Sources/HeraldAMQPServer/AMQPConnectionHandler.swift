import Foundation
import HeraldAMQP
import HeraldCore
import Logging
import NIOCore

/// One AMQP connection: cuts the bytes into protocol headers and frames, runs them through
/// ``AMQPConnectionStateMachine`` and carries out its actions; closes idle connections and keeps
/// the peer's idle timer fed with empty frames.
///
/// Link frames go to ``ServiceBusLinks``; what they ask of the broker runs in tasks whose
/// outcomes come back to the connection's event loop. Without a backend every `attach` is refused.
final class AMQPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: AMQPConnectionStateMachine
    private var links = ServiceBusLinks()
    /// The broker work running for this connection, cancelled when it closes.
    private var tasks: [UInt64: Task<Void, Never>] = [:]
    private var nextTaskId: UInt64 = 0
    /// The task of the receive running for each receiver link.
    private var receiveTasks: [ServiceBusLinks.LinkKey: UInt64] = [:]
    private let backend: AMQPBackend?
    private var decoder: AMQPFrameDecoder
    private var received: ByteBuffer?
    private var heartbeat: RepeatedTask?
    private var closeTimer: Scheduled<Void>?
    private var handshakeTimer: Scheduled<Void>?
    private let handshakeTimeout: TimeAmount
    private let logger: Logger
    /// How long the server waits for the peer's `close` after sending its own.
    private let closeGrace: TimeAmount

    init(
        configuration: AMQPConnectionStateMachine.Configuration, backend: AMQPBackend?, logger: Logger, handshakeTimeout: TimeAmount,
        closeGrace: TimeAmount = .seconds(2)
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.backend = backend
        self.links = ServiceBusLinks(verifiesTokens: backend?.verifiesTokens ?? true)
        self.machine = AMQPConnectionStateMachine(configuration: configuration)
        self.decoder = AMQPFrameDecoder(maxFrameSize: configuration.maxFrameSize)
        self.logger = logger
        self.closeGrace = closeGrace
    }

    func channelActive(context: ChannelHandlerContext) {
        // A client that never finishes its handshake (header, SASL, open) is let go.
        let channel = context.channel
        self.handshakeTimer = context.eventLoop.scheduleTask(in: self.handshakeTimeout) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if self.received == nil {
            self.received = bytes
        } else {
            self.received!.writeBuffer(&bytes)
        }
        self.process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            self.logger.debug("closing an idle AMQP connection")
            self.perform(
                self.machine.failed(AMQPError(condition: AMQPCondition.resourceLimitExceeded, description: "no frame within the idle time-out")),
                context: context)
            context.flush()
            return
        }
        if event is ChannelShouldQuiesceEvent {
            self.perform(self.machine.shutDown(), context: context)
            context.flush()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if let backend = self.backend {
            self.perform(self.links.writabilityChanged(context.channel.isWritable, now: Date()), backend: backend, context: context)
            context.flush()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.heartbeat?.cancel()
        self.closeTimer?.cancel()
        self.handshakeTimer?.cancel()
        for task in self.tasks.values { task.cancel() }
        self.tasks = [:]
        self.receiveTasks = [:]
        // Sessions the client held go back to the entity at once, not when their locks expire.
        if let broker = self.backend?.broker, !self.links.heldSessions.isEmpty {
            let sessions = self.links.heldSessions
            Task { for session in sessions { try? await broker.releaseSession(session) } }
        }
        context.fireChannelInactive()
    }

    /// Reads every whole header and frame received so far.
    private func process(context: ChannelHandlerContext) {
        guard var buffer = self.received else { return }
        self.received = nil
        defer {
            if buffer.readableBytes > 0 {
                buffer.discardReadBytes()
                self.received = buffer
            }
        }
        while context.channel.isActive {
            if self.machine.expectsProtocolHeader {
                let header: AMQPProtocolHeader?
                do {
                    header = try AMQPProtocolHeader.read(from: &buffer)
                } catch {
                    // Not AMQP: the header the server speaks, then the socket closes (part 2, 2.2).
                    self.perform([.sendHeader(.sasl), .closeSocket], context: context)
                    return
                }
                guard let header else { return }
                self.perform(self.machine.receivedHeader(header), context: context)
                continue
            }
            let frame: AMQPFrame?
            do {
                frame = try self.decoder.decode(&buffer)
            } catch {
                self.perform(self.machine.failed(Self.error(for: error)), context: context)
                buffer.clear()
                return
            }
            guard let frame else { return }
            self.handle(frame, context: context)
        }
    }

    private func handle(_ frame: AMQPFrame, context: ChannelHandlerContext) {
        guard let body = frame.body else { return }  // an empty frame only keeps the connection alive
        switch frame.kind {
        case .sasl:
            do {
                self.perform(self.machine.receivedSASL(try AMQPSASLFrame(body)), context: context)
            } catch {
                self.perform([.closeSocket], context: context)
            }
        case .amqp:
            do {
                let performative = try AMQPPerformative(body)
                self.perform(self.machine.received(performative, on: frame.channel, payload: Array(frame.payload.readableBytesView)), context: context)
            } catch {
                self.perform(self.machine.failed(AMQPError(condition: AMQPCondition.decodeError, description: error.description)), context: context)
            }
        }
    }

    private func perform(_ actions: [AMQPConnectionStateMachine.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .sendHeader(let header):
                context.write(self.wrapOutboundOut(ByteBuffer(bytes: header.bytes)), promise: nil)
            case .sendFrame(let frame):
                self.send(frame, context: context)
                if case .close = frame.body.flatMap({ try? AMQPPerformative($0) }) { self.closeAfterGrace(context: context) }
                if case .open = frame.body.flatMap({ try? AMQPPerformative($0) }) {
                    self.links.peerMaxFrameSize = self.machine.peerMaxFrameSize
                    self.handshakeTimer?.cancel()
                    self.startHeartbeat(context: context)
                }
            case .link(let channel, let performative, let payload):
                guard let backend = self.backend else {
                    self.refuse(performative, channel: channel, context: context)
                    continue
                }
                let actions = self.links.handle(performative, channel: channel, payload: payload, now: Date(), credential: backend.credential)
                self.perform(actions, backend: backend, context: context)
            case .sessionBegun(let channel, let peer):
                self.links.begun(channel: channel, peer: peer)
            case .sessionEnded(let channel):
                if let backend = self.backend { self.perform(self.links.ended(channel: channel), backend: backend, context: context) }
            case .authenticated(let mechanism, let user):
                self.logger.debug("AMQP client authenticated", metadata: ["herald.sasl": "\(mechanism)", "herald.user": "\(user ?? "")"])
            case .closeSocket:
                // Close once what was written before has gone out.
                let channel = context.channel
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
                return
            }
        }
    }

    private func send(_ frame: AMQPFrame, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        do {
            try buffer.writeAMQPFrame(frame)
            context.write(self.wrapOutboundOut(buffer), promise: nil)
        } catch {
            self.logger.error("cannot encode an AMQP frame", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Carries out what the links ask: frames to send, and broker work in tasks whose outcomes
    /// come back to this event loop and through the links.
    private func perform(_ actions: [ServiceBusLinks.Action], backend: AMQPBackend, context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let frame):
                self.send(frame, context: context)
            case .store(let messages, let entity, let channel, let handle, let deliveryId):
                self.run(context: context, backend: backend) { broker in
                    await ServiceBusBroker.send(messages, to: entity, broker: broker).map { _ in () }
                } then: { links, outcome, _ in
                    links.stored(channel: channel, handle: handle, deliveryId: deliveryId, outcome)
                }
            case .receive(let request):
                let key = ServiceBusLinks.LinkKey(channel: request.channel, handle: request.handle)
                self.receiveTasks[key] = self.run(context: context, backend: backend) { broker in
                    await ServiceBusBroker.receive(request, broker: broker)
                } then: { links, outcome, now in
                    links.received(request, outcome, now: now)
                } orphaned: { outcome, broker in
                    // Nobody takes these any more: unlocked at once rather than when their locks expire.
                    guard case .success(let messages) = outcome else { return }
                    Task { for token in messages.compactMap(\.lockToken) { _ = try? await broker.release(token) } }
                }
            case .cancelReceive(let channel, let handle):
                if let id = self.receiveTasks.removeValue(forKey: ServiceBusLinks.LinkKey(channel: channel, handle: handle)) {
                    self.tasks.removeValue(forKey: id)?.cancel()
                }
            case .settle(let settlement):
                self.run(context: context, backend: backend) { broker in
                    await ServiceBusBroker.settle(settlement, broker: broker)
                } then: { links, outcome, now in
                    links.settled(settlement, outcome, now: now)
                }
            case .manage(let call):
                self.run(context: context, backend: backend) { broker in
                    await ServiceBusManagement.perform(call, broker: broker)
                } then: { links, outcome, now in
                    links.answered(call, outcome, now: now)
                }
            case .acceptSession(let request):
                self.run(context: context, backend: backend) { broker in
                    await ServiceBusBroker.acceptSession(request, broker: broker)
                } then: { links, outcome, now in
                    links.sessionAccepted(request, outcome, now: now)
                }
            case .releaseSession(let session):
                let broker = backend.broker
                Task { try? await broker.releaseSession(session) }
            case .fail(let error):
                self.perform(self.machine.failed(error), context: context)
            }
        }
    }

    /// Runs `work` against the broker in a task; its result comes back to the event loop, where
    /// `then` turns it into the links' next actions. Tasks of a closed connection, and cancelled
    /// ones, are cancelled; what they bring goes to `orphaned`. Returns the task's id.
    @discardableResult
    private func run<Outcome: Sendable>(
        context: ChannelHandlerContext, backend: AMQPBackend, _ work: @escaping @Sendable (any MessageBroker) async -> Outcome,
        then: @escaping (inout ServiceBusLinks, Outcome, Date) -> [ServiceBusLinks.Action],
        orphaned: @escaping @Sendable (Outcome, any MessageBroker) -> Void = { _, _ in }
    ) -> UInt64 {
        let eventLoop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: eventLoop)
        let continuation = NIOLoopBound(then, eventLoop: eventLoop)
        let id = self.nextTaskId
        self.nextTaskId &+= 1
        let broker = backend.broker
        self.tasks[id] = Task {
            let outcome = await work(broker)
            eventLoop.execute {
                let handler = handler.value
                guard handler.tasks.removeValue(forKey: id) != nil else { return orphaned(outcome, broker) }
                handler.receiveTasks = handler.receiveTasks.filter { $0.value != id }
                let actions = continuation.value(&handler.links, outcome, Date())
                handler.perform(actions, backend: backend, context: boundContext.value)
                boundContext.value.flush()
            }
        }
        return id
    }

    /// Without a backend, links are not served: an `attach` gets the reply of a refused link; other link frames
    /// of links that were never attached are ignored.
    private func refuse(_ performative: AMQPPerformative, channel: UInt16, context: ChannelHandlerContext) {
        guard case .attach(let attach) = performative else { return }
        let error = AMQPError(condition: AMQPCondition.notImplemented, description: "Herald's AMQP listener serves links only with a broker")
        for case .send(let frame) in ServiceBusLinks.refuse(attach, channel: channel, error) { self.send(frame, context: context) }
    }

    /// After sending `close`, the server waits a moment for the peer's, then closes anyway.
    private func closeAfterGrace(context: ChannelHandlerContext) {
        guard self.closeTimer == nil else { return }
        let channel = context.channel
        self.closeTimer = context.eventLoop.scheduleTask(in: self.closeGrace) { channel.close(promise: nil) }
    }

    /// Sends an empty frame at half the peer's idle time-out, so that it does not close the connection.
    private func startHeartbeat(context: ChannelHandlerContext) {
        guard self.heartbeat == nil, let timeout = self.machine.peerIdleTimeout else { return }
        let interval = TimeAmount.milliseconds(Int64(max(timeout / 2, 100)))
        let channel = context.channel
        self.heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            var empty = channel.allocator.buffer(capacity: 8)
            _ = try? empty.writeAMQPFrame(AMQPFrame(channel: 0, body: nil))
            channel.writeAndFlush(empty, promise: nil)
        }
    }

    /// The `close` error for bytes that are not frames.
    private static func error(for error: AMQPFrameError) -> AMQPError {
        switch error {
        case .frameTooLarge(let size, let maximum):
            AMQPError(condition: AMQPCondition.framingError, description: "a frame of \(size) bytes is larger than max-frame-size \(maximum)")
        case .malformedBody(let decoding):
            AMQPError(condition: AMQPCondition.decodeError, description: "a frame body is not a valid AMQP value: \(decoding)")
        default:
            AMQPError(condition: AMQPCondition.framingError, description: "malformed frame: \(error)")
        }
    }
}
