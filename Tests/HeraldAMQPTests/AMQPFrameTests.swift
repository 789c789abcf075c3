import HeraldAMQP
import NIOCore
import Testing

/// Frames and performatives: round trips, limits, and what a peer that does not speak AMQP sends.
struct AMQPFrameTests {
    static let performatives: [AMQPPerformative] = {
        var open = AMQPOpen(containerId: "herald", hostname: "localhost", maxFrameSize: 65_536, channelMax: 255, idleTimeout: 120_000)
        open.properties = [AMQPMapEntry(.symbol("product"), .string("Herald"))]
        var attach = AMQPAttach(
            name: "receiver-link-1", handle: 3, role: .receiver,
            source: AMQPSource(
                address: "amqps://localhost/orders/Subscriptions/audit",
                filter: [AMQPMapEntry(.symbol("com.microsoft:session-filter"), .null)]),
            target: AMQPTarget(address: "receiver-link-1"))
        attach.senderSettleMode = 0
        attach.receiverSettleMode = 1
        attach.initialDeliveryCount = 0
        attach.maxMessageSize = 1_048_576
        attach.properties = [AMQPMapEntry(.symbol("com.microsoft:timeout"), .uint(60_000))]
        var flow = AMQPFlow(nextIncomingId: 1, incomingWindow: 65_536, nextOutgoingId: 1, outgoingWindow: 65_536)
        flow.handle = 3
        flow.deliveryCount = 0
        flow.linkCredit = 10
        flow.drain = true
        var transfer = AMQPTransfer(handle: 3, deliveryId: 7, deliveryTag: Array(0..<16), settled: false)
        transfer.more = true
        return [
            .open(open),
            .begin(AMQPBegin(remoteChannel: 0, nextOutgoingId: 1, incomingWindow: 5000, outgoingWindow: 5000, handleMax: 255)),
            .attach(attach),
            .flow(flow),
            .transfer(transfer),
            .disposition(AMQPDisposition(role: .sender, first: 7, last: 9, settled: true, state: .accepted)),
            .disposition(
                AMQPDisposition(
                    role: .receiver, first: 1, settled: false,
                    state: .rejected(
                        AMQPError(condition: "com.microsoft:dead-letter", description: "bad", info: [AMQPMapEntry(.string("DeadLetterReason"), .string("x"))])))
            ),
            .disposition(
                AMQPDisposition(
                    role: .receiver, first: 2, settled: false, state: .modified(deliveryFailed: true, undeliverableHere: true, messageAnnotations: nil))),
            .disposition(AMQPDisposition(role: .receiver, first: 3, settled: true, state: .released)),
            .detach(AMQPDetach(handle: 3, closed: true, error: AMQPError(condition: AMQPCondition.notFound, description: "no queue orders"))),
            .end(AMQPEnding()),
            .close(AMQPEnding(error: AMQPError(condition: AMQPCondition.framingError))),
        ]
    }()

    @Test func performativesRoundTripThroughFrames() throws {
        let decoder = AMQPFrameDecoder(maxFrameSize: 65_536)
        var buffer = ByteBuffer()
        for (channel, performative) in Self.performatives.enumerated() {
            try buffer.writeAMQPFrame(AMQPFrame(channel: UInt16(channel), body: performative.value, payload: ByteBuffer(bytes: [1, 2, 3])))
        }
        for (channel, performative) in Self.performatives.enumerated() {
            let frame = try #require(try decoder.decode(&buffer))
            #expect(frame.channel == UInt16(channel))
            #expect(frame.payload == ByteBuffer(bytes: [1, 2, 3]))
            #expect(try AMQPPerformative(#require(frame.body)) == performative)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test func saslFramesRoundTrip() throws {
        let frames: [AMQPSASLFrame] = [
            .mechanisms(["ANONYMOUS", "PLAIN", "MSSBCBS"]),
            .initial(mechanism: "ANONYMOUS", response: [], hostname: "localhost"),
            .challenge([1]),
            .response([2]),
            .outcome(code: 0, additionalData: nil),
        ]
        for frame in frames {
            var buffer = ByteBuffer()
            try buffer.writeAMQPFrame(AMQPFrame(kind: .sasl, channel: 0, body: frame.value))
            let decoded = try #require(try AMQPFrameDecoder(maxFrameSize: 512).decode(&buffer))
            #expect(decoded.kind == .sasl)
            #expect(try AMQPSASLFrame(#require(decoded.body)) == frame)
        }
    }

    @Test func anEmptyFrameKeepsTheConnectionAlive() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 8, 2, 0, 0, 0])
        let frame = try #require(try AMQPFrameDecoder(maxFrameSize: 512).decode(&buffer))
        #expect(frame.body == nil)
        var written = ByteBuffer()
        try written.writeAMQPFrame(AMQPFrame(channel: 0, body: nil))
        #expect(Array(written.readableBytesView) == [0, 0, 0, 8, 2, 0, 0, 0])
    }

    @Test func aFrameIsReadOnlyOnceAllOfItIsThere() throws {
        var whole = ByteBuffer()
        try whole.writeAMQPFrame(AMQPFrame(channel: 1, body: Self.performatives[0].value))
        let decoder = AMQPFrameDecoder(maxFrameSize: 65_536)
        for cut in 0..<whole.readableBytes {
            var part = whole.getSlice(at: 0, length: cut)!
            #expect(try decoder.decode(&part) == nil)
            #expect(part.readerIndex == 0)
        }
    }

    @Test func framesBreakingTheLimitsAreRefusedBeforeTheyAreRead() {
        let decoder = AMQPFrameDecoder(maxFrameSize: 512)
        // A frame announcing 4 GiB: refused from its first four bytes.
        var huge = ByteBuffer(bytes: [0xff, 0xff, 0xff, 0xff])
        #expect(throws: AMQPFrameError.frameTooLarge(size: .max, maximum: 512)) { try decoder.decode(&huge) }
        var tiny = ByteBuffer(bytes: [0, 0, 0, 4, 2, 0, 0, 0])
        #expect(throws: AMQPFrameError.malformedHeader) { try decoder.decode(&tiny) }
        var offset = ByteBuffer(bytes: [0, 0, 0, 8, 9, 0, 0, 0])
        #expect(throws: AMQPFrameError.malformedHeader) { try decoder.decode(&offset) }
        var type = ByteBuffer(bytes: [0, 0, 0, 8, 2, 7, 0, 0])
        #expect(throws: AMQPFrameError.unknownFrameType(7)) { try decoder.decode(&type) }
        var body = ByteBuffer(bytes: [0, 0, 0, 9, 2, 0, 0, 0, 0x99])
        #expect(throws: AMQPFrameError.malformedBody(.unknownFormatCode(0x99))) { try decoder.decode(&body) }
    }

    @Test func protocolHeaders() throws {
        var sasl = ByteBuffer(bytes: AMQPProtocolHeader.sasl.bytes + [1])
        #expect(try AMQPProtocolHeader.read(from: &sasl) == .sasl)
        #expect(sasl.readableBytes == 1)
        var partial = ByteBuffer(bytes: [0x41, 0x4d])
        #expect(try AMQPProtocolHeader.read(from: &partial) == nil)
        // HTTP is refused from its first byte, without waiting for eight.
        var http = ByteBuffer(string: "GET")
        #expect(throws: AMQPFrameError.notAMQP(Array("GET".utf8))) { try AMQPProtocolHeader.read(from: &http) }
        var version = ByteBuffer(bytes: [0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])
        #expect(throws: AMQPFrameError.self) { try AMQPProtocolHeader.read(from: &version) }
    }

    @Test func performativesWithWrongFieldsAreTypedErrors() {
        // An open without its container id, a begin whose window is a string, a transfer that is a map.
        #expect(throws: AMQPFieldError(type: "open", field: "container-id")) {
            try AMQPPerformative(.described(descriptor: .ulong(0x10), value: .list([])))
        }
        #expect(throws: AMQPFieldError(type: "begin", field: "incoming-window")) {
            try AMQPPerformative(.described(descriptor: .ulong(0x11), value: .list([.null, .uint(0), .string("x"), .uint(0)])))
        }
        #expect(throws: AMQPFieldError(type: "transfer", field: nil)) {
            try AMQPPerformative(.described(descriptor: .ulong(0x14), value: .map([])))
        }
        #expect(throws: AMQPFieldError(type: "performative", field: nil)) { try AMQPPerformative(.described(descriptor: .ulong(0x99), value: .list([]))) }
        // The symbolic descriptor is accepted.
        #expect(throws: Never.self) { try AMQPPerformative(.described(descriptor: .symbol("amqp:end:list"), value: .list([]))) }
    }

    @Test func mutatedFramesNeverCrashTheDecoder() throws {
        var generator = AMQPValueGenerator(seed: 11)
        let decoder = AMQPFrameDecoder(maxFrameSize: 4096)
        var accepted = 0
        for round in 0..<20_000 {
            var buffer = ByteBuffer()
            try buffer.writeAMQPFrame(AMQPFrame(channel: 0, body: Self.performatives[round % Self.performatives.count].value))
            var bytes = Array(buffer.readableBytesView)
            for _ in 0..<(1 + generator.below(4)) {
                bytes[generator.below(bytes.count)] = UInt8(truncatingIfNeeded: generator.next())
            }
            var mutated = ByteBuffer(bytes: bytes)
            guard let frame = try? decoder.decode(&mutated), let body = frame.body else { continue }
            if (try? AMQPPerformative(body)) != nil { accepted += 1 }
        }
        #expect(accepted > 0)
    }
}
