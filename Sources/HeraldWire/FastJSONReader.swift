/// A pull reader over the bytes of a JSON document, for the request bodies the server decodes on
/// every call (send, receive, complete). It reads only the plain forms: strings without escapes,
/// integers without fraction or exponent, `true` and `false`. Anything else — an escape, a
/// `null`, a float, invalid UTF-8, a duplicate or unknown field — makes it give up
/// (``GiveUp``), and the body goes through ``WireDecoding`` instead, which decides and words the
/// error. So the reader never accepts a body the strict decoder would refuse, and never words an
/// error itself.
struct FastJSONReader: ~Copyable {
    /// The body has a form this reader does not read; ``WireDecoding`` takes it.
    struct GiveUp: Error {}

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: Structure

    /// Reads `{`; `true` when a first field follows, `false` for `{}`.
    mutating func beginObject() throws(GiveUp) -> Bool {
        try self.expect(UInt8(ascii: "{"))
        return !self.consume(UInt8(ascii: "}"))
    }

    /// Reads a field name and its `:`; the name's bytes stay valid as long as the body.
    mutating func fieldName() throws(GiveUp) -> UnsafeRawBufferPointer {
        let (name, _) = try self.stringBytes()
        try self.expect(UInt8(ascii: ":"))
        return name
    }

    /// Reads the `:` after a dictionary key read with ``string()``.
    mutating func colon() throws(GiveUp) {
        try self.expect(UInt8(ascii: ":"))
    }

    /// After a field's value: `true` when `,` announces another field, `false` at `}`.
    mutating func nextField() throws(GiveUp) -> Bool {
        try self.commaOrClose(UInt8(ascii: "}"))
    }

    /// Reads `[`; `true` when a first element follows, `false` for `[]`.
    mutating func beginArray() throws(GiveUp) -> Bool {
        try self.expect(UInt8(ascii: "["))
        return !self.consume(UInt8(ascii: "]"))
    }

    /// After an element: `true` when `,` announces another element, `false` at `]`.
    mutating func nextElement() throws(GiveUp) -> Bool {
        try self.commaOrClose(UInt8(ascii: "]"))
    }

    /// Checks that only whitespace follows the document.
    mutating func end() throws(GiveUp) {
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw GiveUp() }
    }

    /// Reads a whole object, handing each field's name to `field`, which reads the value and
    /// returns whether it knows the field (an unknown field gives up).
    static func readObject(
        _ reader: inout FastJSONReader, _ field: (_ name: UnsafeRawBufferPointer, _ reader: inout FastJSONReader) throws(GiveUp) -> Bool
    ) throws(GiveUp) {
        var more = try reader.beginObject()
        while more {
            let name = try reader.fieldName()
            guard try field(name, &reader) else { throw GiveUp() }
            more = try reader.nextField()
        }
    }

    /// Reads a whole array, `element` reading each element.
    static func readArray(_ reader: inout FastJSONReader, _ element: (_ reader: inout FastJSONReader) throws(GiveUp) -> Void) throws(GiveUp) {
        var more = try reader.beginArray()
        while more {
            try element(&reader)
            more = try reader.nextElement()
        }
    }

    // MARK: Values

    /// A string without escapes, valid UTF-8.
    mutating func string() throws(GiveUp) -> String {
        let (raw, isASCII) = try self.stringBytes()
        if isASCII { return String(decoding: raw, as: UTF8.self) }
        guard let text = String(validating: raw, as: UTF8.self) else { throw GiveUp() }
        return text
    }

    /// An integer without fraction or exponent that fits in 64 bits.
    mutating func int64() throws(GiveUp) -> Int64 {
        self.skipWhitespace()
        let isNegative = self.consumeByte(UInt8(ascii: "-"))
        let start = self.index
        var magnitude: UInt64 = 0
        while self.index < self.bytes.count {
            let digit = self.bytes[self.index] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
            guard !overflow1, !overflow2 else { throw GiveUp() }
            magnitude = sum
            self.index += 1
        }
        let digits = self.index - start
        // No digits, a leading zero, or a fraction or exponent: JSON the reader leaves to the decoder.
        guard digits > 0, !(digits > 1 && self.bytes[start] == UInt8(ascii: "0")) else { throw GiveUp() }
        if self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): throw GiveUp()
            default: break
            }
        }
        if isNegative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw GiveUp() }
            return magnitude == UInt64(Int64.max) + 1 ? .min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw GiveUp() }
        return Int64(magnitude)
    }

    /// An integer that fits in `Int`.
    mutating func int() throws(GiveUp) -> Int {
        let value = try self.int64()
        guard let result = Int(exactly: value) else { throw GiveUp() }
        return result
    }

    /// `true` or `false`.
    mutating func bool() throws(GiveUp) -> Bool {
        self.skipWhitespace()
        if self.consumeLiteral("true") { return true }
        if self.consumeLiteral("false") { return false }
        throw GiveUp()
    }

    // MARK: Bytes

    private mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): self.index += 1
            default: return
            }
        }
    }

    /// Skips whitespace, then consumes `byte` if it comes next.
    private mutating func consume(_ byte: UInt8) -> Bool {
        self.skipWhitespace()
        return self.consumeByte(byte)
    }

    private mutating func consumeByte(_ byte: UInt8) -> Bool {
        guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
        self.index += 1
        return true
    }

    private mutating func expect(_ byte: UInt8) throws(GiveUp) {
        guard self.consume(byte) else { throw GiveUp() }
    }

    private mutating func commaOrClose(_ close: UInt8) throws(GiveUp) -> Bool {
        if self.consume(UInt8(ascii: ",")) { return true }
        if self.consumeByte(close) { return false }
        throw GiveUp()
    }

    private mutating func consumeLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard self.bytes.count - self.index >= count else { return false }
        for offset in 0..<count where self.bytes[self.index + offset] != literal.utf8Start[offset] { return false }
        self.index += count
        return true
    }

    /// The bytes between the quotes of a string without escapes or control characters, and
    /// whether they are all ASCII.
    private mutating func stringBytes() throws(GiveUp) -> (UnsafeRawBufferPointer, isASCII: Bool) {
        try self.expect(UInt8(ascii: "\""))
        let start = self.index
        // Eight bytes at a time while none is special (the long base64 bodies); the first word
        // with a quote, a backslash, a control or a non-ASCII byte goes on byte by byte.
        while self.index + 8 <= self.bytes.count {
            let word = UInt64(littleEndian: self.bytes.loadUnaligned(fromByteOffset: self.index, as: UInt64.self))
            guard !Self.hasSpecialByte(word) else { break }
            self.index += 8
        }
        var high: UInt8 = 0
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index])
                self.index += 1
                return (raw, high < 0x80)
            }
            guard byte >= 0x20, byte != UInt8(ascii: "\\") else { throw GiveUp() }
            high |= byte
            self.index += 1
        }
        throw GiveUp()
    }
}

extension FastJSONReader {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether one of the eight bytes of `word` is `"`, `\`, below 0x20 or above 0x7F: the bytes
    /// a plain string cannot take as they are. Exact for the word as a whole (the classic
    /// "has a byte less than n" test), not for which byte.
    static func hasSpecialByte(_ word: UInt64) -> Bool {
        func hasZeroByte(_ value: UInt64) -> Bool { (value &- Self.ones) & ~value & Self.highBits != 0 }
        let below0x20 = (word &- Self.ones &* 0x20) & ~word & Self.highBits != 0
        return word & Self.highBits != 0 || below0x20
            || hasZeroByte(word ^ (Self.ones &* UInt64(UInt8(ascii: "\""))))
            || hasZeroByte(word ^ (Self.ones &* UInt64(UInt8(ascii: "\\"))))
    }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes spell `name`.
    func spells(_ name: StaticString) -> Bool {
        guard self.count == name.utf8CodeUnitCount else { return false }
        for offset in 0..<self.count where self[offset] != name.utf8Start[offset] { return false }
        return true
    }
}
