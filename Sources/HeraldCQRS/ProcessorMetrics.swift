import CoreMetrics
import Foundation
import HeraldCore
import Synchronization

/// A ``MessageProcessor``'s metrics, made once for its source in the factory of its
/// configuration, and nothing at all when that factory is swift-metrics' no-op one (no backend).
///
/// Every metric carries `messaging.system` (`herald`), the source's `messaging.destination.name`
/// (and `messaging.destination.subscription.name` for a subscription) and the processor's name as
/// `messaging.consumer.group.name`:
///
/// | Metric | Kind | What |
/// | --- | --- | --- |
/// | `messaging.process.duration` | timer | how long handlers ran; `error.type` names the error of a failed run |
/// | `messaging.herald.process.handled` | counter | messages whose handling committed |
/// | `messaging.herald.process.retries` | counter | failed attempts retried (abandoned with a delay) |
/// | `messaging.herald.process.dead_lettered` | counter | messages the processor dead-lettered, by `messaging.herald.dead_letter.reason` |
/// | `messaging.herald.process.duplicates` | counter | deliveries found already handled |
/// | `messaging.herald.process.lock_lost` | counter | handlings whose lock was lost before they committed |
/// | `messaging.herald.process.held` | counter | messages held back by the sequence gate |
/// | `messaging.herald.queue.depth` | gauge | the source's messages by `messaging.herald.message.state` (`active`, `locked`, `scheduled`, `deferred`, `dead_lettered`) |
/// | `messaging.herald.queue.oldest_message.age` | gauge | seconds since the oldest message waiting in the source was enqueued (0 when none waits) |
final class ProcessorMetrics: Sendable {
    private struct Instruments: Sendable {
        let factory: any MetricsFactory
        let dimensions: [(String, String)]
        let duration: CoreMetrics.Timer
        let handled: Counter
        let retries: Counter
        let duplicates: Counter
        let lockLost: Counter
        let held: Counter
        let depth: [(state: String, gauge: Gauge)]
        let oldestAge: Gauge
    }

    private let instruments: Instruments?
    /// Timers of failed runs, by error type; counters of dead letters, by reason.
    private let failedDurations = Mutex<[String: CoreMetrics.Timer]>([:])
    private let deadLettered = Mutex<[String: Counter]>([:])

    init(source: EntityPath, name: String, factory: (any MetricsFactory)?) {
        let factory = factory ?? MetricsSystem.factory
        guard !(factory is NOOPMetricsHandler) else {
            self.instruments = nil
            return
        }
        let dimensions = [("messaging.system", "herald")] + source.destinationAttributes + [("messaging.consumer.group.name", name)]
        func counter(_ label: String) -> Counter { Counter(label: label, dimensions: dimensions, factory: factory) }
        self.instruments = Instruments(
            factory: factory, dimensions: dimensions,
            duration: CoreMetrics.Timer(
                label: "messaging.process.duration", dimensions: dimensions + [("messaging.operation.name", "process")], factory: factory),
            handled: counter("messaging.herald.process.handled"),
            retries: counter("messaging.herald.process.retries"),
            duplicates: counter("messaging.herald.process.duplicates"),
            lockLost: counter("messaging.herald.process.lock_lost"),
            held: counter("messaging.herald.process.held"),
            depth: ["active", "locked", "scheduled", "deferred", "dead_lettered"].map { state in
                (state, Gauge(label: "messaging.herald.queue.depth", dimensions: dimensions + [("messaging.herald.message.state", state)], factory: factory))
            },
            oldestAge: Gauge(label: "messaging.herald.queue.oldest_message.age", dimensions: dimensions, factory: factory)
        )
    }

    /// Whether anything is recorded.
    var isEnabled: Bool { self.instruments != nil }

    /// Records a run of a handler that took `duration`, failed with `error` if it did.
    func handlerRan(for duration: Duration, error: (any Error)?) {
        guard let instruments else { return }
        guard let error else {
            instruments.duration.recordNanoseconds(duration.nanoseconds)
            return
        }
        let type = String(describing: Swift.type(of: error))
        let timer = self.failedDurations.withLock { timers in
            if let timer = timers[type] { return timer }
            let timer = CoreMetrics.Timer(
                label: "messaging.process.duration",
                dimensions: instruments.dimensions + [("messaging.operation.name", "process"), ("error.type", type)], factory: instruments.factory
            )
            timers[type] = timer
            return timer
        }
        timer.recordNanoseconds(duration.nanoseconds)
    }

    /// Records what changed between two readings of the processor's statistics.
    func changed(from before: MessageProcessor.Statistics, to after: MessageProcessor.Statistics) {
        guard let instruments else { return }
        func add(_ counter: Counter, _ old: Int, _ new: Int) { if new > old { counter.increment(by: new - old) } }
        add(instruments.handled, before.handled, after.handled)
        add(instruments.retries, before.retries, after.retries)
        add(instruments.duplicates, before.duplicatesSuppressed, after.duplicatesSuppressed)
        add(instruments.lockLost, before.lockLosses, after.lockLosses)
        add(instruments.held, before.held, after.held)
        guard before.deadLettered != after.deadLettered else { return }
        for (reason, count) in after.deadLettered where count > before.deadLettered[reason, default: 0] {
            let counter = self.deadLettered.withLock { counters in
                if let counter = counters[reason] { return counter }
                let counter = Counter(
                    label: "messaging.herald.process.dead_lettered",
                    dimensions: instruments.dimensions + [("messaging.herald.dead_letter.reason", reason)], factory: instruments.factory
                )
                counters[reason] = counter
                return counter
            }
            counter.increment(by: count - before.deadLettered[reason, default: 0])
        }
    }

    /// Sets the depth gauges from `counts` and the age gauge to `oldestAge` seconds.
    func queue(_ counts: EntityCounts, oldestAge: Double) {
        guard let instruments else { return }
        for (state, gauge) in instruments.depth {
            switch state {
            case "active": gauge.record(counts.active)
            case "locked": gauge.record(counts.locked)
            case "scheduled": gauge.record(counts.scheduled)
            case "deferred": gauge.record(counts.deferred)
            default: gauge.record(counts.deadLettered)
            }
        }
        instruments.oldestAge.record(oldestAge)
    }
}
