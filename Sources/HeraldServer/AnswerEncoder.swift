import Foundation
import HeraldCore

/// Writes an `Encodable` answer straight into JSON bytes, in one pass and without the value tree
/// Foundation's `JSONEncoder` builds first: a receive answers up to 100 messages, and encoding
/// them was the largest cost of the request.
///
/// It covers what the API's answers are made of (objects, arrays, strings, integers, Booleans,
/// finite doubles, `nil` left out as `encodeIfPresent` does); anything else (a `Data`, a `Date`, a
/// non-finite double, a value that encodes nothing) throws ``Unsupported``, and
/// ``Reply`` then falls back to `JSONEncoder`. Keys come in the order the type encodes them.
struct AnswerEncoder {
    /// A value this encoder does not write; `JSONEncoder` does.
    struct Unsupported: Error {}

    /// The JSON of `value`.
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let writer = JSONByteWriter()
        writer.bytes.reserveCapacity(1024)
        try writer.encodeValue(value)
        return writer.bytes
    }
}

/// The bytes being written and the containers open in them.
private final class JSONByteWriter {
    // One writer per answer, on one task: the run-time exclusivity checks of a class property
    // cost more than the appends they guard.
    @exclusivity(unchecked) var bytes: [UInt8] = []
    /// Per open container: whether it is an object, and whether it has an element yet.
    @exclusivity(unchecked) private var open: [(isObject: Bool, hasElement: Bool)] = []

    /// Writes one whole value: `value` opens at most one container, closed when it returns.
    func encodeValue(_ value: some Encodable) throws {
        let depth = self.open.count
        let start = self.bytes.count
        try value.encode(to: ValueEncoder(writer: self, depth: depth))
        while self.open.count > depth {
            self.bytes.append(self.open.removeLast().isObject ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }
        if self.bytes.count == start { throw AnswerEncoder.Unsupported() }
    }

    /// Opens a container for the value being written at `depth`, once.
    func openContainer(isObject: Bool, depth: Int) throws {
        if self.open.count == depth + 1 {
            guard self.open[depth].isObject == isObject else { throw AnswerEncoder.Unsupported() }
            return
        }
        guard self.open.count == depth else { throw AnswerEncoder.Unsupported() }
        self.open.append((isObject, false))
        self.bytes.append(isObject ? UInt8(ascii: "{") : UInt8(ascii: "["))
    }

    /// Starts the next element of the innermost container (and writes `"key":` in an object).
    func beginElement(key: String?) {
        if self.open[self.open.count - 1].hasElement {
            self.bytes.append(UInt8(ascii: ","))
        } else {
            self.open[self.open.count - 1].hasElement = true
        }
        if let key {
            self.writeString(key)
            self.bytes.append(UInt8(ascii: ":"))
        }
    }

    func writeString(_ string: String) {
        JSONText.appendString(string, to: &self.bytes)
    }

    func writeInteger(_ value: some BinaryInteger) {
        if let value = Int64(exactly: value) {
            JSONText.appendInteger(value, to: &self.bytes)
        } else {
            self.bytes += String(value).utf8
        }
    }

    func writeDouble(_ value: Double) throws {
        guard JSONText.appendDouble(value, to: &self.bytes) else { throw AnswerEncoder.Unsupported() }
    }

    func writeBool(_ value: Bool) {
        JSONText.appendBool(value, to: &self.bytes)
    }

    /// Writes a leaf or nested value as the next element.
    func write<T: Encodable>(_ value: T) throws {
        if let string = value as? String {
            self.writeString(string)
        } else if let flag = value as? Bool {
            self.writeBool(flag)
        } else if let number = value as? any BinaryInteger {
            self.writeInteger(number)
        } else if let number = value as? Double {
            try self.writeDouble(number)
        } else if value is Data || value is Date || value is URL || value is Decimal || value is Float {
            throw AnswerEncoder.Unsupported()
        } else {
            try self.encodeValue(value)
        }
    }
}

/// The encoder of one value, at a container depth.
private struct ValueEncoder: Encoder {
    let writer: JSONByteWriter
    let depth: Int
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        // Opened now, so that an object without fields is still an object; a mismatch fails at the first field.
        try? self.writer.openContainer(isObject: true, depth: self.depth)
        return KeyedEncodingContainer(ObjectContainer<Key>(writer: self.writer, depth: self.depth))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        ArrayContainer(writer: self.writer, depth: self.depth)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValue(writer: self.writer)
    }
}

private struct ObjectContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let writer: JSONByteWriter
    let depth: Int
    var codingPath: [any CodingKey] { [] }

    private func element(_ key: Key) throws {
        try self.writer.openContainer(isObject: true, depth: self.depth)
        self.writer.beginElement(key: key.stringValue)
    }

    mutating func encodeNil(forKey key: Key) throws {
        try self.element(key)
        self.writer.bytes += "null".utf8
    }
    mutating func encode(_ value: Bool, forKey key: Key) throws {
        try self.element(key)
        self.writer.writeBool(value)
    }
    mutating func encode(_ value: String, forKey key: Key) throws {
        try self.element(key)
        self.writer.writeString(value)
    }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        try self.element(key)
        try self.writer.writeDouble(value)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws {
        try self.element(key)
        self.writer.writeInteger(value)
    }
    mutating func encode(_ value: Int64, forKey key: Key) throws {
        try self.element(key)
        self.writer.writeInteger(value)
    }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try self.element(key)
        try self.writer.write(value)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(FailingContainer<NestedKey>())
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { FailingContainer<Key>() }
    mutating func superEncoder() -> any Encoder { FailingEncoder() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { FailingEncoder() }
}

private struct ArrayContainer: UnkeyedEncodingContainer {
    let writer: JSONByteWriter
    let depth: Int
    private(set) var count = 0
    var codingPath: [any CodingKey] { [] }

    init(writer: JSONByteWriter, depth: Int) {
        self.writer = writer
        self.depth = depth
        // An empty array is still an array.
        try? writer.openContainer(isObject: false, depth: depth)
    }

    mutating func encodeNil() throws {
        try self.element()
        self.writer.bytes += "null".utf8
    }
    mutating func encode(_ value: String) throws {
        try self.element()
        self.writer.writeString(value)
    }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try self.element()
        try self.writer.write(value)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(FailingContainer<NestedKey>())
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { FailingContainer<ArrayKey>() }
    mutating func superEncoder() -> any Encoder { FailingEncoder() }

    private mutating func element() throws {
        try self.writer.openContainer(isObject: false, depth: self.depth)
        self.writer.beginElement(key: nil)
        self.count += 1
    }
}

private struct SingleValue: SingleValueEncodingContainer {
    let writer: JSONByteWriter
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { self.writer.bytes += "null".utf8 }
    mutating func encode(_ value: Bool) throws { self.writer.writeBool(value) }
    mutating func encode(_ value: String) throws { self.writer.writeString(value) }
    mutating func encode(_ value: Double) throws { try self.writer.writeDouble(value) }
    mutating func encode(_ value: Int) throws { self.writer.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { self.writer.writeInteger(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try self.writer.write(value) }
}

private struct ArrayKey: CodingKey {
    var stringValue: String { "" }
    var intValue: Int? { nil }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { nil }
}

/// Nested containers and super encoders, which no answer uses: whatever is written through them
/// fails, and the answer falls back to `JSONEncoder`.
private struct FailingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol, UnkeyedEncodingContainer {
    var codingPath: [any CodingKey] { [] }
    var count: Int { 0 }
    mutating func encodeNil(forKey key: Key) throws { throw AnswerEncoder.Unsupported() }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { throw AnswerEncoder.Unsupported() }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(FailingContainer<NestedKey>())
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { self }
    mutating func superEncoder() -> any Encoder { FailingEncoder() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { FailingEncoder() }
    mutating func encodeNil() throws { throw AnswerEncoder.Unsupported() }
    mutating func encode<T: Encodable>(_ value: T) throws { throw AnswerEncoder.Unsupported() }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(FailingContainer<NestedKey>())
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { self }
}

private struct FailingEncoder: Encoder {
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { KeyedEncodingContainer(FailingContainer<Key>()) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { FailingContainer<ArrayKey>() }
    func singleValueContainer() -> any SingleValueEncodingContainer { FailingSingleValue() }
}

private struct FailingSingleValue: SingleValueEncodingContainer {
    var codingPath: [any CodingKey] { [] }
    mutating func encodeNil() throws { throw AnswerEncoder.Unsupported() }
    mutating func encode<T: Encodable>(_ value: T) throws { throw AnswerEncoder.Unsupported() }
}
