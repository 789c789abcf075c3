public import HeraldCQRS

/// The payment of one order, event-sourced on the stream `payment-<orderId>`: paid at most once,
/// refunded at most once.
public struct Payment: Aggregate {
    /// The stream category: `payment-<orderId>`.
    public static let category = "payment"
    /// The events of the stream.
    public static let eventTypes = EventTypes([PaymentCompleted.self, PaymentRefunded.self])

    /// The amount paid, in cents; 0 before the payment.
    public private(set) var paid = 0
    /// Whether the payment was given back.
    public private(set) var refunded = false

    /// No payment yet.
    public init(id: String) {}

    /// Folds one event into the state.
    public mutating func apply(_ event: any Event) {
        switch event {
        case let completed as PaymentCompleted: self.paid = completed.amount
        case is PaymentRefunded: self.refunded = true
        default: break
        }
    }
}

extension ConferenceSystem {
    /// The handlers of the queue `payments`: the Payment aggregate, behind a payment gateway
    /// that, under chaos, sometimes stalls past the queue's short lock.
    func paymentHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(MakePayment.self, name: "payment.MakePayment", in: &handlers) { command, context in
            try await self.chaos.maybeStall(context, broker: self.chaosBroker, lockDuration: self.settings.paymentsLockDuration)
            var payment = try await context.load(Payment.self, id: command.orderId)
            guard payment.state.paid == 0 else { return }
            payment.raise(PaymentCompleted(orderId: command.orderId, amount: command.amount))
            try context.save(payment, publishTo: ConferenceEntities.paymentEvents)
        }
        self.on(RefundPayment.self, name: "payment.RefundPayment", in: &handlers) { command, context in
            var payment = try await context.load(Payment.self, id: command.orderId)
            guard payment.state.paid > 0, !payment.state.refunded else { return }
            payment.raise(PaymentRefunded(orderId: command.orderId, amount: payment.state.paid))
            try context.save(payment, publishTo: ConferenceEntities.paymentEvents)
        }
        return handlers
    }
}
