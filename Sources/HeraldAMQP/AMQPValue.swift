public import Foundation

/// A value of the AMQP 1.0 type system (OASIS AMQP 1.0, part 1): a primitive, a compound (list,
/// map, array) or a described value.
///
/// Equality compares floating-point values by their bits, so that every decoded value equals the
/// value it was encoded from (NaN included).
public indirect enum AMQPValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case ubyte(UInt8)
    case ushort(UInt16)
    case uint(UInt32)
    case ulong(UInt64)
    case byte(Int8)
    case short(Int16)
    case int(Int32)
    case long(Int64)
    case float(Float)
    case double(Double)
    /// An IEEE 754 decimal of 4 bytes, kept as its encoding.
    case decimal32(UInt32)
    /// An IEEE 754 decimal of 8 bytes, kept as its encoding.
    case decimal64(UInt64)
    /// An IEEE 754 decimal of 16 bytes, kept as its encoding (high, low).
    case decimal128(UInt64, UInt64)
    case char(Unicode.Scalar)
    /// Milliseconds since the Unix epoch.
    case timestamp(Int64)
    case uuid(UUID)
    case binary([UInt8])
    case string(String)
    case symbol(String)
    case list([AMQPValue])
    /// Key-value pairs in their order on the wire (keys may be of any type).
    case map([AMQPMapEntry])
    /// Values of one type, encoded with one shared constructor.
    case array([AMQPValue])
    /// A value with a descriptor (a `ulong` code or a `symbol` name) saying what it means.
    case described(descriptor: AMQPValue, value: AMQPValue)

    public static func == (lhs: AMQPValue, rhs: AMQPValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.ubyte(let a), .ubyte(let b)): a == b
        case (.ushort(let a), .ushort(let b)): a == b
        case (.uint(let a), .uint(let b)): a == b
        case (.ulong(let a), .ulong(let b)): a == b
        case (.byte(let a), .byte(let b)): a == b
        case (.short(let a), .short(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.long(let a), .long(let b)): a == b
        case (.float(let a), .float(let b)): a.bitPattern == b.bitPattern
        case (.double(let a), .double(let b)): a.bitPattern == b.bitPattern
        case (.decimal32(let a), .decimal32(let b)): a == b
        case (.decimal64(let a), .decimal64(let b)): a == b
        case (.decimal128(let a, let c), .decimal128(let b, let d)): a == b && c == d
        case (.char(let a), .char(let b)): a == b
        case (.timestamp(let a), .timestamp(let b)): a == b
        case (.uuid(let a), .uuid(let b)): a == b
        case (.binary(let a), .binary(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.symbol(let a), .symbol(let b)): a == b
        case (.list(let a), .list(let b)): a == b
        case (.map(let a), .map(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.described(let a, let c), .described(let b, let d)): a == b && c == d
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .float(let value): hasher.combine(value.bitPattern)
        case .double(let value): hasher.combine(value.bitPattern)
        case .string(let value), .symbol(let value): hasher.combine(value)
        case .binary(let value): hasher.combine(value)
        case .ulong(let value): hasher.combine(value)
        case .long(let value): hasher.combine(value)
        case .uint(let value): hasher.combine(value)
        case .int(let value): hasher.combine(value)
        case .list(let values), .array(let values): hasher.combine(values.count)
        case .map(let entries): hasher.combine(entries.count)
        default: hasher.combine(0)
        }
    }
}

/// One key-value pair of an AMQP map.
public struct AMQPMapEntry: Sendable, Hashable {
    /// The key.
    public var key: AMQPValue
    /// The value.
    public var value: AMQPValue

    /// A pair.
    public init(_ key: AMQPValue, _ value: AMQPValue) {
        self.key = key
        self.value = value
    }
}

extension AMQPValue {
    /// The value of `key` in a map, comparing keys as they are (a symbol key does not match a string).
    public subscript(key: AMQPValue) -> AMQPValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    /// Whether this is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The text of a string or symbol.
    public var text: String? {
        switch self {
        case .string(let value), .symbol(let value): value
        default: nil
        }
    }

    /// An unsigned or non-negative signed integer, widened.
    public var unsigned: UInt64? {
        switch self {
        case .ubyte(let value): UInt64(value)
        case .ushort(let value): UInt64(value)
        case .uint(let value): UInt64(value)
        case .ulong(let value): value
        case .byte(let value) where value >= 0: UInt64(value)
        case .short(let value) where value >= 0: UInt64(value)
        case .int(let value) where value >= 0: UInt64(value)
        case .long(let value) where value >= 0: UInt64(value)
        default: nil
        }
    }

    /// A signed or unsigned integer that fits an `Int64`, widened.
    public var signed: Int64? {
        switch self {
        case .byte(let value): Int64(value)
        case .short(let value): Int64(value)
        case .int(let value): Int64(value)
        case .long(let value): value
        case .timestamp(let value): value
        default: self.unsigned.flatMap { $0 <= UInt64(Int64.max) ? Int64($0) : nil }
        }
    }

    /// The bytes of a binary.
    public var bytes: [UInt8]? {
        if case .binary(let value) = self { return value }
        return nil
    }
}
