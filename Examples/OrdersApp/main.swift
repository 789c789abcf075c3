import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

let environment = ProcessInfo.processInfo.environment
let path = environment["ORDERS_DATABASE"] ?? "orders.sqlite"
let port = Int(environment["PORT"] ?? "") ?? 8080
let logger = Logger(label: "orders")

// The queue, created by a broker that runs just for that (a broker serves only while it runs).
try await SQLiteBroker.withBroker(path: path) { broker in
    do {
        try await broker.createQueue("orders", options: EntityOptions(duplicateDetectionWindow: .seconds(600)))
    } catch let error as HeraldError where error.code == .entityAlreadyExists {}
}

let broker = try SQLiteBroker(path: path)

// The handler records the order in its stream, in the commit that completes the command.
var handlers = MessageHandlers()
handlers.on(PlaceOrder.self) { command, context in
    try await Task.sleep(for: .milliseconds(50))  // stands for the real work: a payment, say
    let placed = OrderPlaced(orderId: command.commandId, sku: command.sku, quantity: command.quantity)
    try context.append([placed], to: "order-\(command.commandId)", expectedVersion: .noStream, publishTo: nil)
}
let processor = MessageProcessor(
    broker: broker, source: .queue("orders"), handlers: handlers, configuration: .init(name: "orders"), logger: logger)

// POST /orders sends the command and answers 202 once it is on disk; GET /orders/{id} reads the
// order's stream (404 until the command is handled).
let router = Router()
let commands = CommandBus(broker: broker)
router.post("orders") { request, context -> HTTPResponse.Status in
    let order = try await request.decode(as: NewOrder.self, context: context)
    try await commands.send(PlaceOrder(commandId: order.orderId, sku: order.sku, quantity: order.quantity), to: .queue("orders"))
    return .accepted
}
router.get("orders/:id") { _, context -> OrderPlaced in
    let id = try context.parameters.require("id")
    guard let event = try await broker.readStream("order-\(id)", from: 1, maxCount: 1).first else { throw HTTPError(.notFound) }
    return try MessageCoding.decode(OrderPlaced.self, from: event.event.data)
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)

// One ServiceGroup starts the three in this order and, on SIGTERM or SIGINT, stops them in the
// reverse one, each once the one after it has finished: the HTTP server answers the requests in
// flight and takes no more; the processor finishes the messages in hand and gives back the ones it
// received but had not started; the broker commits what is pending and closes the file.
let group = ServiceGroup(
    configuration: .init(services: [broker, processor, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
try await group.run()
logger.info("stopped gracefully, orders handled: \(processor.statistics.handled)")
