import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite
import Synchronization
import Testing

struct OrderPlaced: Event {
    static let typeName = "test.OrderPlaced"
    var orderId: String
}

struct OrderShipped: Event {
    static let typeName = "test.OrderShipped"
    var orderId: String
}

struct ShipOrder: Command {
    static let typeName = "test.ShipOrder"
    var commandId: String
    var orderId: String
}

struct TestOrder: Aggregate {
    static let category = "order"
    static let eventTypes = EventTypes([OrderPlaced.self, OrderShipped.self])
    var placed = false
    var shipped = false
    init(id: String) {}
    mutating func apply(_ event: any Event) {
        switch event {
        case is OrderPlaced: self.placed = true
        case is OrderShipped: self.shipped = true
        default: break
        }
    }
}

struct ShipmentTimeout: Command {
    static let typeName = "test.ShipmentTimeout"
    var commandId: String
    var orderId: String
}

struct Shipping: ProcessManagerState {
    static let processName = "shipping"
    var waiting = false
    init(id: String) {}
}

@Suite struct EventStoreTests {
    @Test func aConcurrencyConflictSurfacesAsTheTypedError() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let events = EventStore(broker: store.broker, publishTo: nil)
        try await events.append([OrderPlaced(orderId: "1")], to: "order-1", expectedVersion: .noStream)
        await #expect {
            try await events.append([OrderPlaced(orderId: "1")], to: "order-1", expectedVersion: .noStream)
        } throws: { ($0 as? HeraldError)?.code == .concurrencyConflict }
        await #expect {
            try await events.append([OrderShipped(orderId: "1")], to: "order-1", expectedVersion: .exactly(0))
        } throws: { ($0 as? HeraldError)?.code == .concurrencyConflict }
        #expect(try await events.append([OrderShipped(orderId: "1")], to: "order-1", expectedVersion: .exactly(1)) == 2)
        #expect(try await events.read(stream: "order-1").map(\.event.type) == [OrderPlaced.typeName, OrderShipped.typeName])
    }

    @Test func aggregatesRehydrateAndSaveAtTheirVersion() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("orders")
        try await broker.createTopic("order-events")
        try await broker.createSubscription("all", topic: "order-events")
        try await EventStore(broker: broker, publishTo: .topic("order-events")).append(
            [OrderPlaced(orderId: "7")], to: TestOrder.stream("7"), expectedVersion: .noStream)
        var handlers = MessageHandlers()
        handlers.on(ShipOrder.self) { command, context in
            var order = try await context.load(TestOrder.self, id: command.orderId)
            guard order.state.placed, !order.state.shipped else { return }
            order.raise(OrderShipped(orderId: command.orderId))
            try context.save(order, publishTo: .topic("order-events"))
        }
        try await CommandBus(broker: broker).send(ShipOrder(commandId: "ship-7", orderId: "7"), to: .queue("orders"))
        try await store.processor(.queue("orders"), handlers).processAvailable()
        let stream = try await broker.readStream("order-7", from: 1, maxCount: 10)
        #expect(stream.map(\.version) == [1, 2])
        let published = try await broker.peek(.subscription("all", of: "order-events"), fromSequenceNumber: 1, maxCount: 10)
        #expect(published.map(\.message.messageId) == ["order-7@1", "order-7@2"])
        #expect(published.last?.message.causationId == "ship-7")
    }

    @Test func processManagerTimeoutsAreCancelledWhenNoLongerNeeded() async throws {
        let store = try Store()
        defer { Task { await store.close() } }
        let broker = store.broker
        try await broker.createQueue("process")
        var handlers = MessageHandlers()
        handlers.on(ShipOrder.self) { command, context in
            var process = try await context.loadProcess(Shipping.self, id: command.orderId)
            process.state.waiting = true
            try context.scheduleTimeout(
                ShipmentTimeout(commandId: "timeout-\(command.orderId)", orderId: command.orderId), to: .queue("process"),
                at: context.clock.now().addingTimeInterval(60)
            )
            try context.save(process)
        }
        handlers.on(OrderShipped.self) { event, context in
            var process = try await context.loadProcess(Shipping.self, id: event.orderId)
            process.state.waiting = false
            context.cancelTimeout("timeout-\(event.orderId)", in: .queue("process"))
            try context.save(process)
        }
        try await CommandBus(broker: broker).send(ShipOrder(commandId: "ship-1", orderId: "1"), to: .queue("process"))
        let processor = store.processor(.queue("process"), handlers)
        try await processor.processAvailable()
        #expect(try await broker.counts(of: .queue("process")).scheduled == 1, "the timeout waits")
        try await broker.send(
            try MessageCoding.message(for: OrderShipped(orderId: "1"), messageId: "e1", correlationId: nil, causationId: nil), to: .queue("process"))
        try await processor.processAvailable()
        #expect(try await broker.counts(of: .queue("process")) == EntityCounts(), "the timeout was cancelled with the handling")
        #expect(try await broker.document("1", in: "process.shipping")?.version == 2)
    }

    @Test func aProjectionAppliesEachEventOnce() async throws {
        struct Counting: Projection {
            let name = "count"
            func apply(_ event: RecordedEvent, to transaction: inout BrokerTransaction) async throws {
                transaction.recordInbox(handler: "count", messageId: "\(event.position)")
            }
        }
        let store = try Store()
        defer { Task { await store.close() } }
        let events = EventStore(broker: store.broker, publishTo: nil)
        for index in 0..<120 { try await events.append([OrderPlaced(orderId: "\(index)")], to: "order-\(index)", expectedVersion: .noStream) }
        let runner = ProjectionRunner(broker: store.broker, projection: Counting())
        #expect(try await runner.catchUp() == 120)
        #expect(try await runner.catchUp() == 0, "nothing twice: the inbox would reject a second application")
        try await events.append([OrderShipped(orderId: "0")], to: "order-0", expectedVersion: .exactly(1))
        #expect(try await runner.catchUp() == 1)
        #expect(try await runner.checkpoint() == 121)
    }

    /// The append and its publication are one commit: a crash at any moment leaves both or
    /// neither. 30 rounds each fail the disk after a random number of syncs while 4 writers
    /// append; after the restart every acknowledged append is stored and published, and the
    /// stored events and the published messages are the same set.
    @Test func aCrashBetweenAppendAndPublishLosesNothing() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-outbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("herald.sqlite").path
        let acknowledged = Acknowledged()
        let setup = try SQLiteBroker.running(path: path)
        try await setup.createTopic("events")
        try await setup.createSubscription("all", topic: "events")
        await setup.close()
        for round in 0..<30 {
            let syncs = Mutex(0)
            let failAfter = Int.random(in: 1...40)
            var configuration = SQLiteBroker.Configuration()
            configuration._beforeCommit = {
                let count = syncs.withLock {
                    $0 += 1
                    return $0
                }
                if count > failAfter { throw Boom() }
            }
            let broker = try SQLiteBroker.running(path: path, configuration: configuration)
            let events = EventStore(broker: broker, publishTo: .topic("events"))
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for index in 0..<1000 {
                            let stream = "r\(round)-w\(writer)-\(index)"
                            do {
                                try await events.append([OrderPlaced(orderId: stream)], to: stream, expectedVersion: .noStream)
                                acknowledged.ids.withLock { _ = $0.insert(RecordedEvent.messageId(stream: stream, version: 1)) }
                            } catch {
                                return
                            }
                        }
                    }
                }
            }
            #expect(broker.failure != nil, "round \(round) ended by the injected failure")
            await broker.close()
        }
        let reopened = try SQLiteBroker.running(path: path)
        var stored: Set<String> = []
        var position: Int64 = 1
        while true {
            let page = try await reopened.readAll(from: position, maxCount: 1000)
            for event in page { stored.insert(RecordedEvent.messageId(stream: event.stream, version: event.version)) }
            guard let last = page.last else { break }
            position = last.position + 1
        }
        var published: [String] = []
        var sequence: Int64 = 1
        while true {
            let page = try await reopened.peek(.subscription("all", of: "events"), fromSequenceNumber: sequence, maxCount: 1000)
            published += page.map(\.message.messageId)
            guard let last = page.last else { break }
            sequence = last.sequenceNumber + 1
        }
        await reopened.close()
        let acknowledgedIds = acknowledged.ids.withLock { $0 }
        #expect(!acknowledgedIds.isEmpty)
        #expect(acknowledgedIds.isSubset(of: stored), "\(acknowledgedIds.subtracting(stored).count) acknowledged appends lost")
        #expect(
            Set(published) == stored,
            "stored but unpublished: \(stored.subtracting(published).count), published but not stored: \(Set(published).subtracting(stored).count)")
        #expect(published.count == Set(published).count, "no event published twice")
    }
}

final class Acknowledged: Sendable {
    let ids = Mutex<Set<String>>([])
}
