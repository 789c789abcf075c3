import Foundation
import HeraldCQRS
import HeraldCore

struct MakeSeatReservation: Command {
    static let typeName = "conference.MakeSeatReservation"
    var commandId: String
    var orderId: String
    var seats: Int
}

struct ExpireOrder: Command {
    static let typeName = "conference.ExpireOrder"
    var commandId: String
    var orderId: String
}

// A process manager keeps its state as a versioned document, correlated by order id.
struct Registration: ProcessManagerState {
    static let processName = "registration"
    var awaitingPayment = false
    var expired = false
    init(id: String) {}
}

extension MessageHandlers {
    mutating func onRegistrationProcess() {
        on(OrderPlaced.self) { event, context in
            var process = try await context.loadProcess(Registration.self, id: event.orderId)
            guard !process.exists else { return }
            process.state.awaitingPayment = true
            try context.send(
                MakeSeatReservation(commandId: "reserve-\(event.orderId)", orderId: event.orderId, seats: event.seats),
                to: .queue("seats"))
            // A timeout is a scheduled command, cancelled in the commit that makes it unnecessary:
            // when the payment arrives, context.cancelTimeout("expire-\(orderId)", in: .queue("registrations")).
            try context.scheduleTimeout(
                ExpireOrder(commandId: "expire-\(event.orderId)", orderId: event.orderId),
                to: .queue("registrations"), at: context.clock.now().addingTimeInterval(900))
            try context.save(process)
            print("registration \(event.orderId): asked for \(event.seats) seats, expires in 15 minutes unless paid")
        }
        on(ExpireOrder.self) { command, context in
            var process = try await context.loadProcess(Registration.self, id: command.orderId)
            guard process.state.awaitingPayment else { return }
            process.state.awaitingPayment = false
            process.state.expired = true
            try context.save(process)
            print("registration \(command.orderId): expired")
        }
    }
}
