import Foundation
import HeraldAMQP
import NIOCore
import Testing

/// The AMQP 1.0 type codec: the encodings the specification gives, round trips of generated
/// values, and hostile bytes.
struct AMQPCodecTests {
    private func encode(_ value: AMQPValue) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try buffer.writeAMQPValue(value)
        return Array(buffer.readableBytesView)
    }

    private func decode(_ bytes: [UInt8]) throws(AMQPDecodingError) -> AMQPValue {
        var buffer = ByteBuffer(bytes: bytes)
        let value = try buffer.readAMQPValue()
        guard buffer.readableBytes == 0 else { throw .malformedCompound }
        return value
    }

    @Test func primitivesUseTheirMostCompactEncodings() throws {
        let cases: [(AMQPValue, [UInt8])] = [
            (.null, [0x40]),
            (.bool(true), [0x41]),
            (.bool(false), [0x42]),
            (.uint(0), [0x43]),
            (.uint(7), [0x52, 7]),
            (.uint(256), [0x70, 0, 0, 1, 0]),
            (.ulong(0), [0x44]),
            (.ulong(0x10), [0x53, 0x10]),
            (.ulong(0x1_0000_0000), [0x80, 0, 0, 0, 1, 0, 0, 0, 0]),
            (.int(-1), [0x54, 0xff]),
            (.int(1000), [0x71, 0, 0, 0x03, 0xe8]),
            (.long(-128), [0x55, 0x80]),
            (.long(128), [0x81, 0, 0, 0, 0, 0, 0, 0, 0x80]),
            (.ushort(0x0102), [0x60, 1, 2]),
            (.timestamp(1), [0x83, 0, 0, 0, 0, 0, 0, 0, 1]),
            (.string("hé"), [0xa1, 3, 0x68, 0xc3, 0xa9]),
            (.symbol("amqp:not-found"), [0xa3, 14] + Array("amqp:not-found".utf8)),
            (.binary([1, 2]), [0xa0, 2, 1, 2]),
            (.list([]), [0x45]),
            (.list([.uint(0), .null]), [0xc0, 3, 2, 0x43, 0x40]),
            (.map([AMQPMapEntry(.symbol("a"), .bool(true))]), [0xc1, 5, 2, 0xa3, 1, 0x61, 0x41]),
            (.array([.uint(1), .uint(2)]), [0xe0, 4, 2, 0x52, 1, 2]),
            (.described(descriptor: .ulong(0x24), value: .list([])), [0x00, 0x53, 0x24, 0x45]),
        ]
        for (value, bytes) in cases {
            #expect(try self.encode(value) == bytes, "\(value)")
            #expect(try self.decode(bytes) == value, "\(bytes)")
        }
    }

    @Test func largeCompoundsAndTextUseFourByteLengths() throws {
        let text = String(repeating: "x", count: 300)
        #expect(try self.encode(.string(text)).prefix(5) == [0xb1, 0, 0, 0x01, 0x2c])
        let list = AMQPValue.list(Array(repeating: .ulong(0x1234), count: 40))
        let encoded = try self.encode(list)
        #expect(encoded.first == 0xd0)
        #expect(try self.decode(encoded) == list)
        // An array whose elements need the wide constructor.
        let array = AMQPValue.array([.uint(1), .uint(70_000)])
        #expect(try self.encode(array) == [0xe0, 10, 2, 0x70, 0, 0, 0, 1, 0, 1, 0x11, 0x70])
    }

    @Test func everyFormOfAValueDecodesToIt() throws {
        // The non-compact forms a peer may send.
        #expect(try self.decode([0x70, 0, 0, 0, 0]) == .uint(0))
        #expect(try self.decode([0x80, 0, 0, 0, 0, 0, 0, 0, 5]) == .ulong(5))
        #expect(try self.decode([0x56, 1]) == .bool(true))
        #expect(try self.decode([0xd0, 0, 0, 0, 4, 0, 0, 0, 0]) == .list([]))
        #expect(try self.decode([0xb3, 0, 0, 0, 1, 0x61]) == .symbol("a"))
        #expect(try self.decode([0xf0, 0, 0, 0, 5, 0, 0, 0, 2, 0x41]) == .array([.bool(true), .bool(true)]))
    }

    @Test func generatedValuesRoundTrip() throws {
        var generator = AMQPValueGenerator(seed: 20_261_206)
        for index in 0..<5_000 {
            let value = generator.value()
            let bytes = try self.encode(value)
            #expect(try self.decode(bytes) == value, "value \(index): \(value)")
            // Encoding is canonical: the decoded value encodes to the same bytes.
            #expect(try self.encode(try self.decode(bytes)) == bytes, "value \(index)")
        }
    }

    @Test func mutatedBytesDecodeOrFailWithATypedError() throws {
        var generator = AMQPValueGenerator(seed: 7)
        var failures = 0
        for _ in 0..<20_000 {
            var bytes = try self.encode(generator.value())
            for _ in 0..<(1 + generator.below(3)) {
                let index = generator.below(bytes.count)
                switch generator.below(3) {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.removeSubrange(index...)
                default: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: index)
                }
                if bytes.isEmpty { break }
            }
            var buffer = ByteBuffer(bytes: bytes)
            do {
                _ = try buffer.readAMQPValue()
            } catch {
                failures += 1
                #expect(buffer.readerIndex == 0, "a failed read leaves the reader where it was")
            }
        }
        #expect(failures > 1_000, "the mutations should break many values; \(failures) failed")
    }

    @Test func hostileLengthsAndNestingAreRefusedWithoutAllocating() throws {
        // A list claiming four billion elements in a few bytes.
        #expect(throws: AMQPDecodingError.truncated) { try self.decode([0xd0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }
        #expect(throws: AMQPDecodingError.malformedCompound) { try self.decode([0xd0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40]) }
        // An array of four billion nulls: zero-width elements are capped.
        #expect(throws: AMQPDecodingError.malformedCompound) { try self.decode([0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40]) }
        // A binary longer than the bytes.
        #expect(throws: AMQPDecodingError.truncated) { try self.decode([0xb0, 0x7f, 0xff, 0xff, 0xff, 1]) }
        // A map with an odd number of elements.
        #expect(throws: AMQPDecodingError.malformedCompound) { try self.decode([0xc1, 2, 1, 0x40]) }
        // Deep nesting: lists in lists, 100 levels.
        var deep: [UInt8] = [0x40]
        for _ in 0..<100 {
            let size = UInt32(deep.count + 4)
            deep = [0xd0] + withUnsafeBytes(of: size.bigEndian, Array.init) + [0, 0, 0, 1] + deep
        }
        #expect(throws: AMQPDecodingError.nestedTooDeeply) { try self.decode(deep) }
        // A list of 200,000 nulls: 200 KB of bytes, far more memory decoded; refused past the budget.
        let nulls = 200_000
        let size = UInt32(nulls + 4)
        let manyNulls =
            [0xd0] + withUnsafeBytes(of: size.bigEndian, Array.init) + withUnsafeBytes(of: UInt32(nulls).bigEndian, Array.init)
            + [UInt8](repeating: 0x40, count: nulls)
        #expect(throws: AMQPDecodingError.tooManyValues) { try self.decode(manyNulls) }
        // An array claims its count up front: refused before its elements are decoded.
        #expect(throws: AMQPDecodingError.tooManyValues) {
            try self.decode(
                [0xf0] + withUnsafeBytes(of: UInt32(200_005).bigEndian, Array.init) + withUnsafeBytes(of: UInt32(200_000).bigEndian, Array.init) + [0x52]
                    + [UInt8](repeating: 1, count: 200_000))
        }
        #expect(throws: AMQPDecodingError.invalidText) { try self.decode([0xa1, 2, 0xc3, 0x28]) }
        #expect(throws: AMQPDecodingError.invalidDescriptor) { try self.decode([0x00, 0x40, 0x40]) }
        #expect(throws: AMQPDecodingError.unknownFormatCode(0x99)) { try self.decode([0x99]) }
    }

    @Test func arraysOfDifferentTypesCannotBeEncoded() {
        #expect(throws: AMQPEncodingError.arrayElementsDiffer) { try self.encode(.array([.uint(1), .string("a")])) }
        #expect(throws: AMQPEncodingError.arrayElementsDiffer) { try self.encode(.array([])) }
    }
}
