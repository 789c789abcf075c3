import Foundation

/// A `Decoder` over JSONDecoder's own that refuses, in every object it opens, a key the type
/// being decoded does not know and a `null` (an absent optional field is left out), so that
/// strict decoding costs one pass over the body.
struct StrictDecoder: Decoder {
    let base: any Decoder

    init(_ base: any Decoder) { self.base = base }

    var codingPath: [any CodingKey] { self.base.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { self.base.userInfo }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let all = try self.base.container(keyedBy: AnyFieldKey.self)
        var rejected: (key: String, isNull: Bool)?
        for key in all.allKeys {
            let isUnknown = Key(stringValue: key.stringValue) == nil
            let isNull = try !isUnknown && all.decodeNil(forKey: key)
            guard isUnknown || isNull else { continue }
            // The first in name order, as a stable answer whatever order the client wrote.
            if rejected.map({ key.stringValue < $0.key }) ?? true { rejected = (key.stringValue, isNull) }
        }
        if let rejected {
            throw RejectedField(path: Self.describe(self.codingPath, then: rejected.key), isNull: rejected.isNull)
        }
        return KeyedDecodingContainer(StrictKeyedContainer<Key>(base: all))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        StrictUnkeyedContainer(base: try self.base.unkeyedContainer())
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        StrictSingleValueContainer(base: try self.base.singleValueContainer(), decoder: self)
    }

    /// `path` followed by `key`, as `messages[0].subject`.
    static func describe(_ path: [any CodingKey], then key: String? = nil) -> String {
        var text = ""
        for element in path {
            if let index = element.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? element.stringValue : "." + element.stringValue
            }
        }
        if let key { text += text.isEmpty ? key : "." + key }
        return text
    }
}

/// A field of a request body that its type refuses: unknown to it, or `null`.
struct RejectedField: Error {
    let path: String
    let isNull: Bool

    var message: String {
        self.isNull ? "field '\(self.path)' is null: leave an absent field out" : "unknown field '\(self.path)' in the request body"
    }
}

/// Any key of a JSON object.
private struct AnyFieldKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }
    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
    init(_ key: some CodingKey) {
        self.stringValue = key.stringValue
        self.intValue = key.intValue
    }
}

/// Whether values of `type` are leaves the JSON decoder reads itself (its own strategies apply).
private func isLeaf(_ type: Any.Type) -> Bool {
    type == Data.self || type == Date.self || type == URL.self || type == Decimal.self
}

/// Reads through the container of every key that ``StrictDecoder`` checked, so that an object's
/// fields are gathered once.
private struct StrictKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let base: KeyedDecodingContainer<AnyFieldKey>

    var codingPath: [any CodingKey] { self.base.codingPath }
    var allKeys: [Key] { self.base.allKeys.compactMap { Key(stringValue: $0.stringValue) } }
    func contains(_ key: Key) -> Bool { self.base.contains(AnyFieldKey(key)) }
    func decodeNil(forKey key: Key) throws -> Bool { try self.base.decodeNil(forKey: AnyFieldKey(key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try self.base.decode(type, forKey: AnyFieldKey(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try self.base.decode(type, forKey: AnyFieldKey(key)) }

    // One look-up per optional field (the protocol's default asks contains, decodeNil, then decode);
    // a `null` was refused when the container opened, so absent is the only nil.
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try self.base.decodeIfPresent(type, forKey: AnyFieldKey(key)) }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard self.base.contains(AnyFieldKey(key)) else { return nil }
        return try self.decode(type, forKey: key)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        if isLeaf(type) { return try self.base.decode(type, forKey: AnyFieldKey(key)) }
        return try T(from: StrictDecoder(try self.base.superDecoder(forKey: AnyFieldKey(key))))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try StrictDecoder(try self.base.superDecoder(forKey: AnyFieldKey(key))).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        StrictUnkeyedContainer(base: try self.base.nestedUnkeyedContainer(forKey: AnyFieldKey(key)))
    }

    func superDecoder() throws -> any Decoder { StrictDecoder(try self.base.superDecoder()) }
    func superDecoder(forKey key: Key) throws -> any Decoder { StrictDecoder(try self.base.superDecoder(forKey: AnyFieldKey(key))) }
}

private struct StrictUnkeyedContainer: UnkeyedDecodingContainer {
    var base: any UnkeyedDecodingContainer

    var codingPath: [any CodingKey] { self.base.codingPath }
    var count: Int? { self.base.count }
    var isAtEnd: Bool { self.base.isAtEnd }
    var currentIndex: Int { self.base.currentIndex }

    mutating func decodeNil() throws -> Bool { try self.base.decodeNil() }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try self.base.decode(type) }
    mutating func decode(_ type: String.Type) throws -> String { try self.base.decode(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try self.base.decode(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try self.base.decode(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try self.base.decode(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try self.base.decode(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try self.base.decode(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try self.base.decode(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try self.base.decode(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try self.base.decode(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try self.base.decode(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try self.base.decode(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try self.base.decode(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try self.base.decode(type) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if isLeaf(type) { return try self.base.decode(type) }
        return try T(from: StrictDecoder(try self.base.superDecoder()))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try StrictDecoder(try self.base.superDecoder()).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        StrictUnkeyedContainer(base: try self.base.nestedUnkeyedContainer())
    }

    mutating func superDecoder() throws -> any Decoder { StrictDecoder(try self.base.superDecoder()) }
}

private struct StrictSingleValueContainer: SingleValueDecodingContainer {
    let base: any SingleValueDecodingContainer
    let decoder: StrictDecoder

    var codingPath: [any CodingKey] { self.base.codingPath }
    func decodeNil() -> Bool { self.base.decodeNil() }
    func decode(_ type: Bool.Type) throws -> Bool { try self.base.decode(type) }
    func decode(_ type: String.Type) throws -> String { try self.base.decode(type) }
    func decode(_ type: Double.Type) throws -> Double { try self.base.decode(type) }
    func decode(_ type: Float.Type) throws -> Float { try self.base.decode(type) }
    func decode(_ type: Int.Type) throws -> Int { try self.base.decode(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try self.base.decode(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try self.base.decode(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try self.base.decode(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try self.base.decode(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try self.base.decode(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try self.base.decode(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try self.base.decode(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try self.base.decode(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try self.base.decode(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if isLeaf(type) { return try self.base.decode(type) }
        // A value decoded through a single-value container is the same JSON value as this decoder's.
        return try T(from: self.decoder)
    }
}
