import Foundation
import HeraldCore
public import HeraldWire
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The access keys of a server, kept in a JSON file (`<data>/keys.json` by default) that only its
/// owner can read. The file holds salted SHA-256 hashes of the secrets, never the secrets, and
/// each key's shared access key for AMQP clients (which the server needs to verify their tokens).
///
/// A running server notices changes that `herald keys create` or `herald keys revoke` make to the
/// file: when a request arrives, the store looks at the file's modification time (at most once per
/// `reloadInterval`) and reloads it if it changed. A key file that cannot be read is treated as
/// holding no keys, so every request is refused until it is fixed (fail closed).
///
/// ```swift
/// let keys = try KeyStore(path: "herald-data/keys.json")
/// let created = try keys.create(name: "orders-service", rights: [.send, .listen], entity: "orders")
/// print(created.secret)  // hk_…, shown once
/// ```
public final class KeyStore: Sendable {
    /// A key just created, with the secret its holder presents (shown once, never stored).
    public struct CreatedKey: Sendable {
        /// The stored record.
        public let key: AccessKey
        /// The key to give to its holder: `hk_<id>_<secret>`.
        public let secret: String

        /// The connection string of Azure Service Bus clients that use this key over AMQP:
        /// `Endpoint=sb://HOST:PORT;SharedAccessKeyName=<id>;SharedAccessKey=…;UseDevelopmentEmulator=true`
        /// (the last part makes the SDKs connect without TLS).
        public func connectionString(host: String = "localhost", amqpPort: Int = 5672) -> String {
            let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            return "Endpoint=sb://\(shownHost):\(amqpPort);SharedAccessKeyName=\(self.key.id);SharedAccessKey=\(self.key.sharedAccessKey ?? "");"
                + "UseDevelopmentEmulator=true"
        }
    }

    private struct State {
        var keys: [String: AccessKey]
        var fingerprint: KeyFile.Fingerprint?
        var lastCheck: ContinuousClock.Instant
    }

    /// The key file.
    public let path: String
    private let reloadInterval: Duration
    private let logger: Logger
    private let state: Mutex<State>

    /// The key file in a data folder: `<dataDirectory>/keys.json`.
    ///
    /// - Parameter dataDirectory: The folder of the embedded store.
    /// - Returns: The key file's path.
    public static func path(inDataDirectory dataDirectory: String) -> String {
        URL(fileURLWithPath: dataDirectory).appendingPathComponent("keys.json").path
    }

    /// Opens the key file at `path`; a missing file holds no keys.
    ///
    /// - Parameters:
    ///   - path: The key file.
    ///   - reloadInterval: How often, at most, a request makes the store look for changes to the file.
    ///   - logger: Where reloads and unreadable files are reported.
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` when the file exists but cannot be read.
    public init(path: String, reloadInterval: Duration = .seconds(1), logger: Logger = Logger(label: "herald.keys")) throws {
        self.path = path
        self.reloadInterval = reloadInterval
        self.logger = logger
        let fingerprint = KeyFile.fingerprint(path)
        let keys = try KeyFile.load(path)
        self.state = Mutex(State(keys: Self.index(keys), fingerprint: fingerprint, lastCheck: .now))
    }

    /// The keys, by id, as last loaded (reloading first if the file changed).
    public var keys: [AccessKey] {
        self.reloadIfChanged()
        return self.state.withLock { $0.keys.values.sorted { ($0.created, $0.id) < ($1.created, $1.id) } }
    }

    /// Creates a key and adds it to the file.
    ///
    /// - Parameters:
    ///   - name: A name for people, 1–128 characters.
    ///   - rights: At least one right.
    ///   - entity: The queue or topic the key is limited to, or `nil` for the whole namespace.
    /// - Returns: The record and the secret to hand out.
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` for an empty name or no rights, or when
    ///   the file cannot be written; ``/HeraldCore/HeraldError/Code/invalidName`` for an entity name
    ///   outside the naming rule.
    public func create(name: String, rights: Set<AccessRight>, entity: String?) throws -> CreatedKey {
        guard !name.isEmpty, name.count <= 128 else { throw HeraldError(.invalidArgument, "a key's name has 1 to 128 characters") }
        guard !rights.isEmpty else { throw HeraldError(.invalidArgument, "a key needs at least one right (manage, send, listen)") }
        if let entity { try EntityName.validate(entity) }
        let presented = PresentedKey(id: Self.randomHex(bytes: PresentedKey.idLength / 2), secret: Self.randomHex(bytes: PresentedKey.secretLength / 2))
        let salt = Self.randomHex(bytes: 16)
        let key = AccessKey(
            id: presented.id, name: name, rights: Array(rights), entity: entity, created: Date(), salt: salt,
            secretHash: Hex.encode(SecretDigest.of(secret: presented.secret, salt: Hex.decode(salt)!)),
            sharedAccessKey: Self.randomBytes(32).base64EncodedString()
        )
        try self.update { keys in keys.append(key) }
        return CreatedKey(key: key, secret: presented.text)
    }

    /// Removes the key `id` from the file; servers refuse it once they have reloaded the file.
    ///
    /// - Parameter id: The key's ``AccessKey/id``.
    /// - Returns: The removed key, or `nil` when there was none with that id.
    /// - Throws: ``/HeraldCore/HeraldError/Code/invalidArgument`` when the file cannot be read or written.
    @discardableResult
    public func revoke(id: String) throws -> AccessKey? {
        var removed: AccessKey?
        try self.update { keys in
            guard let index = keys.firstIndex(where: { $0.id == id }) else { return }
            removed = keys.remove(at: index)
        }
        return removed
    }

    /// The key `text` (`hk_<id>_<secret>`) names, if it is valid and not revoked.
    package func authenticate(_ text: String) -> AccessKey? {
        self.reloadIfChanged()
        guard let presented = PresentedKey(parsing: text) else { return nil }
        guard let key = self.state.withLock({ $0.keys[presented.id] }) else { return nil }
        return key.matches(secret: presented.secret) ? key : nil
    }

    /// The key named `id` and its shared access key, for verifying an AMQP client's token; `nil`
    /// when there is no such key or it has no shared access key.
    package func sharedAccessKey(named id: String) -> (key: AccessKey, sharedAccessKey: [UInt8])? {
        self.reloadIfChanged()
        guard let key = self.state.withLock({ $0.keys[id] }), let shared = key.sharedAccessKey else { return nil }
        return (key, Array(shared.utf8))
    }

    // MARK: Reading and writing the file

    /// Reloads the file when `reloadInterval` has passed since the last look and it changed.
    private func reloadIfChanged() {
        let now = ContinuousClock.now
        let due: Bool = self.state.withLock { state in
            guard now - state.lastCheck >= self.reloadInterval else { return false }
            state.lastCheck = now
            return true
        }
        guard due else { return }
        let fingerprint = KeyFile.fingerprint(self.path)
        guard fingerprint != self.state.withLock({ $0.fingerprint }) else { return }
        let keys: [AccessKey]
        do {
            keys = try KeyFile.load(self.path)
            self.logger.info("reloaded the key file", metadata: ["herald.keys.path": "\(self.path)", "herald.keys.count": "\(keys.count)"])
        } catch {
            keys = []
            self.logger.error(
                "cannot read the key file; refusing every key until it is fixed", metadata: ["herald.keys.path": "\(self.path)", "error": "\(error)"])
        }
        self.state.withLock { state in
            state.keys = Self.index(keys)
            state.fingerprint = fingerprint
        }
    }

    /// Reads the file, applies `change`, writes it back, all under an exclusive lock on
    /// `<path>.lock` so that concurrent `herald keys` commands do not lose each other's changes.
    private func update(_ change: (inout [AccessKey]) throws -> Void) throws {
        let folder = URL(fileURLWithPath: self.path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lock = open(self.path + ".lock", O_RDWR | O_CREAT, 0o600)
        guard lock >= 0 else { throw HeraldError(.invalidArgument, "cannot lock \(self.path).lock: \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw HeraldError(.invalidArgument, "cannot lock \(self.path).lock: \(String(cString: strerror(errno)))") }
        var keys = try KeyFile.load(self.path)
        try change(&keys)
        try KeyFile.save(keys, to: self.path)
        let fingerprint = KeyFile.fingerprint(self.path)
        self.state.withLock { state in
            state.keys = Self.index(keys)
            state.fingerprint = fingerprint
        }
    }

    private static func index(_ keys: [AccessKey]) -> [String: AccessKey] {
        Dictionary(keys.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// `bytes` random bytes from the system's secure generator, in hexadecimal.
    private static func randomHex(bytes: Int) -> String {
        Hex.encode(Self.randomBytes(bytes))
    }

    private static func randomBytes(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}
