import Foundation
import HeraldCore
import Testing

@testable import HeraldWire

/// The fast reader of the busiest bodies must read their plain form, and whatever it reads must be
/// exactly what the strict decoder makes of the same bytes; it gives everything else up.
@Suite struct FastWireDecodingTests {
    static let plainSend = #"""
        {"entity": {"queue": "orders"}, "messages": [
          {"body": "aGVsbG8=", "messageId": "m-1", "contentType": "application/json", "subject": "OrderPlaced",
           "correlationId": "c", "causationId": "d", "sessionId": "s", "replyTo": "r", "timeToLiveMs": 60000,
           "scheduledEnqueueTime": 1700000000000, "senderId": "sender", "senderSequence": 9223372036854775807,
           "applicationProperties": {"a": {"string": "x"}, "b": {"int": -5}, "c": {"bool": true}, "é": {"string": "ünï"}}},
          {"text": "plain"}, {}]}
        """#
    static let plainReceive =
        #"{"entity":{"topic":"t","subscription":"s","deadLetter":true},"maxCount":100,"maxWaitMs":1000,"mode":"receiveAndDelete","maxBytes":4096}"#
    static let plainComplete = #"{"lockTokens":["a","b","c"]}"#

    @Test func plainBodiesAreReadFastAndAsTheStrictDecoderReadsThem() throws {
        let send = try #require(Self.fast(SendRequest.self, Self.plainSend))
        #expect(send == (try WireDecoding.decode(SendRequest.self, from: Data(Self.plainSend.utf8))))
        #expect(send.messages.count == 3)
        #expect(send.messages[0].applicationProperties?["é"]?.string == "ünï")
        #expect(send.messages[0].senderSequence == .max)

        let receive = try #require(Self.fast(ReceiveRequest.self, Self.plainReceive))
        #expect(receive == (try WireDecoding.decode(ReceiveRequest.self, from: Data(Self.plainReceive.utf8))))
        #expect(receive.mode == .receiveAndDelete)

        let complete = try #require(Self.fast(CompleteRequest.self, Self.plainComplete))
        #expect(complete.lockTokens == ["a", "b", "c"])

        // What JSONEncoder writes, as HeraldClient sends it.
        let encoded = try JSONEncoder().encode(SendRequest(entity: WireEntity(.queue("q")), messages: [WireMessage(Message(text: "hi"))]))
        let fromEncoder = try #require(encoded.withUnsafeBytes { FastWireDecoding.decode(SendRequest.self, from: $0) })
        #expect(fromEncoder == (try WireDecoding.decode(SendRequest.self, from: encoded)))
    }

    @Test(arguments: [
        #"{"entity":{"queue":"q"},"messages":[{"text":"a\"b"}]}"#,  // an escape
        #"{"entity":{"queue":"q"},"messages":[{"subject":null}]}"#,  // a null
        #"{"entity":{"queue":"q"},"messages":[{"subjekt":"x"}]}"#,  // an unknown field
        #"{"entity":{"queue":"q"},"messages":[{"subject":"x","subject":"y"}]}"#,  // a field twice
        #"{"entity":{"queue":"q"},"messages":[{"timeToLiveMs":1.0}]}"#,  // a fraction
        #"{"entity":{"queue":"q"},"messages":[{"timeToLiveMs":1e3}]}"#,  // an exponent
        #"{"entity":{"queue":"q"},"messages":[{"timeToLiveMs":01}]}"#,  // a leading zero
        #"{"entity":{"queue":"q"},"messages":[{"timeToLiveMs":9223372036854775808}]}"#,  // past Int64
        #"{"entity":{"queue":"q"},"messages":[{"applicationProperties":{"a":{"double":1.5}}}]}"#,
        #"{"entity":{"queue":"q"},"messages":[]} x"#,  // trailing bytes
        #"{"entity":{"queue":"q"}}"#,  // a missing field
        #"[]"#,
        "{\"entity\":{\"queue\":\"q\u{1}\"},\"messages\":[]}",  // a control character
    ])
    func otherFormsAreGivenUp(body: String) {
        #expect(Self.fast(SendRequest.self, body) == nil)
    }

    /// Strings are scanned eight bytes at a time: a byte that needs the strict decoder is found
    /// in every lane of a word and in the bytes after the last whole word, at every length.
    @Test func aSpecialByteIsFoundAtEveryPositionOfAString() throws {
        for length in 1...40 {
            let plain = String(repeating: "Q", count: length)
            #expect(Self.fast(CompleteRequest.self, #"{"lockTokens":[""# + plain + #""]}"#)?.lockTokens == [plain])
            for position in 0..<length {
                for special in ["\"", "\\", "\u{1}", "\u{1F}"] {
                    var characters = Array(plain)
                    characters[position] = Character(special)
                    let body = #"{"lockTokens":[""# + String(characters) + #""]}"#
                    #expect(Self.fast(CompleteRequest.self, body) == nil, "\(body)")
                }
                var characters = Array(plain)
                characters[position] = "é"
                let accented = String(characters)
                #expect(Self.fast(CompleteRequest.self, #"{"lockTokens":[""# + accented + #""]}"#)?.lockTokens == [accented])
            }
        }
        for lane in 0..<8 {
            for byte in UInt8.min...UInt8.max {
                var bytes = [UInt8](repeating: UInt8(ascii: "A"), count: 8)
                bytes[lane] = byte
                let word = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                let isSpecial = byte < 0x20 || byte > 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
                #expect(FastJSONReader.hasSpecialByte(word) == isSpecial, "byte \(byte) in lane \(lane)")
            }
        }
    }

    @Test func invalidUTF8IsGivenUp() {
        var bytes = Array(#"{"entity":{"queue":"q"},"messages":[{"text":"ab"}]}"#.utf8)
        bytes[bytes.firstIndex(of: UInt8(ascii: "b"))!] = 0xC3
        #expect(bytes.withUnsafeBytes { FastWireDecoding.decode(SendRequest.self, from: $0) } == nil)
    }

    /// Mutates plain bodies byte by byte (a fixed seed): whenever the fast reader accepts a
    /// mutant, the strict decoder accepts it too, with the same value.
    @Test func whateverTheFastReaderAcceptsTheStrictDecoderReadsTheSame() throws {
        var generator = SplitMix(seed: 0x5eed)
        let alphabet = Array(#"{}[]:,"\ 0123456789-.eE+truefalsnl"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        var accepted = 0
        for round in 0..<6_000 {
            let base = [Self.plainSend, Self.plainReceive, Self.plainComplete][round % 3]
            var bytes = Array(base.utf8)
            for _ in 0...(Int(generator.next() % 3)) {
                let at = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[at] = alphabet[Int(generator.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: at)
                default: bytes.insert(alphabet[Int(generator.next() % UInt64(alphabet.count))], at: at)
                }
            }
            let data = Data(bytes)
            switch round % 3 {
            case 0: accepted += try Self.agree(SendRequest.self, data)
            case 1: accepted += try Self.agree(ReceiveRequest.self, data)
            default: accepted += try Self.agree(CompleteRequest.self, data)
            }
        }
        // Some mutants (in whitespace, inside strings) stay plain and valid.
        #expect(accepted > 100)
    }

    /// 1 when the fast reader accepted `data` (and the strict decoder agreed), else 0.
    private static func agree<T: Codable & Equatable>(_ type: T.Type, _ data: Data) throws -> Int {
        guard let fast = data.withUnsafeBytes({ FastWireDecoding.decode(T.self, from: $0) }) else { return 0 }
        let strict = try? WireDecoding.decode(T.self, from: data)
        #expect(strict == fast, "\(String(decoding: data, as: UTF8.self))")
        return 1
    }

    private static func fast<T>(_ type: T.Type, _ body: String) -> T? {
        Array(body.utf8).withUnsafeBytes { FastWireDecoding.decode(T.self, from: $0) }
    }
}

/// A small deterministic generator, so a failing mutant is the same on every run.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
