public import HeraldCQRS

// The commands and events of the conference registration, after the CQRS Journey. Every type
// travels under a stable `conference.*` name, and every command id is derived from the order it
// concerns, so a re-sent or re-handled command carries the same id and is absorbed.

// MARK: Commands to the Order aggregate (queue `orders`)

/// A registrant orders seats: places the order.
public struct RegisterToConference: Command {
    /// The stable type name.
    public static let typeName = "conference.RegisterToConference"
    /// The command id: `register-<orderId>`.
    public var commandId: String
    /// The order.
    public var orderId: String
    /// The conference.
    public var conferenceId: String
    /// How many seats.
    public var seats: Int

    /// Creates the command with its id derived from the order.
    public init(orderId: String, conferenceId: String, seats: Int) {
        self.commandId = "register-\(orderId)"
        self.orderId = orderId
        self.conferenceId = conferenceId
        self.seats = seats
    }
}

/// The process manager tells the order that its seats are reserved.
public struct MarkSeatsAsReserved: Command {
    /// The stable type name.
    public static let typeName = "conference.MarkSeatsAsReserved"
    /// The command id: `mark-<orderId>`.
    public var commandId: String
    /// The order.
    public var orderId: String
    /// The seats reserved.
    public var seats: Int

    /// Creates the command with its id derived from the order.
    public init(orderId: String, seats: Int) {
        self.commandId = "mark-\(orderId)"
        self.orderId = orderId
        self.seats = seats
    }
}

/// The process manager confirms a paid order.
public struct ConfirmOrder: Command {
    /// The stable type name.
    public static let typeName = "conference.ConfirmOrder"
    /// The command id: `confirm-<orderId>`.
    public var commandId: String
    /// The order.
    public var orderId: String

    /// Creates the command with its id derived from the order.
    public init(orderId: String) {
        self.commandId = "confirm-\(orderId)"
        self.orderId = orderId
    }
}

/// Why an order expired.
public enum ExpiryReason: String, Codable, Sendable, Hashable, CaseIterable {
    /// Not enough seats were left.
    case soldOut
    /// The reservation timed out before the payment arrived.
    case timeout
}

/// The process manager expires an order.
public struct ExpireOrder: Command {
    /// The stable type name.
    public static let typeName = "conference.ExpireOrder"
    /// The command id: `expire-<orderId>`.
    public var commandId: String
    /// The order.
    public var orderId: String
    /// Why.
    public var reason: ExpiryReason

    /// Creates the command with its id derived from the order.
    public init(orderId: String, reason: ExpiryReason) {
        self.commandId = "expire-\(orderId)"
        self.orderId = orderId
        self.reason = reason
    }
}

// MARK: Commands to the SeatsAvailability aggregate (queue `seats`)

/// Reserve seats for an order, all or none.
public struct MakeSeatReservation: Command {
    /// The stable type name.
    public static let typeName = "conference.MakeSeatReservation"
    /// The command id: `reserve-<orderId>`.
    public var commandId: String
    /// The conference.
    public var conferenceId: String
    /// The order.
    public var orderId: String
    /// How many seats.
    public var seats: Int

    /// Creates the command with its id derived from the order.
    public init(conferenceId: String, orderId: String, seats: Int) {
        self.commandId = "reserve-\(orderId)"
        self.conferenceId = conferenceId
        self.orderId = orderId
        self.seats = seats
    }
}

/// Turn an order's reservation into sold seats.
public struct CommitSeatReservation: Command {
    /// The stable type name.
    public static let typeName = "conference.CommitSeatReservation"
    /// The command id: `commit-<orderId>`.
    public var commandId: String
    /// The conference.
    public var conferenceId: String
    /// The order.
    public var orderId: String

    /// Creates the command with its id derived from the order.
    public init(conferenceId: String, orderId: String) {
        self.commandId = "commit-\(orderId)"
        self.conferenceId = conferenceId
        self.orderId = orderId
    }
}

/// Release an order's reservation.
public struct CancelSeatReservation: Command {
    /// The stable type name.
    public static let typeName = "conference.CancelSeatReservation"
    /// The command id: `cancel-<orderId>`, or `cancel-late-<orderId>` for a reservation that
    /// arrived after its order had expired.
    public var commandId: String
    /// The conference.
    public var conferenceId: String
    /// The order.
    public var orderId: String

    /// Creates the command with its id derived from the order.
    public init(conferenceId: String, orderId: String, late: Bool = false) {
        self.commandId = late ? "cancel-late-\(orderId)" : "cancel-\(orderId)"
        self.conferenceId = conferenceId
        self.orderId = orderId
    }
}

// MARK: Commands to the Payment aggregate (queue `payments`)

/// The registrant pays for an order.
public struct MakePayment: Command {
    /// The stable type name.
    public static let typeName = "conference.MakePayment"
    /// The command id: `pay-<orderId>`; a second click sends the same id.
    public var commandId: String
    /// The order.
    public var orderId: String
    /// The amount, in cents.
    public var amount: Int

    /// Creates the command with its id derived from the order.
    public init(orderId: String, amount: Int) {
        self.commandId = "pay-\(orderId)"
        self.orderId = orderId
        self.amount = amount
    }
}

/// Give back the payment of an order that expired before it was paid.
public struct RefundPayment: Command {
    /// The stable type name.
    public static let typeName = "conference.RefundPayment"
    /// The command id: `refund-<orderId>`.
    public var commandId: String
    /// The order.
    public var orderId: String

    /// Creates the command with its id derived from the order.
    public init(orderId: String) {
        self.commandId = "refund-\(orderId)"
        self.orderId = orderId
    }
}

// MARK: The process manager's timeout (queue `registration`)

/// The reservation timeout: scheduled when the order is placed, cancelled when it is paid.
public struct ExpireRegistrationProcess: Command {
    /// The stable type name.
    public static let typeName = "conference.ExpireRegistrationProcess"
    /// The command id: `timeout-<orderId>`, which cancels it.
    public var commandId: String
    /// The order.
    public var orderId: String

    /// Creates the command with its id derived from the order.
    public init(orderId: String) {
        self.commandId = Self.commandId(orderId: orderId)
        self.orderId = orderId
    }

    /// The id of the timeout of `orderId`.
    public static func commandId(orderId: String) -> String { "timeout-\(orderId)" }
}

// MARK: Order events (stream `order-<id>`, topic `order-events`)

/// An order was placed.
public struct OrderPlaced: Event {
    /// The stable type name.
    public static let typeName = "conference.OrderPlaced"
    /// The order.
    public var orderId: String
    /// The conference.
    public var conferenceId: String
    /// The seats ordered.
    public var seats: Int

    /// Creates the event.
    public init(orderId: String, conferenceId: String, seats: Int) {
        self.orderId = orderId
        self.conferenceId = conferenceId
        self.seats = seats
    }
}

/// An order's price was calculated.
public struct OrderTotalsCalculated: Event {
    /// The stable type name.
    public static let typeName = "conference.OrderTotalsCalculated"
    /// The order.
    public var orderId: String
    /// The price, in cents.
    public var total: Int

    /// Creates the event.
    public init(orderId: String, total: Int) {
        self.orderId = orderId
        self.total = total
    }
}

/// An order's seats are reserved: the registrant may pay.
public struct OrderReservationCompleted: Event {
    /// The stable type name.
    public static let typeName = "conference.OrderReservationCompleted"
    /// The order.
    public var orderId: String
    /// The seats reserved.
    public var seats: Int
    /// The price, in cents.
    public var total: Int

    /// Creates the event.
    public init(orderId: String, seats: Int, total: Int) {
        self.orderId = orderId
        self.seats = seats
        self.total = total
    }
}

/// An order was paid and confirmed.
public struct OrderConfirmed: Event {
    /// The stable type name.
    public static let typeName = "conference.OrderConfirmed"
    /// The order.
    public var orderId: String

    /// Creates the event.
    public init(orderId: String) {
        self.orderId = orderId
    }
}

/// An order expired.
public struct OrderExpired: Event {
    /// The stable type name.
    public static let typeName = "conference.OrderExpired"
    /// The order.
    public var orderId: String
    /// Why.
    public var reason: ExpiryReason

    /// Creates the event.
    public init(orderId: String, reason: ExpiryReason) {
        self.orderId = orderId
        self.reason = reason
    }
}

// MARK: Seat events (stream `seats-<conference>`, topic `seat-events`)

/// The conference's capacity grew.
public struct SeatsAdded: Event {
    /// The stable type name.
    public static let typeName = "conference.SeatsAdded"
    /// The conference.
    public var conferenceId: String
    /// The seats added.
    public var seats: Int

    /// Creates the event.
    public init(conferenceId: String, seats: Int) {
        self.conferenceId = conferenceId
        self.seats = seats
    }
}

/// Seats were reserved for an order.
public struct SeatsReserved: Event {
    /// The stable type name.
    public static let typeName = "conference.SeatsReserved"
    /// The conference.
    public var conferenceId: String
    /// The order.
    public var orderId: String
    /// The seats reserved.
    public var seats: Int

    /// Creates the event.
    public init(conferenceId: String, orderId: String, seats: Int) {
        self.conferenceId = conferenceId
        self.orderId = orderId
        self.seats = seats
    }
}

/// An order asked for more seats than were left.
public struct SeatReservationRejected: Event {
    /// The stable type name.
    public static let typeName = "conference.SeatReservationRejected"
    /// The conference.
    public var conferenceId: String
    /// The order.
    public var orderId: String
    /// The seats asked for.
    public var requested: Int
    /// The seats that were left.
    public var available: Int

    /// Creates the event.
    public init(conferenceId: String, orderId: String, requested: Int, available: Int) {
        self.conferenceId = conferenceId
        self.orderId = orderId
        self.requested = requested
        self.available = available
    }
}

/// An order's reserved seats were sold.
public struct SeatsReservationCommitted: Event {
    /// The stable type name.
    public static let typeName = "conference.SeatsReservationCommitted"
    /// The conference.
    public var conferenceId: String
    /// The order.
    public var orderId: String
    /// The seats sold.
    public var seats: Int

    /// Creates the event.
    public init(conferenceId: String, orderId: String, seats: Int) {
        self.conferenceId = conferenceId
        self.orderId = orderId
        self.seats = seats
    }
}

/// An order's reserved seats were released.
public struct SeatsReservationCancelled: Event {
    /// The stable type name.
    public static let typeName = "conference.SeatsReservationCancelled"
    /// The conference.
    public var conferenceId: String
    /// The order.
    public var orderId: String
    /// The seats released.
    public var seats: Int

    /// Creates the event.
    public init(conferenceId: String, orderId: String, seats: Int) {
        self.conferenceId = conferenceId
        self.orderId = orderId
        self.seats = seats
    }
}

// MARK: Payment events (stream `payment-<orderId>`, topic `payment-events`)

/// An order was paid.
public struct PaymentCompleted: Event {
    /// The stable type name.
    public static let typeName = "conference.PaymentCompleted"
    /// The order.
    public var orderId: String
    /// The amount, in cents.
    public var amount: Int

    /// Creates the event.
    public init(orderId: String, amount: Int) {
        self.orderId = orderId
        self.amount = amount
    }
}

/// An order's payment was given back.
public struct PaymentRefunded: Event {
    /// The stable type name.
    public static let typeName = "conference.PaymentRefunded"
    /// The order.
    public var orderId: String
    /// The amount, in cents.
    public var amount: Int

    /// Creates the event.
    public init(orderId: String, amount: Int) {
        self.orderId = orderId
        self.amount = amount
    }
}
