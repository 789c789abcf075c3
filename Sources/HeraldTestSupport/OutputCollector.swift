import Foundation
import Synchronization

/// Collects what a child process writes to a pipe, with blocking reads on a thread of its own
/// until end of file.
///
/// Not `FileHandle.readabilityHandler`: on Linux its dispatch source can outlive the descriptor it
/// watches, and libdispatch then crashes the whole process in `_dispatch_event_loop_drain` (seen
/// in CI with several tests starting processes at once; swiftlang/swift-subprocess#47 reports the
/// same crash).
final class OutputCollector: Sendable {
    private let collected = Mutex("")
    /// Signalled once, at end of file.
    private let ended = DispatchSemaphore(value: 0)

    /// Starts reading `handle` until end of file.
    init(reading handle: FileHandle) {
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty {
                    self.ended.signal()
                    return
                }
                self.collected.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
        thread.name = "herald.output-collector"
        thread.start()
    }

    /// Waits until end of file, at most `limit` (a grandchild may still hold the pipe open);
    /// called once, by the reaper of the process that writes it.
    func waitForEnd(atMost limit: DispatchTimeInterval) {
        _ = self.ended.wait(timeout: .now() + limit)
    }

    /// Everything read so far.
    var text: String { self.collected.withLock { $0 } }
}
