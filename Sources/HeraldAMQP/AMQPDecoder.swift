import Foundation
public import NIOCore

/// Bytes that are not a valid AMQP 1.0 encoding.
public enum AMQPDecodingError: Error, Hashable, Sendable {
    /// The bytes end before the value does.
    case truncated
    /// A format code that AMQP 1.0 does not define.
    case unknownFormatCode(UInt8)
    /// A compound's size or count contradicts its bytes (a count larger than its size allows, a
    /// map with an odd number of elements, an element that overruns its compound).
    case malformedCompound
    /// Values nested deeper than ``AMQPDecoder/maximumDepth``.
    case nestedTooDeeply
    /// A string or symbol that is not valid UTF-8, or a char that is not a Unicode scalar.
    case invalidText
    /// A descriptor that is neither a `ulong` nor a `symbol`.
    case invalidDescriptor
    /// More values than ``AMQPDecoder/maximumValues`` in one read.
    case tooManyValues
}

/// Reads AMQP 1.0 values, with limits so that no input can exhaust memory or the stack.
public enum AMQPDecoder {
    /// How deep compounds and described values may nest.
    public static let maximumDepth = 64
    /// How many elements of zero width (null, true, empty list…) an array may claim: such an
    /// array's bytes do not bound its count.
    public static let maximumZeroWidthElements = 65_536
    /// How many values one read may decode, compounds' elements included: a decoded value takes
    /// far more memory than its encoding (a 1 MiB frame of nulls would otherwise become a million
    /// values).
    public static let maximumValues = 100_000
}

extension ByteBuffer {
    /// Reads one AMQP value; on an error the reader index is where it was.
    public mutating func readAMQPValue() throws(AMQPDecodingError) -> AMQPValue {
        let start = self.readerIndex
        var budget = AMQPDecoder.maximumValues
        do {
            return try self.readValue(depth: 0, budget: &budget)
        } catch {
            self.moveReaderIndex(to: start)
            throw error
        }
    }

    private mutating func readValue(depth: Int, budget: inout Int) throws(AMQPDecodingError) -> AMQPValue {
        guard depth < AMQPDecoder.maximumDepth else { throw .nestedTooDeeply }
        budget -= 1
        guard budget >= 0 else { throw .tooManyValues }
        let code = try self.readByte()
        if code == AMQPTypeCode.described {
            let descriptor = try self.readValue(depth: depth + 1, budget: &budget)
            guard Self.isDescriptor(descriptor) else { throw .invalidDescriptor }
            return .described(descriptor: descriptor, value: try self.readValue(depth: depth + 1, budget: &budget))
        }
        return try self.readBody(code: code, depth: depth, budget: &budget)
    }

    private static func isDescriptor(_ value: AMQPValue) -> Bool {
        switch value {
        case .ulong, .symbol: true
        default: false
        }
    }

    /// Reads what follows the constructor `code`.
    private mutating func readBody(code: UInt8, depth: Int, budget: inout Int) throws(AMQPDecodingError) -> AMQPValue {
        switch code {
        case AMQPTypeCode.null: return .null
        case AMQPTypeCode.true: return .bool(true)
        case AMQPTypeCode.false: return .bool(false)
        case AMQPTypeCode.boolean:
            switch try self.readByte() {
            case 0: return .bool(false)
            case 1: return .bool(true)
            default: throw .malformedCompound
            }
        case AMQPTypeCode.ubyte: return .ubyte(try self.readFixed(UInt8.self))
        case AMQPTypeCode.ushort: return .ushort(try self.readFixed(UInt16.self))
        case AMQPTypeCode.uint: return .uint(try self.readFixed(UInt32.self))
        case AMQPTypeCode.smallUInt: return .uint(UInt32(try self.readByte()))
        case AMQPTypeCode.uint0: return .uint(0)
        case AMQPTypeCode.ulong: return .ulong(try self.readFixed(UInt64.self))
        case AMQPTypeCode.smallULong: return .ulong(UInt64(try self.readByte()))
        case AMQPTypeCode.ulong0: return .ulong(0)
        case AMQPTypeCode.byte: return .byte(try self.readFixed(Int8.self))
        case AMQPTypeCode.short: return .short(try self.readFixed(Int16.self))
        case AMQPTypeCode.int: return .int(try self.readFixed(Int32.self))
        case AMQPTypeCode.smallInt: return .int(Int32(try self.readFixed(Int8.self)))
        case AMQPTypeCode.long: return .long(try self.readFixed(Int64.self))
        case AMQPTypeCode.smallLong: return .long(Int64(try self.readFixed(Int8.self)))
        case AMQPTypeCode.float: return .float(Float(bitPattern: try self.readFixed(UInt32.self)))
        case AMQPTypeCode.double: return .double(Double(bitPattern: try self.readFixed(UInt64.self)))
        case AMQPTypeCode.decimal32: return .decimal32(try self.readFixed(UInt32.self))
        case AMQPTypeCode.decimal64: return .decimal64(try self.readFixed(UInt64.self))
        case AMQPTypeCode.decimal128: return .decimal128(try self.readFixed(UInt64.self), try self.readFixed(UInt64.self))
        case AMQPTypeCode.char:
            guard let scalar = Unicode.Scalar(try self.readFixed(UInt32.self)) else { throw .invalidText }
            return .char(scalar)
        case AMQPTypeCode.timestamp: return .timestamp(try self.readFixed(Int64.self))
        case AMQPTypeCode.uuid:
            guard let bytes = self.readBytes(length: 16) else { throw .truncated }
            let uuid = (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
            return .uuid(UUID(uuid: uuid))
        case AMQPTypeCode.binary8, AMQPTypeCode.binary32:
            let length = try self.readLength(small: code == AMQPTypeCode.binary8)
            guard let bytes = self.readBytes(length: length) else { throw .truncated }
            return .binary(bytes)
        case AMQPTypeCode.string8, AMQPTypeCode.string32, AMQPTypeCode.symbol8, AMQPTypeCode.symbol32:
            let length = try self.readLength(small: code == AMQPTypeCode.string8 || code == AMQPTypeCode.symbol8)
            guard let bytes = self.readBytes(length: length) else { throw .truncated }
            guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidText }
            return code == AMQPTypeCode.string8 || code == AMQPTypeCode.string32 ? .string(text) : .symbol(text)
        case AMQPTypeCode.list0: return .list([])
        case AMQPTypeCode.list8, AMQPTypeCode.list32:
            return .list(try self.readElements(small: code == AMQPTypeCode.list8, depth: depth, budget: &budget))
        case AMQPTypeCode.map8, AMQPTypeCode.map32:
            let elements = try self.readElements(small: code == AMQPTypeCode.map8, depth: depth, budget: &budget)
            guard elements.count % 2 == 0 else { throw .malformedCompound }
            return .map(stride(from: 0, to: elements.count, by: 2).map { AMQPMapEntry(elements[$0], elements[$0 + 1]) })
        case AMQPTypeCode.array8, AMQPTypeCode.array32:
            return .array(try self.readArray(small: code == AMQPTypeCode.array8, depth: depth, budget: &budget))
        default:
            throw .unknownFormatCode(code)
        }
    }

    /// Reads the size and count of a list or map, then its elements, each within the size.
    private mutating func readElements(small: Bool, depth: Int, budget: inout Int) throws(AMQPDecodingError) -> [AMQPValue] {
        var content = try self.readSizedContent(small: small)
        let count = try content.readLength(small: small)
        // Every element takes at least one byte (its constructor).
        guard count <= content.readableBytes else { throw .malformedCompound }
        var elements: [AMQPValue] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try content.readValue(depth: depth + 1, budget: &budget)) }
        guard content.readableBytes == 0 else { throw .malformedCompound }
        return elements
    }

    private mutating func readArray(small: Bool, depth: Int, budget: inout Int) throws(AMQPDecodingError) -> [AMQPValue] {
        var content = try self.readSizedContent(small: small)
        let count = try content.readLength(small: small)
        let elements = try content.readArrayElements(count: count, depth: depth + 1, budget: &budget)
        guard content.readableBytes == 0 else { throw .malformedCompound }
        return elements
    }

    /// Reads an array's shared constructor (perhaps described), then `count` element bodies.
    private mutating func readArrayElements(count: Int, depth: Int, budget: inout Int) throws(AMQPDecodingError) -> [AMQPValue] {
        guard depth < AMQPDecoder.maximumDepth else { throw .nestedTooDeeply }
        let code = try self.readByte()
        if code == AMQPTypeCode.described {
            let descriptor = try self.readValue(depth: depth + 1, budget: &budget)
            guard Self.isDescriptor(descriptor) else { throw .invalidDescriptor }
            return try self.readArrayElements(count: count, depth: depth + 1, budget: &budget).map { .described(descriptor: descriptor, value: $0) }
        }
        if AMQPTypeCode.fixedWidth(code) == 0 {
            guard count <= AMQPDecoder.maximumZeroWidthElements else { throw .malformedCompound }
        } else {
            guard count <= self.readableBytes else { throw .malformedCompound }
        }
        budget -= count
        guard budget >= 0 else { throw .tooManyValues }
        var elements: [AMQPValue] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try self.readBody(code: code, depth: depth, budget: &budget)) }
        return elements
    }

    /// Reads a compound's size and returns its content, which must be all there.
    private mutating func readSizedContent(small: Bool) throws(AMQPDecodingError) -> ByteBuffer {
        let size = try self.readLength(small: small)
        // The size covers the count, which takes 1 or 4 bytes.
        guard size >= (small ? 1 : 4) else { throw .malformedCompound }
        guard let content = self.readSlice(length: size) else { throw .truncated }
        return content
    }

    private mutating func readLength(small: Bool) throws(AMQPDecodingError) -> Int {
        small ? Int(try self.readByte()) : Int(try self.readFixed(UInt32.self))
    }

    private mutating func readByte() throws(AMQPDecodingError) -> UInt8 {
        guard let byte = self.readInteger(as: UInt8.self) else { throw .truncated }
        return byte
    }

    private mutating func readFixed<T: FixedWidthInteger>(_: T.Type) throws(AMQPDecodingError) -> T {
        guard let value = self.readInteger(as: T.self) else { throw .truncated }
        return value
    }
}
