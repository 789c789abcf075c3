import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite

let folder = FileManager.default.temporaryDirectory.appendingPathComponent("registrations-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

try await SQLiteBroker.withBroker(path: folder.appendingPathComponent("herald.sqlite").path) { broker in
    // Commands go to queues; events to a topic, whose subscriptions each get a copy.
    try await broker.createQueue("registrations")
    try await broker.createQueue("seats")
    try await broker.createTopic("orders")
    try await broker.createSubscription("registration-process", topic: "orders")

    // Handlers first: a processor dispatches to the handlers it was built with.
    var handlers = MessageHandlers()
    handlers.on(RegisterToConference.self) { command, context in
        var order = try await context.load(Order.self, id: command.orderId)
        guard !order.state.placed else { return }
        order.raise(OrderPlaced(orderId: command.orderId, seats: command.seats))
        // Appended at the version loaded (a concurrent writer gets concurrencyConflict and the
        // message is retried) and published to the topic in the same commit: no outbox relay to lose.
        try context.save(order, publishTo: .topic("orders"))
        print("order \(command.orderId): placed for \(command.seats) seats")
    }
    handlers.onRegistrationProcess()

    // One processor per source: the commands' queue, and the subscription that receives the events.
    let commands = MessageProcessor(
        broker: broker, source: .queue("registrations"), handlers: handlers,
        configuration: .init(name: "registrations", maxConcurrency: 8, retry: RetryPolicy(maxAttempts: 5)))
    let events = MessageProcessor(
        broker: broker, source: .subscription("registration-process", of: "orders"), handlers: handlers,
        configuration: .init(name: "registration-process"))

    try await CommandBus(broker: broker).send(
        RegisterToConference(commandId: UUID().uuidString, orderId: "o-1", seats: 2), to: .queue("registrations"))

    // A processor is a Service: in a server, add it to your ServiceGroup, which drains it on
    // graceful shutdown. Here both run until the event has been handled, then stop() drains them.
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await commands.run() }
        group.addTask { try await events.run() }
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while events.statistics.handled == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        commands.stop()
        events.stop()
        try await group.waitForAll()
    }

    let seats = try await broker.counts(of: .queue("seats"))
    let timeouts = try await broker.counts(of: .queue("registrations"))
    print("handled: \(commands.statistics.handled) command, \(events.statistics.handled) event")
    print("waiting: \(seats.active) seat reservation for the seats service, \(timeouts.scheduled) scheduled timeout")
}
try FileManager.default.removeItem(at: folder)
