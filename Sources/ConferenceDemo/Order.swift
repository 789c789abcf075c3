public import HeraldCQRS
import HeraldCore

/// An order, event-sourced on the stream `order-<id>`.
///
/// It is placed, its seats are reserved, then it is confirmed (paid) or expired (no seats left,
/// or the reservation timed out). It ends confirmed or expired, never both, and only once.
public struct Order: Aggregate {
    /// Where an order stands.
    public enum Status: String, Codable, Sendable, Hashable {
        /// Not placed yet.
        case new
        /// Placed, waiting for its seats.
        case placed
        /// Its seats are reserved, waiting for the payment.
        case reserved
        /// Paid and confirmed.
        case confirmed
        /// Expired.
        case expired
    }

    /// The stream category: `order-<id>`.
    public static let category = "order"
    /// The events of an order's stream.
    public static let eventTypes = EventTypes([
        OrderPlaced.self, OrderTotalsCalculated.self, OrderReservationCompleted.self, OrderConfirmed.self, OrderExpired.self,
    ])

    /// Where the order stands.
    public private(set) var status = Status.new
    /// Its conference.
    public private(set) var conferenceId = ""
    /// The seats ordered.
    public private(set) var seats = 0
    /// Its price, in cents.
    public private(set) var total = 0

    /// A new order.
    public init(id: String) {}

    /// Folds one event into the state.
    public mutating func apply(_ event: any Event) {
        switch event {
        case let placed as OrderPlaced:
            self.status = .placed
            self.conferenceId = placed.conferenceId
            self.seats = placed.seats
        case let totals as OrderTotalsCalculated:
            self.total = totals.total
        case is OrderReservationCompleted:
            self.status = .reserved
        case is OrderConfirmed:
            self.status = .confirmed
        case is OrderExpired:
            self.status = .expired
        default:
            break
        }
    }
}

extension ConferenceSystem {
    /// The handlers of the queue `orders`: the Order aggregate.
    func orderHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(RegisterToConference.self, name: "order.RegisterToConference", in: &handlers) { command, context in
            var order = try await context.load(Order.self, id: command.orderId)
            guard order.state.status == .new else { return }
            order.raise(OrderPlaced(orderId: command.orderId, conferenceId: command.conferenceId, seats: command.seats))
            order.raise(OrderTotalsCalculated(orderId: command.orderId, total: command.seats * self.settings.seatPrice))
            try context.save(order, publishTo: ConferenceEntities.orderEvents)
            try self.forwardToProcessManager(order, context: context)
        }
        self.on(MarkSeatsAsReserved.self, name: "order.MarkSeatsAsReserved", in: &handlers) { command, context in
            var order = try await context.load(Order.self, id: command.orderId)
            guard order.state.status == .placed else { return }
            order.raise(OrderReservationCompleted(orderId: command.orderId, seats: command.seats, total: order.state.total))
            try context.save(order, publishTo: ConferenceEntities.orderEvents)
        }
        self.on(ConfirmOrder.self, name: "order.ConfirmOrder", in: &handlers) { command, context in
            var order = try await context.load(Order.self, id: command.orderId)
            guard order.state.status == .placed || order.state.status == .reserved else { return }
            order.raise(OrderConfirmed(orderId: command.orderId))
            try context.save(order, publishTo: ConferenceEntities.orderEvents)
        }
        self.on(ExpireOrder.self, name: "order.ExpireOrder", in: &handlers) { command, context in
            var order = try await context.load(Order.self, id: command.orderId)
            guard order.state.status == .placed || order.state.status == .reserved else { return }
            order.raise(OrderExpired(orderId: command.orderId, reason: command.reason))
            try context.save(order, publishTo: ConferenceEntities.orderEvents)
        }
        return handlers
    }

    /// Sends copies of the order's new events to the process manager's queue, stamped with
    /// `senderId` = stream and `senderSequence` = version, so its sequence gate hands them over in
    /// stream order. Under chaos, some pairs are sent swapped: the gate must hold the second
    /// until the first has been handled.
    private func forwardToProcessManager(_ order: AggregateRoot<Order>, context: HandlerContext) throws {
        let stream = Order.stream(order.id)
        var messages: [Message] = []
        for (offset, event) in order.pending.enumerated() {
            let version = order.version + Int64(offset) + 1
            var message = try MessageCoding.message(
                for: event, messageId: RecordedEvent.messageId(stream: stream, version: version),
                correlationId: context.correlationId, causationId: context.causationId
            )
            message.senderId = stream
            message.senderSequence = version
            messages.append(message)
        }
        if self.chaos.swapsEventPair(orderId: order.id) { messages.reverse() }
        context.withTransaction { transaction in
            for message in messages { transaction.send(message, to: ConferenceEntities.registration) }
        }
    }
}
