import Foundation
import HeraldCore
import HeraldServer
import Logging
import Testing

/// A broker whose every call throws `error`: for the server's error mapping.
struct FailingBroker: MessageBroker {
    let error: any Error & Sendable
    /// Runs at each call of `counts(of:)` before it throws, on the thread the server called it from.
    var onCounts: @Sendable () -> Void = {}

    func createQueue(_ name: String, options: EntityOptions) async throws { throw self.error }
    func deleteQueue(_ name: String) async throws { throw self.error }
    func listQueues() async throws -> [EntityDescription] { throw self.error }
    func createTopic(_ name: String, options: EntityOptions) async throws { throw self.error }
    func deleteTopic(_ name: String) async throws { throw self.error }
    func listTopics() async throws -> [EntityDescription] { throw self.error }
    func createSubscription(_ name: String, topic: String, options: EntityOptions, filter: SubscriptionFilter) async throws { throw self.error }
    func deleteSubscription(_ name: String, topic: String) async throws { throw self.error }
    func listSubscriptions(topic: String) async throws -> [SubscriptionDescription] { throw self.error }
    func send(_ messages: [Message], to entity: EntityPath) async throws -> [SendReceipt] { throw self.error }
    func cancelScheduled(_ sequenceNumbers: [Int64], in entity: EntityPath) async throws { throw self.error }
    func receive(from entity: EntityPath, maxCount: Int, maxWaitTime: Duration, mode: ReceiveMode) async throws -> [ReceivedMessage] { throw self.error }
    func receiveDeferred(from entity: EntityPath, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] { throw self.error }
    func peek(_ entity: EntityPath, fromSequenceNumber: Int64, maxCount: Int) async throws -> [ReceivedMessage] { throw self.error }
    func complete(_ token: LockToken) async throws -> SettlementOutcome { throw self.error }
    func complete(_ tokens: [LockToken]) async throws -> SettlementOutcome { throw self.error }
    func abandon(_ token: LockToken, delay: Duration?) async throws -> SettlementOutcome { throw self.error }
    func `defer`(_ token: LockToken) async throws -> SettlementOutcome { throw self.error }
    func deadLetter(_ token: LockToken, reason: String, description: String?) async throws -> SettlementOutcome { throw self.error }
    func renewLock(_ token: LockToken) async throws -> Date { throw self.error }
    func acceptSession(on entity: EntityPath, sessionId: String?, maxWaitTime: Duration) async throws -> SessionLock { throw self.error }
    func receive(from session: SessionLock, maxCount: Int, maxWaitTime: Duration) async throws -> [ReceivedMessage] { throw self.error }
    func receiveDeferred(from session: SessionLock, sequenceNumbers: [Int64]) async throws -> [ReceivedMessage] { throw self.error }
    func sessionState(_ session: SessionLock) async throws -> Data? { throw self.error }
    func setSessionState(_ state: Data?, for session: SessionLock) async throws { throw self.error }
    func renewSessionLock(_ session: SessionLock) async throws -> SessionLock { throw self.error }
    func releaseSession(_ session: SessionLock) async throws { throw self.error }
    func resubmit(_ token: LockToken) async throws -> SettlementOutcome { throw self.error }
    func counts(of entity: EntityPath) async throws -> EntityCounts {
        self.onCounts()
        throw self.error
    }
}

/// An error whose text must never reach a client.
struct SecretDetailError: Error {
    let detail = "password=hunter2 at /var/secret"
}

extension FailingBroker {
    /// Runs a server over a broker failing every call with `error`, and `body` on one connection to it.
    static func serving(_ error: any Error & Sendable, _ body: @escaping @Sendable (HTTPConnection) async throws -> Void) async throws {
        try await FailingBroker(error: error).serving(body)
    }

    /// Runs a server over this broker, and `body` on one connection to it.
    func serving(_ body: @escaping @Sendable (HTTPConnection) async throws -> Void) async throws {
        var logger = Logger(label: "herald.server.test")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = HeraldHTTPServer(
            broker: self,
            configuration: .init(port: 0, keys: nil, logger: logger) { port in continuation.yield(port) }
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await HTTPConnection.with(port: port, body)
            group.cancelAll()
        }
    }
}
