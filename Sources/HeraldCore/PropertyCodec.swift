package import Foundation

/// Stores application properties with their types, so a whole double stays a double.
///
/// A JSON object of key → `"<tag>:<value>"`, the tag one of `s`, `i`, `d`, `b`; Swift prints
/// doubles in a form that reads back exactly.
///
/// Every send with properties encodes them and every receive decodes them, on the store's writer,
/// so both are written by hand (``StringMapJSON``): Foundation's `JSONEncoder` and `JSONDecoder`
/// cost tens of microseconds per message there. Objects written by `JSONEncoder` (earlier
/// versions) read the same.
package enum PropertyCodec {
    /// The typed encoding of `properties`.
    package static func encode(_ properties: [String: PropertyValue]) throws -> Data {
        var tagged: [(key: String, value: String)] = []
        tagged.reserveCapacity(properties.count)
        for (key, value) in properties {
            switch value {
            case .string(let string): tagged.append((key, "s:" + string))
            case .int(let int): tagged.append((key, "i:" + String(int)))
            case .double(let double): tagged.append((key, "d:" + String(double)))
            case .bool(let bool): tagged.append((key, bool ? "b:1" : "b:0"))
            }
        }
        return Data(StringMapJSON.encode(tagged))
    }

    /// The properties `data` encodes.
    package static func decode(_ data: Data) throws -> [String: PropertyValue] {
        let tagged = try StringMapJSON.decode(data)
        var properties: [String: PropertyValue] = [:]
        properties.reserveCapacity(tagged.count)
        for (key, text) in tagged {
            // "<tag>:<value>", read by bytes: the tag and colon are ASCII.
            let bytes = text.utf8
            let tag = bytes.count >= 2 && bytes.dropFirst().first == UInt8(ascii: ":") ? bytes.first : nil
            let value = Substring(bytes.dropFirst(2))
            let parsed: PropertyValue?
            switch tag {
            case UInt8(ascii: "s"): parsed = .string(String(value))
            case UInt8(ascii: "i"): parsed = Int64(value).map { .int($0) }
            case UInt8(ascii: "d"): parsed = Double(value).map { .double($0) }
            case UInt8(ascii: "b"): parsed = .bool(value == "1")
            default: throw HeraldError(.storeFailed, "a stored application property has an unknown type tag")
            }
            guard let parsed else { throw HeraldError(.storeFailed, "a stored application property does not parse") }
            properties[key] = parsed
        }
        return properties
    }
}

/// A JSON object whose values are all strings, written and read without Foundation's coders.
///
/// The writer escapes what JSON requires (quote, backslash, control characters; ``JSONText``) and
/// writes other characters as UTF-8. The reader takes that form, and every escape `JSONEncoder` writes
/// (`\/`, `\uXXXX`, surrogate pairs); anything else (whitespace, a repeated key, invalid UTF-8,
/// another type) goes to `JSONDecoder`, which decides.
package enum StringMapJSON {
    package static func encode(_ pairs: [(key: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pairs.reduce(2) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
        out.append(UInt8(ascii: "{"))
        for (index, pair) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.appendString(pair.key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONText.appendString(pair.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    package static func decode(_ data: Data) throws -> [String: String] {
        let fast = data.withUnsafeBytes { buffer -> [String: String]? in
            var reader = Reader(bytes: buffer.bindMemory(to: UInt8.self))
            return reader.object()
        }
        if let fast { return fast }
        return try JSONDecoder().decode([String: String].self, from: data)
    }

    /// Reads the plain form; `nil` for anything else.
    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func object() -> [String: String]? {
            guard self.take(UInt8(ascii: "{")) else { return nil }
            var result: [String: String] = [:]
            if self.take(UInt8(ascii: "}")) { return self.index == self.bytes.count ? result : nil }
            repeat {
                guard let key = self.string(), self.take(UInt8(ascii: ":")), let value = self.string() else { return nil }
                guard result.updateValue(value, forKey: key) == nil else { return nil }
            } while self.take(UInt8(ascii: ","))
            guard self.take(UInt8(ascii: "}")), self.index == self.bytes.count else { return nil }
            return result
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
            self.index += 1
            return true
        }

        private mutating func string() -> String? {
            guard self.take(UInt8(ascii: "\"")) else { return nil }
            let start = self.index
            // Most strings have no escape: they are taken as they are.
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                if byte == UInt8(ascii: "\"") {
                    let text = String(validating: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
                    self.index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { return self.escapedString(from: start) }
                if byte < 0x20 { return nil }
                self.index += 1
            }
            return nil
        }

        private mutating func escapedString(from start: Int) -> String? {
            var out = Array(self.bytes[start..<self.index])
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                self.index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard self.index < self.bytes.count else { return nil }
                    let escape = self.bytes[self.index]
                    self.index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                    case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                    case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard let scalar = self.unicodeEscape() else { return nil }
                        UTF8.encode(scalar) { out.append($0) }
                    default: return nil
                    }
                case 0..<0x20:
                    return nil
                default:
                    out.append(byte)
                }
            }
            return nil
        }

        /// The scalar of `\uXXXX` (after its `\u`), or of a surrogate pair `\uD8xx\uDCxx`.
        private mutating func unicodeEscape() -> Unicode.Scalar? {
            guard let first = self.hex4() else { return nil }
            if (0xD800..<0xDC00).contains(first) {
                guard self.take(UInt8(ascii: "\\")), self.take(UInt8(ascii: "u")), let second = self.hex4(), (0xDC00..<0xE000).contains(second) else {
                    return nil
                }
                return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
            }
            return Unicode.Scalar(first)
        }

        private mutating func hex4() -> UInt32? {
            guard self.index + 4 <= self.bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = self.bytes[self.index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
                self.index += 1
            }
            return value
        }
    }
}
