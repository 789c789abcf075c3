import Foundation
public import HeraldCQRS
import HeraldCore

/// The registration process manager (saga) of one order, correlated by order id and kept as the
/// versioned document `process.registration/<orderId>`.
///
/// Order placed → reserve seats and schedule the reservation timeout → seats reserved → mark the
/// order reserved (the registrant may pay) → payment completed → confirm the order, sell the
/// seats and cancel the timeout. No seats → expire the order (sold out). The timeout fires first
/// → release the seats and expire the order; a payment that still arrives is refunded, a
/// reservation that still arrives is released.
public struct RegistrationProcessManager: ProcessManagerState, Hashable {
    /// Where the process stands.
    public enum Status: String, Codable, Sendable, Hashable {
        /// Not started.
        case new
        /// Waiting for the seat reservation.
        case awaitingReservation
        /// Waiting for the payment.
        case awaitingPayment
        /// Paid; the order is confirmed.
        case confirmed
        /// The order expired.
        case expired
    }

    /// The process type's name: documents live in `process.registration`.
    public static let processName = "registration"

    /// The order (the correlation id).
    public var orderId: String
    /// Where the process stands.
    public var status = Status.new
    /// The conference.
    public var conferenceId = ""
    /// The seats ordered.
    public var seats = 0
    /// The price, in cents, from `OrderTotalsCalculated`.
    public var total = 0
    /// Why the order expired, if it did.
    public var expiry: ExpiryReason?
    /// The highest version of the order's stream seen, to check that events arrive in order.
    public var lastOrderVersion: Int64 = 0
    /// Order events that arrived out of stream order (the sequence gate should keep this at 0).
    public var outOfOrderEvents = 0
    /// Whether a payment arrived after the order expired and was refunded.
    public var refunded = false
    /// Whether a reservation arrived after the order expired and was released.
    public var releasedLateReservation = false

    /// A new process.
    public init(id: String) {
        self.orderId = id
    }
}

extension ConferenceSystem {
    /// Notes the order stream's version of an event forwarded through the sequence gate.
    private static func track(_ process: inout ProcessInstance<RegistrationProcessManager>, _ context: HandlerContext) {
        guard let version = context.message.message.senderSequence else { return }
        if version != process.state.lastOrderVersion + 1 { process.state.outOfOrderEvents += 1 }
        process.state.lastOrderVersion = max(process.state.lastOrderVersion, version)
    }

    /// The process manager's handlers for the queue `registration`: the order's events, in
    /// stream order through the sequence gate, and the reservation timeout.
    func registrationHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(OrderPlaced.self, name: "registration.OrderPlaced", in: &handlers) { event, context in
            var process = try await context.loadProcess(RegistrationProcessManager.self, id: event.orderId)
            Self.track(&process, context)
            guard process.state.status == .new else { return try context.save(process) }
            process.state.status = .awaitingReservation
            process.state.conferenceId = event.conferenceId
            process.state.seats = event.seats
            try context.send(
                MakeSeatReservation(conferenceId: event.conferenceId, orderId: event.orderId, seats: event.seats), to: ConferenceEntities.seats
            )
            try context.scheduleTimeout(
                ExpireRegistrationProcess(orderId: event.orderId), to: ConferenceEntities.registration,
                at: context.clock.now().addingTimeInterval(self.settings.reservationTimeout.timeInterval)
            )
            try context.save(process)
        }
        self.on(OrderTotalsCalculated.self, name: "registration.OrderTotalsCalculated", in: &handlers) { event, context in
            var process = try await context.loadProcess(RegistrationProcessManager.self, id: event.orderId)
            Self.track(&process, context)
            process.state.total = event.total
            try context.save(process)
        }
        self.on(ExpireRegistrationProcess.self, name: "registration.ExpireRegistrationProcess", in: &handlers) { command, context in
            var process = try await context.loadProcess(RegistrationProcessManager.self, id: command.orderId)
            guard process.state.status == .awaitingReservation || process.state.status == .awaitingPayment else { return }
            process.state.status = .expired
            process.state.expiry = .timeout
            try context.send(
                CancelSeatReservation(conferenceId: process.state.conferenceId, orderId: command.orderId), to: ConferenceEntities.seats
            )
            try context.send(ExpireOrder(orderId: command.orderId, reason: .timeout), to: ConferenceEntities.orders)
            try context.save(process)
        }
        return handlers
    }

    /// The process manager's handler of `SeatsReserved` (subscription `seat-events/registration-reserved`).
    func seatsReservedHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(SeatsReserved.self, name: "registration.SeatsReserved", in: &handlers) { event, context in
            var process = try await context.loadProcess(RegistrationProcessManager.self, id: event.orderId)
            switch process.state.status {
            case .awaitingReservation:
                process.state.status = .awaitingPayment
                try context.send(MarkSeatsAsReserved(orderId: event.orderId, seats: event.seats), to: ConferenceEntities.orders)
            case .expired where !process.state.releasedLateReservation:
                // The timeout won the race: give the seats back.
                process.state.releasedLateReservation = true
                try context.send(
                    CancelSeatReservation(conferenceId: event.conferenceId, orderId: event.orderId, late: true), to: ConferenceEntities.seats
                )
            default:
                return
            }
            try context.save(process)
        }
        return handlers
    }

    /// The process manager's handler of `SeatReservationRejected` (subscription `seat-events/registration-rejected`).
    func seatsRejectedHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(SeatReservationRejected.self, name: "registration.SeatReservationRejected", in: &handlers) { event, context in
            var process = try await context.loadProcess(RegistrationProcessManager.self, id: event.orderId)
            guard process.state.status == .awaitingReservation else { return }
            process.state.status = .expired
            process.state.expiry = .soldOut
            context.cancelTimeout(ExpireRegistrationProcess.commandId(orderId: event.orderId), in: ConferenceEntities.registration)
            try context.send(ExpireOrder(orderId: event.orderId, reason: .soldOut), to: ConferenceEntities.orders)
            try context.save(process)
        }
        return handlers
    }

    /// The process manager's handler of `PaymentCompleted` (subscription `payment-events/registration`).
    func paymentCompletedHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(PaymentCompleted.self, name: "registration.PaymentCompleted", in: &handlers) { event, context in
            var process = try await context.loadProcess(RegistrationProcessManager.self, id: event.orderId)
            switch process.state.status {
            case .awaitingPayment:
                process.state.status = .confirmed
                context.cancelTimeout(ExpireRegistrationProcess.commandId(orderId: event.orderId), in: ConferenceEntities.registration)
                try context.send(ConfirmOrder(orderId: event.orderId), to: ConferenceEntities.orders)
                try context.send(
                    CommitSeatReservation(conferenceId: process.state.conferenceId, orderId: event.orderId), to: ConferenceEntities.seats
                )
            case .expired where !process.state.refunded:
                // Paid too late: the order is gone, so the money goes back.
                process.state.refunded = true
                try context.send(RefundPayment(orderId: event.orderId), to: ConferenceEntities.payments)
            default:
                return
            }
            try context.save(process)
        }
        return handlers
    }
}
