import Foundation
import HeraldCore
import Testing

/// The stored form of application properties: written and read by hand, and the same JSON that
/// Foundation's coders write and read (databases written by earlier versions hold theirs).
@Suite struct PropertyCodecTests {
    /// Strings with everything JSON escapes or that a byte-wise reader could get wrong.
    static let awkward: [String] = [
        "", "plain", "quote \" and backslash \\", "slash / and \\/", "new\nline\r\ttab", "\u{0}\u{1}\u{1F}\u{7F}",
        "\u{8}\u{C}", "é", "\u{301}starts with a combining mark", "日本語", "🙂 and 👩‍👩‍👧", "\u{2028}\u{2029}", "\u{FEFF}bom",
        "s:looks tagged", "{\"json\":\"inside\"}", ",:{}[]",
    ]

    static func randomString(using generator: inout some RandomNumberGenerator) -> String {
        let pieces = Self.awkward + ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\u{1}", "ü", "€", "𝄞"]
        return (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    static func randomProperties(using generator: inout some RandomNumberGenerator) -> [String: PropertyValue] {
        var properties: [String: PropertyValue] = [:]
        for _ in 0..<Int.random(in: 0...5, using: &generator) {
            let value: PropertyValue =
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: .string(Self.randomString(using: &generator))
                case 1: .int(Int64.random(in: .min ... .max, using: &generator))
                case 2: .double([0.1, -2.5e-300, 1e308, Double.pi, -0.0].randomElement(using: &generator)!)
                default: .bool(Bool.random(using: &generator))
                }
            properties[Self.randomString(using: &generator)] = value
        }
        return properties
    }

    @Test func propertiesRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let properties = Self.randomProperties(using: &generator)
            #expect(try PropertyCodec.decode(PropertyCodec.encode(properties)) == properties)
        }
        for text in Self.awkward {
            let properties: [String: PropertyValue] = [text: .string(text), "i": .int(.min), "d": .double(-0.0), "b": .bool(false)]
            #expect(try PropertyCodec.decode(PropertyCodec.encode(properties)) == properties)
        }
    }

    /// What Foundation's encoder wrote (escaped slashes, `\u00XX`) reads the same, and what the
    /// writer writes is JSON that Foundation's decoder reads the same.
    @Test func theFormIsFoundationsJSON() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let map = Dictionary(
                (0..<Int.random(in: 0...5, using: &generator)).map { _ in (Self.randomString(using: &generator), Self.randomString(using: &generator)) },
                uniquingKeysWith: { first, _ in first }
            )
            #expect(try StringMapJSON.decode(JSONEncoder().encode(map)) == map)
            let written = Data(StringMapJSON.encode(map.map { ($0.key, $0.value) }))
            #expect(try JSONDecoder().decode([String: String].self, from: written) == map)
        }
        // Escapes Foundation's encoder does not write but JSON allows.
        let escaped = Data(#"{"\u00e9\ud83d\ude42":"\b\f\/\u0041"}"#.utf8)
        #expect(try StringMapJSON.decode(escaped) == ["é🙂": "\u{8}\u{C}/A"])
    }

    /// Damaged bytes read exactly as Foundation's decoder reads them: the same map, or an error
    /// from both.
    @Test func damagedFormsReadAsFoundationReadsThem() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]",:\/"bfnrtu0123456789abcdefABCDEF DdEe"#.utf8) + [0, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xA0, 0xF0, 0xFF]
        for _ in 0..<20000 {
            let map = Dictionary(
                (0..<Int.random(in: 0...3, using: &generator)).map { _ in (Self.randomString(using: &generator), Self.randomString(using: &generator)) },
                uniquingKeysWith: { first, _ in first }
            )
            var bytes = StringMapJSON.encode(map.map { ($0.key, $0.value) })
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let position = Int.random(in: 0...bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0 where position < bytes.count: bytes[position] = alphabet.randomElement(using: &generator)!
                case 1 where position < bytes.count: bytes.remove(at: position)
                default: bytes.insert(alphabet.randomElement(using: &generator)!, at: position)
                }
            }
            let data = Data(bytes)
            let foundation = try? JSONDecoder().decode([String: String].self, from: data)
            let ours = try? StringMapJSON.decode(data)
            #expect(ours == foundation, "\(bytes)")
        }
    }

    /// Other forms (whitespace, a repeated key) go to Foundation's decoder, which decides; broken
    /// ones fail with an error rather than reading wrong.
    @Test func otherFormsAreFoundationsToDecide() throws {
        #expect(try StringMapJSON.decode(Data(#" { "a" : "s:x" } "#.utf8)) == ["a": "s:x"])
        for broken in [#"{"a":"x""#, #"{"a":1}"#, #"["a"]"#, #"{"a":"\ud800"}"#, #"{"a":"\q"}"#, "{\"a\":\"\u{1}\"}", "", #"{"a":"x"}{"#] {
            #expect(throws: (any Error).self, "\(broken)") { try StringMapJSON.decode(Data(broken.utf8)) }
        }
        let repeated = Data(#"{"a":"1","a":"2"}"#.utf8)
        let foundation = try? JSONDecoder().decode([String: String].self, from: repeated)
        #expect((try? StringMapJSON.decode(repeated)) == foundation)
        #expect(throws: HeraldError.self) { try PropertyCodec.decode(Data(#"{"a":"x:1"}"#.utf8)) }
        #expect(throws: HeraldError.self) { try PropertyCodec.decode(Data(#"{"a":"i:one"}"#.utf8)) }
    }
}
