package import CoreMetrics
import Synchronization

/// The counters a store keeps per destination, named after the OpenTelemetry messaging metrics,
/// in the metrics factory of its configuration (the one `MetricsSystem.bootstrap` installed by
/// default). Herald bootstraps no backend.
///
/// Each counter is made once per destination and kept, so counting a message costs a look-up and
/// an increment. With no backend bootstrapped (swift-metrics' no-op factory) nothing is made and
/// nothing is counted.
///
/// | Metric | Counts |
/// | --- | --- |
/// | `messaging.client.sent.messages` | messages enqueued by a send (`messaging.operation.name` `send`) or a transaction (`commit`), duplicates excluded |
/// | `messaging.herald.duplicate.messages` | sends acknowledged as duplicates and not enqueued |
/// | `messaging.client.consumed.messages` | messages delivered by receives (`messaging.operation.name` `receive`) |
/// | `messaging.herald.completed.messages` | messages completed |
/// | `messaging.herald.abandoned.messages` | messages abandoned |
/// | `messaging.herald.deferred.messages` | messages deferred |
/// | `messaging.herald.dead_lettered.messages` | messages dead-lettered by a receiver (the broker's own dead-lettering shows in the dead-letter queue's depth) |
/// | `messaging.herald.resubmitted.messages` | dead letters resubmitted |
///
/// Every one carries `messaging.system` (`herald`), `messaging.destination.name` and, for a
/// subscription, `messaging.destination.subscription.name`.
package final class BrokerMetrics: Sendable {
    /// What a counter counts.
    package enum Count: UInt8, Sendable, CaseIterable {
        case sent, committed, duplicate, consumed, completed, abandoned, deferred, deadLettered, resubmitted

        /// The metric's label.
        var label: String {
            switch self {
            case .sent, .committed: "messaging.client.sent.messages"
            case .duplicate: "messaging.herald.duplicate.messages"
            case .consumed: "messaging.client.consumed.messages"
            case .completed: "messaging.herald.completed.messages"
            case .abandoned: "messaging.herald.abandoned.messages"
            case .deferred: "messaging.herald.deferred.messages"
            case .deadLettered: "messaging.herald.dead_lettered.messages"
            case .resubmitted: "messaging.herald.resubmitted.messages"
            }
        }

        /// `messaging.operation.name`, for the metrics OpenTelemetry gives one.
        var operationName: String? {
            switch self {
            case .sent: "send"
            case .committed: "commit"
            case .consumed: "receive"
            default: nil
            }
        }
    }

    private struct Key: Hashable {
        var count: Count
        var entity: EntityPath
    }

    /// The factory; `nil` when it is swift-metrics' no-op one.
    private let factory: (any MetricsFactory)?
    private let counters = Mutex<[Key: Counter]>([:])

    /// Counters in `factory` (`nil`: the one `MetricsSystem.bootstrap` installed).
    package init(factory: (any MetricsFactory)? = nil) {
        let factory = factory ?? MetricsSystem.factory
        self.factory = factory is NOOPMetricsHandler ? nil : factory
    }

    /// Whether anything is counted (a backend is there).
    package var isEnabled: Bool { self.factory != nil }

    /// Adds `amount` to the counter `count` of `entity`.
    package func add(_ amount: Int, _ count: Count, _ entity: EntityPath) {
        guard let factory = self.factory, amount > 0 else { return }
        let key = Key(count: count, entity: entity)
        let counter = self.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            var dimensions = [("messaging.system", MessagingTracing.system)] + entity.destinationAttributes
            if let operation = count.operationName { dimensions.append((MessagingAttribute.operationName, operation)) }
            let counter = Counter(label: count.label, dimensions: dimensions, factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment(by: amount)
    }

    /// Counts the receipts of a send (or of a transaction's sends, `committed`) to `entity`.
    package func sent(_ receipts: [SendReceipt], to entity: EntityPath, committed: Bool = false) {
        guard self.isEnabled else { return }
        let duplicates = receipts.count { $0.isDuplicate }
        self.add(receipts.count - duplicates, committed ? .committed : .sent, entity)
        self.add(duplicates, .duplicate, entity)
    }

    /// Counts the messages a receive delivered.
    package func consumed(_ messages: [ReceivedMessage], from entity: EntityPath) {
        self.add(messages.count, .consumed, entity)
    }

    /// Counts a settlement of a message of `entity` that took effect.
    package func settled(_ outcome: SettlementOutcome, _ count: Count, _ entity: EntityPath) {
        if outcome == .settled { self.add(1, count, entity) }
    }

    /// Counts what a committed transaction did: its sends, the events it published, the
    /// messages it completed, deferred and dead-lettered.
    package func committed(_ transaction: BrokerTransaction, _ receipt: TransactionReceipt) {
        guard self.isEnabled else { return }
        for (send, sendReceipt) in zip(transaction.sends, receipt.sends) { self.sent([sendReceipt], to: send.entity, committed: true) }
        for append in transaction.appends {
            if let topic = append.publishTo { self.add(append.events.count, .committed, topic) }
        }
        for token in transaction.completions { self.add(1, .completed, token.entity) }
        for settlement in transaction.settlements {
            self.add(1, settlement.deadLetterReason == nil ? .deferred : .deadLettered, settlement.token.entity)
        }
    }
}
