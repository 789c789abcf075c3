import NIOCore
import NIOHTTPTypes

/// Bounds how long one request may take to arrive, from its head to its end: past
/// `timeout`, the request's body stream fails with ``RequestReadTimedOut``, so the handler
/// reading it answers 408 and the connection closes, and a client that sends a body a byte at a
/// time cannot hold a connection (or a drain of a refused body) for ever.
///
/// A timer on the connection's event loop rather than a task racing the read: a task group and
/// a sleeping task per request cost more thread hops than the whole request otherwise needs.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head:
            self.deadline?.cancel()
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            self.deadline = context.eventLoop.scheduleTask(in: self.timeout) {
                let (handler, context) = loopBound.value
                handler.deadline = nil
                context.fireErrorCaught(RequestReadTimedOut())
            }
        case .end:
            self.deadline?.cancel()
            self.deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
    }
}

/// A request did not arrive whole within the server's read timeout.
struct RequestReadTimedOut: Error {}
