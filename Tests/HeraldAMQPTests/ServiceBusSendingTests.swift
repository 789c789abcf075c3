import Foundation
import HeraldAMQP
import HeraldAMQPServer
import HeraldCore
import HeraldSQLite
import HeraldWire
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// Sending over AMQP as a Service Bus client does: `$cbs` first, then a sender link to the queue,
/// then transfers that come back settled once the broker stored them.
@Suite(.timeLimit(.minutes(1)))
struct ServiceBusSendingTests {
    static func serving(_ broker: SQLiteBroker, verifyingWith credential: AMQPCredential?, _ body: @Sendable (Int) async throws -> Void) async throws {
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "herald.amqp.test")
        logger.logLevel = .critical
        let backend =
            credential.map { credential in AMQPBackend(broker: broker) { $0 == "k1" ? credential : nil } } ?? AMQPBackend(acceptingAnyTokenFor: broker)
        let listener = AMQPListener(configuration: AMQPListener.Configuration(port: 0), backend: backend, logger: logger) { portContinuation.yield($0) }
        let group = ServiceGroup(services: [listener], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do { try await body(port) } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Attaches the `$cbs` pair on channel 0 and puts `token`; returns the answer's status code.
    static func putToken(_ token: String, client: AMQPTestClient) async throws -> AMQPValue? {
        try await client.send(.begin(AMQPBegin(remoteChannel: nil, nextOutgoingId: 0, incomingWindow: 1000, outgoingWindow: 1000)))
        _ = try await client.readPerformative()
        try await client.send(
            .attach(AMQPAttach(name: "cbs-out", handle: 0, role: .sender, source: AMQPSource(address: "c"), target: AMQPTarget(address: "$cbs"))))
        _ = try await client.readPerformative()  // attach
        _ = try await client.readPerformative()  // flow: credit
        var answers = AMQPAttach(name: "cbs-in", handle: 1, role: .receiver, source: AMQPSource(address: "$cbs"), target: AMQPTarget(address: "c"))
        answers.receiverSettleMode = 0
        try await client.send(.attach(answers))
        _ = try await client.readPerformative()  // attach
        var credit = AMQPFlow(nextIncomingId: 1, incomingWindow: 1000, nextOutgoingId: 0, outgoingWindow: 1000)
        credit.handle = 1
        credit.deliveryCount = 0
        credit.linkCredit = 10
        try await client.send(.flow(credit))
        var request = AMQPMessage(body: .value(.string(token)))
        var properties = AMQPMessage.Properties()
        properties.messageId = .string("put-1")
        request.properties = properties
        request.applicationProperties = [
            AMQPMapEntry(.string("operation"), .string("put-token")), AMQPMapEntry(.string("type"), .string("jwt")),
            AMQPMapEntry(.string("name"), .string("sb://localhost/orders")),
        ]
        try await client.sendTransfer(AMQPTransfer(handle: 0, deliveryId: 0, deliveryTag: [0], settled: true), message: request)
        while let frame = try await client.readFrame() {
            guard let body = frame.body, case .transfer = try AMQPPerformative(body) else { continue }
            let answer = try AMQPMessage(from: frame.payload)
            #expect(answer.properties?.correlationId == .string("put-1"))
            return answer.applicationProperties?.first { $0.key == .string("status-code") }?.value
        }
        return nil
    }

    @Test func aSenderLinkStoresWhatItTransfersOnceItsTokenIsPut() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("orders")
            try await Self.serving(broker, verifyingWith: nil) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    #expect(try await Self.putToken("SharedAccessSignature sr=x&sig=AA%3D%3D&se=1&skn=any", client: client) == .int(202))
                    try await client.send(
                        .attach(
                            AMQPAttach(
                                name: "sender", handle: 2, role: .sender, source: AMQPSource(address: "s"),
                                target: AMQPTarget(address: "amqps://localhost/orders"))))
                    guard case .attach(let reply) = try await client.readPerformative(), case .flow(let credit) = try await client.readPerformative() else {
                        Issue.record("the sender was not attached with credit")
                        return
                    }
                    #expect(reply.target?.address == "amqps://localhost/orders" && (credit.linkCredit ?? 0) > 0)
                    var message = AMQPMessage(body: .data([Array("hello".utf8)]))
                    var properties = AMQPMessage.Properties()
                    properties.messageId = .string("m-1")
                    message.properties = properties
                    try await client.sendTransfer(AMQPTransfer(handle: 2, deliveryId: 1, deliveryTag: [1], settled: false), message: message)
                    guard case .disposition(let disposition) = try await client.readPerformative() else {
                        Issue.record("no disposition")
                        return
                    }
                    #expect(disposition.first == 1 && disposition.settled && disposition.state == .accepted)
                }
            }
            let stored = try await broker.peek(.queue("orders"), fromSequenceNumber: 0, maxCount: 10)
            #expect(stored.map(\.message.messageId) == ["m-1"])
            #expect(stored.first?.message.body == Data("hello".utf8))
        }
    }

    @Test func withoutAValidTokenASenderIsRefused() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("orders")
            let credential = AMQPCredential(sharedAccessKey: Array("c2VjcmV0LWtleQ==".utf8), rights: [.listen], entity: nil)
            try await Self.serving(broker, verifyingWith: credential) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    // A well-formed token signed with another key.
                    let forged = SharedAccessSignatureTestsTokens.entityToken.replacingOccurrences(of: "se=2000000000", with: "se=2100000000")
                    #expect(try await Self.putToken(forged, client: client) == .int(401))
                    try await client.send(
                        .attach(AMQPAttach(name: "sender", handle: 2, role: .sender, source: AMQPSource(address: "s"), target: AMQPTarget(address: "orders"))))
                    _ = try await client.readPerformative()
                    guard case .detach(let detach) = try await client.readPerformative() else {
                        Issue.record("the sender was not refused")
                        return
                    }
                    #expect(detach.error?.condition == AMQPCondition.unauthorizedAccess)
                }
            }
            #expect(try await broker.peek(.queue("orders"), fromSequenceNumber: 0, maxCount: 10).isEmpty)
        }
    }
}

/// The Python SDK's token for `sb://localhost:5672/orders`, key `k1`, valid until 2033.
enum SharedAccessSignatureTestsTokens {
    static let entityToken =
        "SharedAccessSignature sr=sb%3A%2F%2Flocalhost%3A5672%2Forders&sig=qEfpY6KvKF0JLNRhr67yCakKIE5y6QATwlKAAMlMEdw%3D&se=2000000000&skn=k1"
}
