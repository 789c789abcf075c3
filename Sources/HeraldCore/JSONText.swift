/// How Herald writes JSON's leaf values as bytes without Foundation's encoder: the server's
/// answers (its encoder and its direct writers) and the stored application properties
/// (``StringMapJSON``) use these, so a string is escaped and a number spelled the same way
/// whichever writes it.
package enum JSONText {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `string` quoted, escaping `"`, `\` and control characters.
    package static func appendString(_ string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        Self.appendEscapedText(string, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends what goes between the quotes of `string` in JSON: it, with `"`, `\` and control
    /// characters escaped.
    package static func appendEscapedText(_ string: String, to bytes: inout [UInt8]) {
        var string = string
        string.withUTF8 { utf8 in
            // Runs without anything to escape (most strings, and every base64 body) go in whole.
            var start = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                Self.appendEscaped(byte, to: &bytes)
                start = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
    }

    private static func appendEscaped(_ byte: UInt8, to bytes: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): bytes += #"\""#.utf8
        case UInt8(ascii: "\\"): bytes += #"\\"#.utf8
        case 0x0A: bytes += #"\n"#.utf8
        case 0x0D: bytes += #"\r"#.utf8
        case 0x09: bytes += #"\t"#.utf8
        default:
            bytes += #"\u00"#.utf8
            bytes.append(Self.hexDigits[Int(byte >> 4)])
            bytes.append(Self.hexDigits[Int(byte & 0xF)])
        }
    }

    /// Appends `value` in decimal, without an intermediate string.
    package static func appendInteger(_ value: Int64, to bytes: inout [UInt8]) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for Int64's 20 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }

    /// Appends `value` in Swift's shortest round-trip form, which is valid JSON except for a
    /// trailing ".0" it keeps and exponents JSON also accepts: `1.0`, `1e-07`, `1.5e+20`.
    /// `false`, with nothing written, for a value JSON cannot spell (infinite, NaN).
    package static func appendDouble(_ value: Double, to bytes: inout [UInt8]) -> Bool {
        guard value.isFinite else { return false }
        bytes += value.description.utf8
        return true
    }

    /// Appends `true` or `false`.
    package static func appendBool(_ value: Bool, to bytes: inout [UInt8]) {
        bytes += (value ? "true" : "false").utf8
    }
}
