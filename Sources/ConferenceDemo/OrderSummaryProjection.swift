public import HeraldCQRS
public import HeraldCore
import Synchronization

/// The read model of one order, as the registrant's "my orders" page shows it.
public struct OrderSummary: Codable, Sendable, Hashable {
    /// Where the order stands, as shown.
    public enum Status: String, Codable, Sendable, Hashable {
        /// Placed, waiting for seats.
        case placed
        /// Seats reserved, waiting for the payment.
        case reserved
        /// Paid and confirmed.
        case confirmed
        /// Expired.
        case expired
    }

    /// The order.
    public var orderId: String
    /// The seats ordered.
    public var seats: Int
    /// The price, in cents.
    public var total: Int
    /// Where it stands.
    public var status: Status
    /// Why it expired.
    public var expiry: ExpiryReason?
    /// How many `OrderConfirmed` were applied: 1 for a confirmed order, never more.
    public var confirmations: Int
    /// How many `OrderExpired` were applied: 1 for an expired order, never more.
    public var expirations: Int

    /// Creates a summary.
    public init(
        orderId: String, seats: Int, total: Int = 0, status: Status = .placed, expiry: ExpiryReason? = nil, confirmations: Int = 0,
        expirations: Int = 0
    ) {
        self.orderId = orderId
        self.seats = seats
        self.total = total
        self.status = status
        self.expiry = expiry
        self.confirmations = confirmations
        self.expirations = expirations
    }
}

/// Projects the order events of the event store into ``OrderSummary`` documents (collection
/// `order-summaries`), run by a ``HeraldCQRS/ProjectionRunner``: each batch of events and the
/// checkpoint commit together, so every event is applied exactly once.
public final class OrderSummaryProjection: Projection {
    /// The collection of the summaries.
    public static let collection = "order-summaries"

    /// Counts of finished orders, for progress display (approximate until the run settles).
    public struct Progress: Sendable, Hashable {
        /// Orders placed.
        public var placed = 0
        /// Orders confirmed.
        public var confirmed = 0
        /// Orders expired.
        public var expired = 0
    }

    private struct Cache {
        var summaries: [String: (version: Int64, summary: OrderSummary)] = [:]
        var progress = Progress()
    }

    /// The checkpoint's name.
    public let name = "order-summaries"
    private let cache = Mutex(Cache())
    private let store: any TransactionalBroker

    /// A projection writing to `store`.
    public init(store: any TransactionalBroker) {
        self.store = store
    }

    /// Orders placed, confirmed and expired so far, as projected.
    public var progress: Progress { self.cache.withLock { $0.progress } }

    /// Forgets what it cached and recounts its progress from the store; call it when a catch-up
    /// failed, since the batch it was applying did not commit.
    ///
    /// - Throws: The store's ``HeraldCore/HeraldError``, or a decoding error.
    public func reset() async throws {
        self.cache.withLock { $0 = Cache() }
        var progress = Progress()
        for document in try await self.store.documents(in: Self.collection).values {
            let summary = try MessageCoding.decode(OrderSummary.self, from: document.data)
            progress.placed += 1
            if summary.confirmations > 0 { progress.confirmed += 1 }
            if summary.expirations > 0 { progress.expired += 1 }
        }
        self.cache.withLock { $0.progress = progress }
    }

    /// Adds the change `event` makes to its order's summary to `transaction`.
    public func apply(_ event: RecordedEvent, to transaction: inout BrokerTransaction) async throws {
        guard event.stream.hasPrefix("\(Order.category)-"),
            let decoded = try Order.eventTypes.decode(typeName: event.event.type, data: event.event.data)
        else { return }
        let orderId = String(event.stream.dropFirst(Order.category.count + 1))
        var current = self.cache.withLock { $0.summaries[orderId] }
        if current == nil, let document = try await self.store.document(orderId, in: Self.collection) {
            current = (document.version, try MessageCoding.decode(OrderSummary.self, from: document.data))
        }
        var summary = current?.summary ?? OrderSummary(orderId: orderId, seats: 0)
        var progress = Progress()
        switch decoded {
        case let placed as OrderPlaced:
            summary.seats = placed.seats
            progress.placed = 1
        case let totals as OrderTotalsCalculated:
            summary.total = totals.total
        case is OrderReservationCompleted:
            summary.status = .reserved
        case is OrderConfirmed:
            summary.status = .confirmed
            summary.confirmations += 1
            progress.confirmed = 1
        case let expired as OrderExpired:
            summary.status = .expired
            summary.expiry = expired.reason
            summary.expirations += 1
            progress.expired = 1
        default:
            return
        }
        let version = current?.version ?? 0
        transaction.write(try MessageCoding.encode(summary), collection: Self.collection, key: orderId, expectedVersion: version)
        self.cache.withLock { cache in
            cache.summaries[orderId] = (version + 1, summary)
            cache.progress.placed += progress.placed
            cache.progress.confirmed += progress.confirmed
            cache.progress.expired += progress.expired
        }
    }
}
