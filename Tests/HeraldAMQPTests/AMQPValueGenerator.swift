import Foundation
import HeraldAMQP

/// Random AMQP values from a seed, for round-trip and mutation tests.
struct AMQPValueGenerator {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    mutating func next() -> UInt64 {
        // xorshift64*
        self.state ^= self.state >> 12
        self.state ^= self.state << 25
        self.state ^= self.state >> 27
        return self.state &* 0x2545_F491_4F6C_DD1D
    }

    mutating func below(_ bound: Int) -> Int { Int(self.next() % UInt64(bound)) }

    /// A value nested at most `depth` deep.
    mutating func value(depth: Int = 4) -> AMQPValue {
        let kinds = depth > 0 ? 27 : 23
        switch self.below(kinds) {
        case 0: return .null
        case 1: return .bool(self.below(2) == 0)
        case 2: return .ubyte(UInt8(truncatingIfNeeded: self.next()))
        case 3: return .ushort(UInt16(truncatingIfNeeded: self.next()))
        case 4: return .uint(self.interesting(UInt32.self))
        case 5: return .ulong(self.interesting(UInt64.self))
        case 6: return .byte(Int8(truncatingIfNeeded: self.next()))
        case 7: return .short(Int16(truncatingIfNeeded: self.next()))
        case 8: return .int(self.interesting(Int32.self))
        case 9: return .long(self.interesting(Int64.self))
        case 10: return .float(Float(bitPattern: UInt32(truncatingIfNeeded: self.next())))
        case 11: return .double(Double(bitPattern: self.next()))
        case 12: return .decimal32(UInt32(truncatingIfNeeded: self.next()))
        case 13: return .decimal64(self.next())
        case 14: return .decimal128(self.next(), self.next())
        case 15: return .char(Unicode.Scalar(UInt32(self.below(0xD7FF)))!)
        case 16: return .timestamp(Int64(bitPattern: self.next()))
        case 17: return .uuid(UUID())
        case 18: return .binary((0..<self.length()).map { _ in UInt8(truncatingIfNeeded: self.next()) })
        case 19: return .string(self.text())
        case 20: return .symbol(String((0..<self.length()).map { _ in Character(Unicode.Scalar(UInt8(97 + self.below(26)))) }))
        case 21: return .described(descriptor: .ulong(UInt64(self.below(0x80))), value: self.value(depth: 0))
        case 22: return .described(descriptor: .symbol("herald:test"), value: .string(self.text()))
        case 23: return .list((0..<self.below(6)).map { _ in self.value(depth: depth - 1) })
        case 24: return .map((0..<self.below(4)).map { _ in AMQPMapEntry(self.value(depth: 0), self.value(depth: depth - 1)) })
        case 25: return .array(self.homogeneous(depth: depth - 1))
        default: return .described(descriptor: .ulong(0x73), value: .list((0..<self.below(13)).map { _ in self.value(depth: depth - 1) }))
        }
    }

    /// Values of one type, as an array holds.
    private mutating func homogeneous(depth: Int) -> [AMQPValue] {
        let count = 1 + self.below(5)
        switch self.below(9) {
        case 0: return (0..<count).map { _ in .uint(self.interesting(UInt32.self)) }
        case 1: return (0..<count).map { _ in .long(self.interesting(Int64.self)) }
        case 2: return (0..<count).map { _ in .symbol(self.text()) }
        case 3: return (0..<count).map { _ in .binary((0..<self.length()).map { _ in UInt8(truncatingIfNeeded: self.next()) }) }
        case 4: return (0..<count).map { _ in .bool(self.below(2) == 0) }
        case 5: return (0..<count).map { _ in .uuid(UUID()) }
        case 6: return (0..<count).map { _ in .list((0..<self.below(3)).map { _ in self.value(depth: 0) }) }
        case 7: return (0..<count).map { _ in .described(descriptor: .ulong(0x24), value: .list([])) }
        default: return (0..<count).map { _ in .null }
        }
    }

    /// Mostly short, now and then past a one-byte length.
    private mutating func length() -> Int { self.below(10) == 0 ? 250 + self.below(20) : self.below(12) }

    private mutating func text() -> String {
        let alphabet: [Character] = ["a", "é", "€", "😀", "\"", "\u{0}", "z", "\n"]
        return String((0..<self.length()).map { _ in alphabet[self.below(alphabet.count)] })
    }

    /// Values near the edges of the compact encodings.
    private mutating func interesting<T: FixedWidthInteger>(_: T.Type) -> T {
        switch self.below(6) {
        case 0: 0
        case 1: T(truncatingIfNeeded: self.below(256))
        case 2: T.max
        case 3: T.min
        case 4: T(truncatingIfNeeded: 255 + self.below(3))
        default: T(truncatingIfNeeded: self.next())
        }
    }
}
