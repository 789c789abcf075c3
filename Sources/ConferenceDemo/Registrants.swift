import HeraldCQRS
import HeraldCore

extension ConferenceSystem {
    /// The registrants, simulated: each pays once its seats are reserved
    /// (subscription `order-events/registrants`), except the few who abandon their checkout and
    /// are expired by the reservation timeout. Under chaos some click "pay" again later, after
    /// the duplicate-detection window.
    func registrantHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(OrderReservationCompleted.self, name: "registrants.OrderReservationCompleted", in: &handlers) { event, context in
            guard !self.settings.abandons(orderId: event.orderId) else { return }
            let payment = MakePayment(orderId: event.orderId, amount: event.total)
            try context.send(payment, to: ConferenceEntities.payments)
            if self.chaos.resendsLate(payment.commandId) {
                let message = try MessageCoding.message(for: payment, correlationId: context.correlationId, causationId: context.causationId)
                self.chaos.scheduleLateDuplicate(message, to: ConferenceEntities.payments, now: context.clock.now())
            }
        }
        return handlers
    }
}
