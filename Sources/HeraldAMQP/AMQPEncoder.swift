import Foundation
public import NIOCore

/// A value that cannot be encoded.
public enum AMQPEncodingError: Error, Hashable, Sendable {
    /// The elements of an array are not all of one type (one constructor), or an array is empty
    /// and its element type unknown.
    case arrayElementsDiffer
    /// A compound value is larger than 4 GiB.
    case tooLarge
}

extension ByteBuffer {
    /// Appends `value` in its most compact encoding; returns the number of bytes written.
    @discardableResult
    public mutating func writeAMQPValue(_ value: AMQPValue) throws(AMQPEncodingError) -> Int {
        let start = self.writerIndex
        try self.writeValue(value)
        return self.writerIndex - start
    }

    private mutating func writeValue(_ value: AMQPValue) throws(AMQPEncodingError) {
        switch value {
        case .described(let descriptor, let described):
            self.writeInteger(AMQPTypeCode.described)
            try self.writeValue(descriptor)
            try self.writeValue(described)
        case .list(let elements):
            try self.writeCompound(elements, empty: AMQPTypeCode.list0, small: AMQPTypeCode.list8, large: AMQPTypeCode.list32)
        case .map(let entries):
            try self.writeCompound(entries.flatMap { [$0.key, $0.value] }, empty: nil, small: AMQPTypeCode.map8, large: AMQPTypeCode.map32)
        case .array(let elements):
            try self.writeArray(elements)
        default:
            let code = Self.constructor(of: value)
            self.writeInteger(code)
            self.writePrimitiveBody(value, code: code)
        }
    }

    /// Writes a list or map: count and size in one byte each when both fit, else four. As an
    /// element of an array (`asArrayElement`), it is written without its constructor, in the
    /// four-byte form the array's shared constructor names.
    private mutating func writeCompound(
        _ elements: [AMQPValue], empty: UInt8?, small: UInt8, large: UInt8, asArrayElement: Bool = false
    ) throws(AMQPEncodingError) {
        if elements.isEmpty, let empty, !asArrayElement {
            self.writeInteger(empty)
            return
        }
        try self.writeSized(count: elements.count, small: small, large: large, asArrayElement: asArrayElement) { buffer throws(AMQPEncodingError) in
            for element in elements { try buffer.writeValue(element) }
        }
    }

    private mutating func writeArray(_ elements: [AMQPValue], asArrayElement: Bool = false) throws(AMQPEncodingError) {
        guard let first = elements.first else { throw .arrayElementsDiffer }
        try self.writeSized(count: elements.count, small: AMQPTypeCode.array8, large: AMQPTypeCode.array32, asArrayElement: asArrayElement) {
            buffer throws(AMQPEncodingError) in
            try buffer.writeArrayConstructor(of: elements, first: first)
        }
    }

    /// Writes a constructor (unless `asArrayElement`), size and count, then `content`: with
    /// four-byte size and count first, shrunk to one byte each when the result allows.
    private mutating func writeSized(
        count: Int, small: UInt8, large: UInt8, asArrayElement: Bool,
        _ content: (inout ByteBuffer) throws(AMQPEncodingError) -> Void
    ) throws(AMQPEncodingError) {
        let start = self.writerIndex
        if !asArrayElement { self.writeInteger(large) }
        let sizeIndex = self.writerIndex
        self.writeInteger(UInt32(0))
        self.writeInteger(UInt32(count))
        let contentStart = self.writerIndex
        try content(&self)
        let contentSize = self.writerIndex - contentStart
        guard contentSize + 4 <= Int(UInt32.max), count <= Int(UInt32.max) else { throw .tooLarge }
        if !asArrayElement && contentSize + 1 <= 255 && count <= 255 {
            self.setInteger(small, at: start)
            self.setInteger(UInt8(contentSize + 1), at: start + 1)
            self.setInteger(UInt8(count), at: start + 2)
            let moved = self.getSlice(at: contentStart, length: contentSize)!
            self.moveWriterIndex(to: start + 3)
            self.writeImmutableBuffer(moved)
        } else {
            self.setInteger(UInt32(contentSize + 4), at: sizeIndex)
        }
    }

    /// Writes the shared constructor of `elements`, then each element's body.
    private mutating func writeArrayConstructor(of elements: [AMQPValue], first: AMQPValue) throws(AMQPEncodingError) {
        if case .described(let descriptor, _) = first {
            var values: [AMQPValue] = []
            values.reserveCapacity(elements.count)
            for element in elements {
                guard case .described(let other, let value) = element, other == descriptor else { throw .arrayElementsDiffer }
                values.append(value)
            }
            self.writeInteger(AMQPTypeCode.described)
            try self.writeValue(descriptor)
            try self.writeArrayConstructor(of: values, first: values[0])
            return
        }
        let code = try Self.arrayConstructor(of: elements)
        self.writeInteger(code)
        for element in elements {
            switch element {
            case .list(let values):
                try self.writeCompound(values, empty: nil, small: AMQPTypeCode.list8, large: AMQPTypeCode.list32, asArrayElement: true)
            case .map(let entries):
                try self.writeCompound(
                    entries.flatMap { [$0.key, $0.value] }, empty: nil, small: AMQPTypeCode.map8, large: AMQPTypeCode.map32, asArrayElement: true)
            case .array(let values):
                try self.writeArray(values, asArrayElement: true)
            default:
                self.writePrimitiveBody(element, code: code)
            }
        }
    }

    /// The one constructor that can encode every element of an array.
    private static func arrayConstructor(of elements: [AMQPValue]) throws(AMQPEncodingError) -> UInt8 {
        let wide = Self.wideConstructor(of: elements[0])
        for element in elements.dropFirst() where Self.wideConstructor(of: element) != wide { throw .arrayElementsDiffer }
        switch wide {
        case AMQPTypeCode.uint where elements.allSatisfy({ ($0.unsigned ?? .max) <= 255 }): return AMQPTypeCode.smallUInt
        case AMQPTypeCode.ulong where elements.allSatisfy({ ($0.unsigned ?? .max) <= 255 }): return AMQPTypeCode.smallULong
        case AMQPTypeCode.int where elements.allSatisfy({ if case .int(let v) = $0 { Int8(exactly: v) != nil } else { false } }):
            return AMQPTypeCode.smallInt
        case AMQPTypeCode.long where elements.allSatisfy({ if case .long(let v) = $0 { Int8(exactly: v) != nil } else { false } }):
            return AMQPTypeCode.smallLong
        case AMQPTypeCode.binary32 where elements.allSatisfy({ ($0.bytes?.count ?? .max) <= 255 }): return AMQPTypeCode.binary8
        case AMQPTypeCode.string32 where elements.allSatisfy({ ($0.text?.utf8.count ?? .max) <= 255 }): return AMQPTypeCode.string8
        case AMQPTypeCode.symbol32 where elements.allSatisfy({ ($0.text?.utf8.count ?? .max) <= 255 }): return AMQPTypeCode.symbol8
        default: return wide
        }
    }

    /// The widest constructor of a value's type: the one an array of mixed sizes uses.
    private static func wideConstructor(of value: AMQPValue) -> UInt8 {
        switch value {
        case .null: AMQPTypeCode.null
        case .bool: AMQPTypeCode.boolean
        case .uint: AMQPTypeCode.uint
        case .ulong: AMQPTypeCode.ulong
        case .int: AMQPTypeCode.int
        case .long: AMQPTypeCode.long
        case .binary: AMQPTypeCode.binary32
        case .string: AMQPTypeCode.string32
        case .symbol: AMQPTypeCode.symbol32
        case .list: AMQPTypeCode.list32
        case .map: AMQPTypeCode.map32
        case .array: AMQPTypeCode.array32
        case .described: AMQPTypeCode.described
        default: Self.constructor(of: value)
        }
    }

    /// The most compact constructor of a primitive value.
    private static func constructor(of value: AMQPValue) -> UInt8 {
        switch value {
        case .null: AMQPTypeCode.null
        case .bool(let flag): flag ? AMQPTypeCode.true : AMQPTypeCode.false
        case .ubyte: AMQPTypeCode.ubyte
        case .ushort: AMQPTypeCode.ushort
        case .uint(let number): number == 0 ? AMQPTypeCode.uint0 : number <= 255 ? AMQPTypeCode.smallUInt : AMQPTypeCode.uint
        case .ulong(let number): number == 0 ? AMQPTypeCode.ulong0 : number <= 255 ? AMQPTypeCode.smallULong : AMQPTypeCode.ulong
        case .byte: AMQPTypeCode.byte
        case .short: AMQPTypeCode.short
        case .int(let number): Int8(exactly: number) != nil ? AMQPTypeCode.smallInt : AMQPTypeCode.int
        case .long(let number): Int8(exactly: number) != nil ? AMQPTypeCode.smallLong : AMQPTypeCode.long
        case .float: AMQPTypeCode.float
        case .double: AMQPTypeCode.double
        case .decimal32: AMQPTypeCode.decimal32
        case .decimal64: AMQPTypeCode.decimal64
        case .decimal128: AMQPTypeCode.decimal128
        case .char: AMQPTypeCode.char
        case .timestamp: AMQPTypeCode.timestamp
        case .uuid: AMQPTypeCode.uuid
        case .binary(let bytes): bytes.count <= 255 ? AMQPTypeCode.binary8 : AMQPTypeCode.binary32
        case .string(let text): text.utf8.count <= 255 ? AMQPTypeCode.string8 : AMQPTypeCode.string32
        case .symbol(let text): text.utf8.count <= 255 ? AMQPTypeCode.symbol8 : AMQPTypeCode.symbol32
        case .list, .map, .array, .described: AMQPTypeCode.null  // not primitives; written elsewhere
        }
    }

    /// Writes what follows the constructor `code` for a primitive `value`.
    private mutating func writePrimitiveBody(_ value: AMQPValue, code: UInt8) {
        switch value {
        case .null: break
        case .bool(let flag): if code == AMQPTypeCode.boolean { self.writeInteger(UInt8(flag ? 1 : 0)) }
        case .ubyte(let number): self.writeInteger(number)
        case .ushort(let number): self.writeInteger(number)
        case .uint(let number):
            switch code {
            case AMQPTypeCode.uint0: break
            case AMQPTypeCode.smallUInt: self.writeInteger(UInt8(number))
            default: self.writeInteger(number)
            }
        case .ulong(let number):
            switch code {
            case AMQPTypeCode.ulong0: break
            case AMQPTypeCode.smallULong: self.writeInteger(UInt8(number))
            default: self.writeInteger(number)
            }
        case .byte(let number): self.writeInteger(number)
        case .short(let number): self.writeInteger(number)
        case .int(let number): if code == AMQPTypeCode.smallInt { self.writeInteger(Int8(number)) } else { self.writeInteger(number) }
        case .long(let number): if code == AMQPTypeCode.smallLong { self.writeInteger(Int8(number)) } else { self.writeInteger(number) }
        case .float(let number): self.writeInteger(number.bitPattern)
        case .double(let number): self.writeInteger(number.bitPattern)
        case .decimal32(let bits): self.writeInteger(bits)
        case .decimal64(let bits): self.writeInteger(bits)
        case .decimal128(let high, let low):
            self.writeInteger(high)
            self.writeInteger(low)
        case .char(let scalar): self.writeInteger(scalar.value)
        case .timestamp(let milliseconds): self.writeInteger(milliseconds)
        case .uuid(let uuid): withUnsafeBytes(of: uuid.uuid) { _ = self.writeBytes($0) }
        case .binary(let bytes):
            self.writeLength(bytes.count, small: code == AMQPTypeCode.binary8)
            self.writeBytes(bytes)
        case .string(let text), .symbol(let text):
            self.writeLength(text.utf8.count, small: code == AMQPTypeCode.string8 || code == AMQPTypeCode.symbol8)
            self.writeString(text)
        case .list, .map, .array, .described: break
        }
    }

    private mutating func writeLength(_ length: Int, small: Bool) {
        if small { self.writeInteger(UInt8(length)) } else { self.writeInteger(UInt32(length)) }
    }
}
