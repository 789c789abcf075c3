import HeraldCore
import Logging
public import ServiceLifecycle

extension ProjectionRunner: Service {
    /// Keeps the projection caught up until graceful shutdown or cancellation: applies the new
    /// events a batch per transaction, and once caught up looks again every ``pollInterval``.
    ///
    /// Graceful shutdown (of the `ServiceGroup` it runs in) lets the batch being applied commit,
    /// with its checkpoint, and returns; a wait for new events ends at once. A failure (an
    /// ``Projection/apply(_:to:)`` that throws, a conflict with another runner of the same
    /// projection) is logged and tried again after ``pollInterval``: the checkpoint moves only with
    /// the batch it covers, so nothing is applied twice or skipped.
    ///
    /// - Throws: ``/HeraldCore/HeraldError/Code/storeFailed`` or ``/HeraldCore/HeraldError/Code/storeClosed``
    ///   from the store, which no retry can cure.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let applied: Int
            do {
                applied = try await self.applyNextBatch(batchSize: 50)
            } catch let error as HeraldError where error.code == .storeFailed || error.code == .storeClosed {
                throw error
            } catch {
                self.logger.warning("projection failed; trying again", metadata: ["error": "\(error)"])
                applied = 0
            }
            if applied == 0 {
                // Caught up (or failed): wait, but not past the start of a graceful shutdown.
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.pollInterval) }
            }
        }
    }
}
