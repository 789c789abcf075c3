/// The format codes of AMQP 1.0's primitive types (part 1, section 1.6).
enum AMQPTypeCode {
    static let described: UInt8 = 0x00
    static let null: UInt8 = 0x40
    static let boolean: UInt8 = 0x56
    static let `true`: UInt8 = 0x41
    static let `false`: UInt8 = 0x42
    static let ubyte: UInt8 = 0x50
    static let ushort: UInt8 = 0x60
    static let uint: UInt8 = 0x70
    static let smallUInt: UInt8 = 0x52
    static let uint0: UInt8 = 0x43
    static let ulong: UInt8 = 0x80
    static let smallULong: UInt8 = 0x53
    static let ulong0: UInt8 = 0x44
    static let byte: UInt8 = 0x51
    static let short: UInt8 = 0x61
    static let int: UInt8 = 0x71
    static let smallInt: UInt8 = 0x54
    static let long: UInt8 = 0x81
    static let smallLong: UInt8 = 0x55
    static let float: UInt8 = 0x72
    static let double: UInt8 = 0x82
    static let decimal32: UInt8 = 0x74
    static let decimal64: UInt8 = 0x84
    static let decimal128: UInt8 = 0x94
    static let char: UInt8 = 0x73
    static let timestamp: UInt8 = 0x83
    static let uuid: UInt8 = 0x98
    static let binary8: UInt8 = 0xa0
    static let binary32: UInt8 = 0xb0
    static let string8: UInt8 = 0xa1
    static let string32: UInt8 = 0xb1
    static let symbol8: UInt8 = 0xa3
    static let symbol32: UInt8 = 0xb3
    static let list0: UInt8 = 0x45
    static let list8: UInt8 = 0xc0
    static let list32: UInt8 = 0xd0
    static let map8: UInt8 = 0xc1
    static let map32: UInt8 = 0xd1
    static let array8: UInt8 = 0xe0
    static let array32: UInt8 = 0xf0

    /// The width of a value after a fixed-width code, or `nil` for a variable-width or compound code.
    static func fixedWidth(_ code: UInt8) -> Int? {
        switch code {
        case null, `true`, `false`, uint0, ulong0, list0: 0
        case boolean, ubyte, smallUInt, smallULong, byte, smallInt, smallLong: 1
        case ushort, short: 2
        case uint, int, float, decimal32, char: 4
        case ulong, long, double, decimal64, timestamp: 8
        case decimal128, uuid: 16
        default: nil
        }
    }
}
