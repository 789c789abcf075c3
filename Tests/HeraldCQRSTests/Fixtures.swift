import Foundation
import HeraldCQRS
import HeraldCore
import HeraldSQLite

struct Increment: Command {
    static let typeName = "test.Increment"
    var commandId: String
    var counter: String
}

struct Incremented: Event {
    static let typeName = "test.Incremented"
    var counter: String
    var value: Int
}

struct Step: Command {
    static let typeName = "test.Step"
    var commandId: String
    var step: Int
}

struct Fail: Command {
    static let typeName = "test.Fail"
    var commandId: String
}

struct Boom: Error {}

/// A fresh SQLite store in a temporary folder, with a manual clock.
final class Store: Sendable {
    let directory: URL
    let path: String
    let clock = ManualBrokerClock()
    let broker: SQLiteBroker

    init(configure: (inout SQLiteBroker.Configuration) -> Void = { _ in }) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-cqrs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        var configuration = SQLiteBroker.Configuration(clock: self.clock)
        configure(&configuration)
        self.path = self.directory.appendingPathComponent("herald.sqlite").path
        self.broker = try SQLiteBroker.running(path: self.path, configuration: configuration)
    }

    func close() async {
        await self.broker.close()
        try? FileManager.default.removeItem(at: self.directory)
    }

    func processor(_ source: EntityPath, _ handlers: MessageHandlers, _ configure: (inout MessageProcessor.Configuration) -> Void = { _ in })
        -> MessageProcessor
    {
        var configuration = MessageProcessor.Configuration(name: "test", maxConcurrency: 1, receiveBatchSize: 10)
        configure(&configuration)
        return MessageProcessor(broker: self.broker, source: source, handlers: handlers, configuration: configuration, clock: self.clock)
    }
}

/// Adds `value` to the integer document `key` of collection `counters` in the handling's commit.
func bump(_ context: HandlerContext, _ key: String, by value: Int = 1) async throws -> Int {
    let current = try await context.load(Int.self, collection: "counters", key: key)
    let next = (current?.value ?? 0) + value
    try context.save(next, collection: "counters", key: key, expectedVersion: current?.version ?? 0)
    return next
}

/// Appends `value` to the list document `key` of collection `logs` in the handling's commit.
func log(_ context: HandlerContext, _ key: String, _ value: Int) async throws {
    let current = try await context.load([Int].self, collection: "logs", key: key)
    try context.save((current?.value ?? []) + [value], collection: "logs", key: key, expectedVersion: current?.version ?? 0)
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Waits (in real time, checking every few milliseconds) until `condition` holds; throws
/// ``TimedOut`` after `timeout`.
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(description: "timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(5))
    }
}
