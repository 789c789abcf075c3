import Foundation
import HeraldServer
import Testing

/// FIPS 180-4 (and NIST CAVP) test vectors for the SHA-256 that hashes access keys, and a key
/// stored by an earlier version, which must stay valid.
@Suite("SHA-256 of access keys")
struct SecretDigestTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ])
    func knownDigests(_ input: String, _ digest: String) {
        #expect(SecretDigest.sha256Hex(Array(input.utf8)) == digest)
    }

    @Test func oneMillionAs() {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SecretDigest.sha256Hex(input) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the padding boundary (55, 56, 63, 64 bytes) take one or two final blocks.
    @Test func paddingBoundaries() {
        #expect(SecretDigest.sha256([UInt8](repeating: 0, count: 55)).count == 32)
        #expect(SecretDigest.sha256Hex([UInt8](repeating: UInt8(ascii: "a"), count: 64)) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
        #expect(SecretDigest.sha256Hex([UInt8](repeating: UInt8(ascii: "a"), count: 56)) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
    }

    /// A key file written by an earlier version (its digest made by the hand-written SHA-256 that
    /// swift-crypto replaced) still admits its key, and only with the right secret.
    @Test func aKeyStoredByAnEarlierVersionStaysValid() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("keys.json").path
        let file = """
            {
              "keys" : [
                {
                  "created" : "2025-01-01T00:00:00Z",
                  "id" : "a1b2c3d4e5f6",
                  "name" : "admin",
                  "rights" : ["manage"],
                  "salt" : "00112233445566778899aabbccddeeff",
                  "secretHash" : "eb5c73c97d3a9b2162f8c01f16b370ec63bff435158613d12bf6acbcb67c70d4"
                }
              ],
              "version" : 1
            }
            """
        try Data(file.utf8).write(to: URL(fileURLWithPath: path))
        let keys = try KeyStore(path: path)
        let secret = String(repeating: "0123456789abcdef", count: 4)
        #expect(keys.authenticate("hk_a1b2c3d4e5f6_\(secret)")?.name == "admin")
        #expect(keys.authenticate("hk_a1b2c3d4e5f6_\(String(repeating: "f", count: 64))") == nil)
    }
}
