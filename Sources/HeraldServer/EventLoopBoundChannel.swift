import HummingbirdCore
import Logging
import NIOCore

/// Runs each connection's request handling on the event loop that owns the connection.
///
/// Hummingbird handles a connection in a task of Swift's global executor: every request then
/// crosses threads twice more than it must (the event loop hands the request to a pool thread,
/// which hands the response back), and on a small machine each crossing is a thread wake-up that
/// costs tens of microseconds. With the connection's event loop as the task's executor
/// preference, a request is read, handled and answered on one thread; work that must leave it
/// (the store's writer, fsync) comes back to it directly. Handlers never block (they await), so
/// the event loop stays free for the other connections it serves.
struct EventLoopBoundChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        self.base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await self.base.handle(value: value, logger: logger)
        }
    }
}

/// A task executor that runs jobs on one NIO event loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 whose connections are handled on their own event loops (``EventLoopBoundChannel``).
    static func eventLoopBoundHTTP1(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            EventLoopBoundChannel(base: HTTP1Channel(responder: responder, configuration: configuration))
        }
    }
}
