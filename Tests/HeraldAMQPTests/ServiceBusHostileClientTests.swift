import Foundation
import HeraldAMQP
import HeraldCore
import HeraldSQLite
import NIOCore
import Testing

/// Clients that misbehave at the link level: one that vanishes holding locks or a session, one
/// that grants credit and never reads. The broker keeps its promises to everyone else.
@Suite(.timeLimit(.minutes(1)))
struct ServiceBusHostileClientTests {
    /// Puts a token, attaches a receiver on handle 2 of channel 0 for `address` and grants `credit`.
    static func receiver(_ client: AMQPTestClient, address: String, credit: UInt32, filter: [AMQPMapEntry]? = nil) async throws -> AMQPAttach? {
        #expect(try await ServiceBusSendingTests.putToken("SharedAccessSignature sr=x&sig=AA%3D%3D&se=1&skn=any", client: client) == .int(202))
        var attach = AMQPAttach(
            name: "receiver", handle: 2, role: .receiver, source: AMQPSource(address: address, filter: filter), target: AMQPTarget(address: "r"))
        attach.senderSettleMode = 0
        attach.receiverSettleMode = 1
        try await client.send(.attach(attach))
        var flow = AMQPFlow(nextIncomingId: 1, incomingWindow: 100_000, nextOutgoingId: 1, outgoingWindow: 1000)
        flow.handle = 2
        flow.deliveryCount = 0
        flow.linkCredit = credit
        try await client.send(.flow(flow))
        while let performative = try await client.readPerformative() {
            if case .attach(let reply) = performative { return reply }
        }
        return nil
    }

    /// Polls `condition` every 100 ms for up to `seconds`.
    static func eventually(within seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    @Test func aReceiverThatVanishesLeavesItsMessagesToOthersOnceTheirLocksExpire() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("orders", options: EntityOptions(lockDuration: .seconds(1)))
            _ = try await broker.send((1...3).map { Message(messageId: "m\($0)", body: Data("\($0)".utf8)) }, to: .queue("orders"))
            try await ServiceBusSendingTests.serving(broker, verifyingWith: nil) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    _ = try #require(try await Self.receiver(client, address: "amqps://localhost/orders", credit: 3))
                    var transfers = 0
                    while transfers < 3, let performative = try await client.readPerformative() {
                        if case .transfer = performative { transfers += 1 }
                    }
                    #expect(transfers == 3)
                    // Gone without a detach, an end or a close.
                }
                let counts = try await broker.counts(of: .queue("orders"))
                #expect(counts.locked + counts.active == 3, "nothing lost (locked until their locks expire, which on a loaded machine may be already)")
                var redelivered: [ReceivedMessage] = []
                #expect(
                    try await Self.eventually(within: 10) {
                        redelivered += try await broker.receive(from: .queue("orders"), maxCount: 3, maxWaitTime: .zero)
                        return redelivered.count == 3
                    })
                #expect(redelivered.allSatisfy { $0.deliveryCount == 2 }, "each was delivered once to the client that vanished")
            }
        }
    }

    @Test func aSessionHeldByAConnectionThatClosesIsFreeAtOnce() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("orders", options: EntityOptions(lockDuration: .seconds(60), requiresSession: true))
            _ = try await broker.send([Message(messageId: "a1", body: Data("a".utf8), sessionId: "A")], to: .queue("orders"))
            try await ServiceBusSendingTests.serving(broker, verifyingWith: nil) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    let filter = [AMQPMapEntry(.symbol("com.microsoft:session-filter"), .string("A"))]
                    let reply = try #require(try await Self.receiver(client, address: "orders", credit: 1, filter: filter))
                    #expect(reply.source?.filter == filter)
                }
                // The lock would hold for a minute; the closed connection gave the session up.
                #expect(
                    try await Self.eventually(within: 5) {
                        (try? await broker.acceptSession(on: .queue("orders"), sessionId: "A", maxWaitTime: .zero)) != nil
                    })
            }
        }
    }

    @Test func aClientThatGrantsCreditAndDoesNotReadIsNotSentEverything() async throws {
        try await SQLiteBroker.withInMemoryBroker { broker in
            try await broker.createQueue("orders")
            let body = Data(repeating: 42, count: 64 << 10)
            for batch in 0..<20 {
                _ = try await broker.send((0..<50).map { Message(messageId: "m\(batch)-\($0)", body: body) }, to: .queue("orders"))
            }
            try await ServiceBusSendingTests.serving(broker, verifyingWith: nil) { port in
                try await AMQPTestClient.with(port: port) { client in
                    _ = try #require(try await client.handshake())
                    _ = try #require(try await Self.receiver(client, address: "orders", credit: 100_000))
                    // Reads nothing more: the socket's buffers fill, and the server stops taking messages.
                    try await Task.sleep(for: .seconds(3))
                    let locked = try await broker.counts(of: .queue("orders")).locked
                    #expect(locked > 0 && locked < 600, "\(locked) of 1,000 messages of 64 KiB locked for a client that reads none")
                }
            }
        }
    }
}
