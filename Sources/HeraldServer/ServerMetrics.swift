import HeraldCore
import Metrics
import Prometheus
import Synchronization

/// The server's metrics, in a Prometheus registry of its own (no global `MetricsSystem.bootstrap`,
/// so several servers can live in one process, as in tests).
///
/// Counters per entity (the `entity` label is the Azure Service Bus path, e.g. `orders` or
/// `events/subscriptions/audit`): `herald_messages_sent_total`, `herald_messages_duplicate_total`,
/// `herald_messages_delivered_total`, `herald_messages_completed_total`,
/// `herald_messages_abandoned_total`, `herald_messages_dead_lettered_total` (explicit dead-letter
/// calls), `herald_lock_lost_total` (settlements and session calls that found their lock lost).
/// Gauges `herald_entity_messages{entity, state}` (state: `active`, `locked`, `scheduled`,
/// `deferred`, `dead_letter`), refreshed from the broker's counts at a scrape, at most every 5 seconds.
/// Histogram `herald_http_request_duration_seconds{operation, status}` with the route's
/// `operationId` and the status class (`2xx`, `4xx`, `5xx`).
final class ServerMetrics: Sendable {
    /// The registry `GET /metrics` renders.
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    /// The entity gauges set at the last scrape, by entity label, to retire those of deleted entities.
    private let entityGauges = Mutex<[String: [CoreMetrics.Gauge]]>([:])
    // Made once per key and kept: making one looks it up in the registry and checks its names,
    // a cost every request would pay otherwise.
    private let counters = Mutex<[CounterKey: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[TimerKey: CoreMetrics.Timer]>([:])

    private struct CounterKey: Hashable {
        var label: String
        var entity: EntityPath
    }

    private struct TimerKey: Hashable {
        var operation: String
        var statusClass: Int
    }
    /// When the entity gauges were last refreshed (or a refresh began).
    private let lastGaugeRefresh = Mutex<ContinuousClock.Instant?>(nil)
    /// Scrapes closer together than this share one refresh: counting thousands of entities at
    /// every scrape of every scraper would load the store.
    static let gaugeRefreshInterval: Duration = .seconds(5)

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
    }

    // MARK: Messages

    func sent(_ receipts: [SendReceipt], to entity: EntityPath) {
        let duplicates = receipts.count { $0.isDuplicate }
        self.count("herald_messages_sent_total", entity, by: receipts.count - duplicates)
        self.count("herald_messages_duplicate_total", entity, by: duplicates)
    }

    func delivered(_ count: Int, from entity: EntityPath) { self.count("herald_messages_delivered_total", entity, by: count) }
    func completed(_ entity: EntityPath) { self.count("herald_messages_completed_total", entity, by: 1) }
    func abandoned(_ entity: EntityPath) { self.count("herald_messages_abandoned_total", entity, by: 1) }
    func deadLettered(_ entity: EntityPath) { self.count("herald_messages_dead_lettered_total", entity, by: 1) }
    func lockLost(_ entity: EntityPath) { self.count("herald_lock_lost_total", entity, by: 1) }

    private func count(_ label: String, _ entity: EntityPath, by amount: Int) {
        guard amount > 0 else { return }
        let key = CounterKey(label: label, entity: entity)
        let counter = self.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(label: key.label, dimensions: [("entity", entity.description)], factory: self.factory)
            counters[key] = counter
            return counter
        }
        counter.increment(by: amount)
    }

    // MARK: Requests

    func request(operation: String, status: Int, duration: Duration) {
        let key = TimerKey(operation: operation, statusClass: status / 100)
        let timer = self.timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(
                label: "herald_http_request_duration_seconds", dimensions: [("operation", operation), ("status", "\(key.statusClass)xx")],
                factory: self.factory
            )
            timers[key] = timer
            return timer
        }
        timer.recordNanoseconds(duration.nanoseconds)
    }

    // MARK: Entity gauges

    /// Sets the gauges of every queue and subscription (and of their dead-letter queues' sizes)
    /// from `broker`, and retires those of entities that no longer exist.
    func refreshEntityGauges(_ broker: any MessageBroker) async throws {
        let now = ContinuousClock.now
        let due = self.lastGaugeRefresh.withLock { last in
            if let last, now - last < Self.gaugeRefreshInterval { return false }
            last = now
            return true
        }
        guard due else { return }
        var fresh: [String: [CoreMetrics.Gauge]] = [:]
        for (path, counts) in try await EntityListing.countedEntities(broker) {
            let label = path.description
            let values: [(String, Int)] = [
                ("active", counts.active), ("locked", counts.locked), ("scheduled", counts.scheduled),
                ("deferred", counts.deferred), ("dead_letter", counts.deadLettered),
            ]
            fresh[label] = values.map { state, value in
                let gauge = CoreMetrics.Gauge(label: "herald_entity_messages", dimensions: [("entity", label), ("state", state)], factory: self.factory)
                gauge.record(value)
                return gauge
            }
        }
        let retired: [CoreMetrics.Gauge] = self.entityGauges.withLock { gauges in
            defer { gauges = fresh }
            return gauges.filter { fresh[$0.key] == nil }.flatMap { $0.value }
        }
        for gauge in retired { gauge.destroy() }
    }

    /// The registry in the Prometheus text format.
    func render() -> [UInt8] {
        var buffer: [UInt8] = []
        self.registry.emit(into: &buffer)
        return buffer
    }
}
