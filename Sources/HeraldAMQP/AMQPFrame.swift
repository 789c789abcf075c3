public import NIOCore

/// The eight bytes that open each protocol layer of a connection: `AMQP`, a protocol id and the
/// version 1.0.0.
public enum AMQPProtocolHeader: UInt8, Sendable, Hashable {
    /// AMQP itself.
    case amqp = 0
    /// TLS before AMQP.
    case tls = 2
    /// SASL before AMQP.
    case sasl = 3

    /// The header's bytes.
    public var bytes: [UInt8] { [0x41, 0x4d, 0x51, 0x50, self.rawValue, 1, 0, 0] }

    /// Reads a header from the first eight bytes of `buffer`; `nil` until eight bytes are there.
    /// - Throws: ``AMQPFrameError/notAMQP(_:)`` when they are not a header of AMQP 1.0.
    public static func read(from buffer: inout ByteBuffer) throws(AMQPFrameError) -> AMQPProtocolHeader? {
        guard let bytes = buffer.getBytes(at: buffer.readerIndex, length: 8) else {
            // A peer that does not speak AMQP at all is told so as soon as its first bytes show it.
            let seen = buffer.readableBytesView.prefix(4)
            guard Array(seen) == Array([UInt8]([0x41, 0x4d, 0x51, 0x50]).prefix(seen.count)) else { throw .notAMQP(Array(seen)) }
            return nil
        }
        guard bytes[0..<4] == [0x41, 0x4d, 0x51, 0x50], bytes[5..<8] == [1, 0, 0], let header = AMQPProtocolHeader(rawValue: bytes[4]) else {
            throw .notAMQP(bytes)
        }
        buffer.moveReaderIndex(forwardBy: 8)
        return header
    }
}

/// Bytes that are not a valid frame, or a frame that breaks the negotiated limits.
public enum AMQPFrameError: Error, Hashable, Sendable {
    /// The connection did not start with an AMQP 1.0 protocol header.
    case notAMQP([UInt8])
    /// A frame larger than the size this side accepts.
    case frameTooLarge(size: UInt32, maximum: UInt32)
    /// A frame whose size or data offset is impossible.
    case malformedHeader
    /// A frame type other than AMQP (0) and SASL (1).
    case unknownFrameType(UInt8)
    /// The frame's body is not a performative.
    case malformedBody(AMQPDecodingError)
}

/// One frame: a performative on a channel and, for a transfer, the message bytes after it.
public struct AMQPFrame: Sendable, Hashable {
    /// AMQP frames carry performatives; SASL frames, the authentication exchange.
    public enum Kind: UInt8, Sendable, Hashable {
        case amqp = 0
        case sasl = 1
    }

    public var kind: Kind
    public var channel: UInt16
    /// The performative (or SASL frame body); `nil` for an empty frame, which only keeps the
    /// connection alive.
    public var body: AMQPValue?
    /// The bytes after the performative: a transfer's message (or part of it).
    public var payload: ByteBuffer

    /// A frame.
    public init(kind: Kind = .amqp, channel: UInt16, body: AMQPValue?, payload: ByteBuffer = ByteBuffer()) {
        self.kind = kind
        self.channel = channel
        self.body = body
        self.payload = payload
    }

    /// The smallest frame size a peer may set (part 2, section 2.7.1).
    public static let minimumMaxFrameSize: UInt32 = 512
}

/// Cuts frames out of the bytes a connection receives, refusing any larger than `maxFrameSize`
/// before reading it.
public struct AMQPFrameDecoder: Sendable {
    /// The largest frame accepted, header included.
    public var maxFrameSize: UInt32

    /// A decoder of frames up to `maxFrameSize` bytes.
    public init(maxFrameSize: UInt32) {
        self.maxFrameSize = maxFrameSize
    }

    /// The next whole frame in `buffer`, or `nil` until its bytes are all there.
    public func decode(_ buffer: inout ByteBuffer) throws(AMQPFrameError) -> AMQPFrame? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard size >= 8 else { throw .malformedHeader }
        guard size <= self.maxFrameSize else { throw .frameTooLarge(size: size, maximum: self.maxFrameSize) }
        guard buffer.readableBytes >= Int(size) else { return nil }
        let start = buffer.readerIndex
        let dataOffset = Int(buffer.getInteger(at: start + 4, as: UInt8.self)!) * 4
        let type = buffer.getInteger(at: start + 5, as: UInt8.self)!
        let channel = buffer.getInteger(at: start + 6, as: UInt16.self)!
        guard dataOffset >= 8, dataOffset <= Int(size) else { throw .malformedHeader }
        guard let kind = AMQPFrame.Kind(rawValue: type) else { throw .unknownFrameType(type) }
        var body = buffer.getSlice(at: start + dataOffset, length: Int(size) - dataOffset)!
        buffer.moveReaderIndex(forwardBy: Int(size))
        if body.readableBytes == 0 { return AMQPFrame(kind: kind, channel: channel, body: nil) }
        do {
            let performative = try body.readAMQPValue()
            return AMQPFrame(kind: kind, channel: channel, body: performative, payload: body)
        } catch {
            throw .malformedBody(error)
        }
    }
}

extension ByteBuffer {
    /// Appends `frame`; returns its size.
    @discardableResult
    public mutating func writeAMQPFrame(_ frame: AMQPFrame) throws(AMQPEncodingError) -> Int {
        let start = self.writerIndex
        self.writeInteger(UInt32(0))
        self.writeInteger(UInt8(2))
        self.writeInteger(frame.kind.rawValue)
        self.writeInteger(frame.channel)
        if let body = frame.body {
            try self.writeAMQPValue(body)
            var payload = frame.payload
            self.writeBuffer(&payload)
        }
        let size = self.writerIndex - start
        guard size <= Int(UInt32.max) else { throw .tooLarge }
        self.setInteger(UInt32(size), at: start)
        return size
    }
}
