import Foundation
import HTTPTypes
import HeraldCore
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import HeraldServer

@Suite("Requests are handled on their connection's event loop")
struct EventLoopBoundChannelTests {
    @Test func aHandlerCallsTheBrokerFromTheConnectionsEventLoop() async throws {
        let calledOnEventLoop = Mutex<[Bool]>([])
        let broker = FailingBroker(error: HeraldError(.storeFailed, "counts fails")) {
            calledOnEventLoop.withLock { $0.append(MultiThreadedEventLoopGroup.currentEventLoop != nil) }
        }
        try await broker.serving { connection in
            for _ in 0..<3 {
                _ = try await connection.request(.post, "/v1/messages/counts", json: ["entity": ["queue": "orders"]])
            }
        }
        #expect(calledOnEventLoop.withLock { $0 } == [true, true, true])
    }

    @Test func theExecutorRunsATaskOnItsEventLoopAcrossSuspensions() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let placements = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            var placements = [loop.inEventLoop]
            // Resumed from a thread of its own, as the store's writer resumes a request.
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume() }
            }
            placements.append(loop.inEventLoop)
            try? await Task.sleep(for: .milliseconds(1))
            placements.append(loop.inEventLoop)
            return placements
        }
        #expect(placements == [true, true, true])
        try await group.shutdownGracefully()
    }
}
