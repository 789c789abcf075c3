public import Foundation
public import HeraldWire

/// One shared access key, as the key file stores it: who it is for, what it may do, and the
/// salted SHA-256 hash of its secret (never the secret itself).
///
/// Keys follow Azure Service Bus's shared access rules: rights `AccessRight.manage` (which
/// implies the other two), `AccessRight.send` and `AccessRight.listen`, scoped to the
/// whole namespace or to one queue or topic (a topic's scope covers its subscriptions). Clients
/// present the key as `Authorization: Bearer hk_<id>_<secret>` or `X-Herald-Key: hk_<id>_<secret>`.
public struct AccessKey: Codable, Sendable, Hashable {
    /// The key's identifier: the `<id>` part of `hk_<id>_<secret>`; `herald keys revoke` takes it.
    public let id: String
    /// A name for people, for example the service that uses the key.
    public let name: String
    /// The rights the key holds, in `AccessRight` order.
    public let rights: [AccessRight]
    /// The queue or topic the key is limited to; `nil` for the whole namespace.
    public let entity: String?
    /// When the key was created.
    public let created: Date
    /// The random salt hashed with the secret, hexadecimal.
    let salt: String
    /// SHA-256 of the salt followed by the secret's UTF-8 bytes, hexadecimal.
    let secretHash: String
    /// The shared access key of the key's AMQP connection strings (`SharedAccessKey=`): Service
    /// Bus clients sign their tokens with it (HMAC-SHA256), so the server must hold it to verify
    /// them, unlike the secret. `nil` for keys created before Herald spoke AMQP.
    package let sharedAccessKey: String?

    init(
        id: String, name: String, rights: [AccessRight], entity: String?, created: Date, salt: String, secretHash: String,
        sharedAccessKey: String? = nil
    ) {
        self.id = id
        self.name = name
        self.rights = AccessRight.allCases.filter(rights.contains)
        self.entity = entity
        self.created = created
        self.salt = salt
        self.secretHash = secretHash
        self.sharedAccessKey = sharedAccessKey
    }

    /// Whether the key holds `right`; `manage` implies `send` and `listen`.
    ///
    /// - Parameter right: The right a route needs.
    /// - Returns: `true` when the key may use routes that need `right`.
    package func holds(_ right: AccessRight) -> Bool {
        self.rights.contains(right) || self.rights.contains(.manage)
    }

    /// Whether the key's scope covers the queue or topic named `entityName` (a subscription is
    /// covered by its topic's name).
    ///
    /// - Parameter entityName: A queue's or topic's name.
    /// - Returns: `true` for a namespace key, or for a key scoped to that name.
    package func covers(entityName: String) -> Bool {
        self.entity == nil || self.entity == entityName
    }

    /// A description of the scope for listings: `namespace`, or the entity's name.
    public var scopeDescription: String { self.entity ?? "namespace" }

    /// Whether `secret` is this key's secret, compared in constant time.
    func matches(secret: String) -> Bool {
        guard let salt = Hex.decode(self.salt), let expected = Hex.decode(self.secretHash) else { return false }
        return Hex.constantTimeEquals(SecretDigest.of(secret: secret, salt: salt), expected)
    }
}

/// The parts of a presented key, `hk_<id>_<secret>`.
struct PresentedKey: Hashable {
    static let prefix = "hk_"
    /// Hexadecimal characters in an id.
    static let idLength = 12
    /// Hexadecimal characters in a secret (32 random bytes).
    static let secretLength = 64

    let id: String
    let secret: String

    init(id: String, secret: String) {
        self.id = id
        self.secret = secret
    }

    /// Parses `hk_<id>_<secret>`; `nil` for anything else.
    init?(parsing text: String) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let parts = text.dropFirst(Self.prefix.count).split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == Self.idLength, parts[1].utf8.count == Self.secretLength,
            Hex.decode(String(parts[0])) != nil, Hex.decode(String(parts[1])) != nil
        else { return nil }
        self.id = String(parts[0])
        self.secret = String(parts[1])
    }

    /// The text a client sends.
    var text: String { "\(Self.prefix)\(self.id)_\(self.secret)" }
}
