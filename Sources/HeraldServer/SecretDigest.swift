import Crypto

/// The digest Herald stores for a key's secret: SHA-256 of the salt followed by the secret's
/// UTF-8 bytes, as 64 lowercase hexadecimal digits. Key files written by earlier versions hold the
/// same digests, so their keys stay valid.
package enum SecretDigest {
    /// The SHA-256 digest of `bytes`.
    ///
    /// - Parameter bytes: The message.
    /// - Returns: The 32-byte digest.
    package static func sha256(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        Array(SHA256.hash(data: Array(bytes)))
    }

    /// The SHA-256 digest of `bytes` in lowercase hexadecimal.
    ///
    /// - Parameter bytes: The message.
    /// - Returns: 64 hexadecimal digits.
    package static func sha256Hex(_ bytes: some Sequence<UInt8>) -> String {
        Hex.encode(Self.sha256(bytes))
    }

    /// The digest stored for `secret` salted with `salt`.
    static func of(secret: String, salt: [UInt8]) -> [UInt8] {
        Self.sha256(salt + Array(secret.utf8))
    }
}
