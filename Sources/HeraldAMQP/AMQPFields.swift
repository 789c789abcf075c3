/// A described list whose fields do not hold what the specification says: the peer is answered
/// with `amqp:invalid-field` or `amqp:decode-error`.
public struct AMQPFieldError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The composite type (`open`, `attach`…).
    public var type: String
    /// The field, or `nil` when the value is not a list of that type at all.
    public var field: String?

    /// An error in `field` of `type`, or in the whole value when `field` is `nil`.
    public init(type: String, field: String?) {
        self.type = type
        self.field = field
    }

    public var description: String {
        if let field { "the \(field) field of \(type) is missing or of the wrong type" } else { "the value is not a \(type)" }
    }
}

/// Reads the fields of a described list by position, with the types and defaults of the
/// specification; a field past the end of the list is `null`.
struct AMQPFieldReader {
    let type: String
    let fields: [AMQPValue]

    /// The fields of a list read as the composite `type`.
    init(type: String, fields: [AMQPValue]) {
        self.type = type
        self.fields = fields
    }

    /// The fields of `value` when it is described by `code` (or the symbolic `name`).
    init(_ value: AMQPValue, code: UInt64, name: String) throws(AMQPFieldError) {
        guard case .described(let descriptor, let body) = value else { throw AMQPFieldError(type: name, field: nil) }
        switch descriptor {
        case .ulong(code), .symbol("amqp:\(name):list"): break
        default: throw AMQPFieldError(type: name, field: nil)
        }
        switch body {
        case .list(let fields): self.fields = fields
        default: throw AMQPFieldError(type: name, field: nil)
        }
        self.type = name
    }

    /// The numeric code of a described value's descriptor: the `ulong` itself, or the code of a
    /// symbolic name (`amqp:NAME:list`) among `names`.
    static func code(of value: AMQPValue, names: [String: UInt64]) -> UInt64? {
        guard case .described(let descriptor, _) = value else { return nil }
        switch descriptor {
        case .ulong(let code): return code
        case .symbol(let name): return names[name]
        default: return nil
        }
    }

    subscript(index: Int) -> AMQPValue { index < self.fields.count ? self.fields[index] : .null }

    func fail(_ field: String) -> AMQPFieldError { AMQPFieldError(type: self.type, field: field) }

    func string(_ index: Int, _ name: String) throws(AMQPFieldError) -> String? {
        switch self[index] {
        case .null: return nil
        case .string(let text): return text
        default: throw self.fail(name)
        }
    }

    func symbol(_ index: Int, _ name: String) throws(AMQPFieldError) -> String? {
        switch self[index] {
        case .null: return nil
        case .symbol(let text): return text
        default: throw self.fail(name)
        }
    }

    func uint(_ index: Int, _ name: String) throws(AMQPFieldError) -> UInt32? {
        switch self[index] {
        case .null: return nil
        case .uint(let number): return number
        default: throw self.fail(name)
        }
    }

    func requiredUInt(_ index: Int, _ name: String) throws(AMQPFieldError) -> UInt32 {
        guard let number = try self.uint(index, name) else { throw self.fail(name) }
        return number
    }

    func ushort(_ index: Int, _ name: String) throws(AMQPFieldError) -> UInt16? {
        switch self[index] {
        case .null: return nil
        case .ushort(let number): return number
        default: throw self.fail(name)
        }
    }

    func ubyte(_ index: Int, _ name: String) throws(AMQPFieldError) -> UInt8? {
        switch self[index] {
        case .null: return nil
        case .ubyte(let number): return number
        default: throw self.fail(name)
        }
    }

    func ulong(_ index: Int, _ name: String) throws(AMQPFieldError) -> UInt64? {
        switch self[index] {
        case .null: return nil
        case .ulong(let number): return number
        default: throw self.fail(name)
        }
    }

    func bool(_ index: Int, _ name: String) throws(AMQPFieldError) -> Bool? {
        switch self[index] {
        case .null: return nil
        case .bool(let flag): return flag
        default: throw self.fail(name)
        }
    }

    func binary(_ index: Int, _ name: String) throws(AMQPFieldError) -> [UInt8]? {
        switch self[index] {
        case .null: return nil
        case .binary(let bytes): return bytes
        default: throw self.fail(name)
        }
    }

    func map(_ index: Int, _ name: String) throws(AMQPFieldError) -> [AMQPMapEntry]? {
        switch self[index] {
        case .null: return nil
        case .map(let entries): return entries
        default: throw self.fail(name)
        }
    }

    /// A multiple symbol: one symbol or an array of them.
    func symbols(_ index: Int, _ name: String) throws(AMQPFieldError) -> [String]? {
        switch self[index] {
        case .null: return nil
        case .symbol(let text): return [text]
        case .array(let values):
            var symbols: [String] = []
            for value in values {
                guard case .symbol(let text) = value else { throw self.fail(name) }
                symbols.append(text)
            }
            return symbols
        default: throw self.fail(name)
        }
    }
}

/// Builds the fields of a described list, dropping trailing nulls (as the specification allows).
struct AMQPFieldWriter {
    private var fields: [AMQPValue] = []

    mutating func append(_ value: AMQPValue) { self.fields.append(value) }

    mutating func append(_ text: String?, symbol: Bool = false) {
        self.fields.append(text.map { symbol ? .symbol($0) : .string($0) } ?? .null)
    }

    mutating func append(_ number: UInt32?) { self.fields.append(number.map { .uint($0) } ?? .null) }
    mutating func append(_ number: UInt16?) { self.fields.append(number.map { .ushort($0) } ?? .null) }
    mutating func append(_ number: UInt8?) { self.fields.append(number.map { .ubyte($0) } ?? .null) }
    mutating func append(_ number: UInt64?) { self.fields.append(number.map { .ulong($0) } ?? .null) }
    mutating func append(_ flag: Bool?) { self.fields.append(flag.map { .bool($0) } ?? .null) }
    mutating func append(_ bytes: [UInt8]?) { self.fields.append(bytes.map { .binary($0) } ?? .null) }
    mutating func append(_ entries: [AMQPMapEntry]?) { self.fields.append(entries.map { .map($0) } ?? .null) }
    mutating func append(symbols: [String]?) {
        guard let symbols, !symbols.isEmpty else { return self.fields.append(.null) }
        self.fields.append(.array(symbols.map { .symbol($0) }))
    }

    /// The list, with trailing nulls dropped.
    var list: AMQPValue {
        var fields = self.fields
        while fields.last == .null { fields.removeLast() }
        return .list(fields)
    }

    /// The described list, with trailing nulls dropped unless `keepingAll`.
    func described(_ code: UInt64, keepingAll: Bool = false) -> AMQPValue {
        var fields = self.fields
        if !keepingAll { while fields.last == .null { fields.removeLast() } }
        return .described(descriptor: .ulong(code), value: .list(fields))
    }
}
