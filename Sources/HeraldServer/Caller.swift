import HeraldCore
import HeraldWire

/// Who sent a request, and what they may do: the key they presented, or anyone when the server
/// runs without keys (loopback only).
struct Caller: Sendable {
    /// The presented key; `nil` when the server checks no keys.
    let key: AccessKey?

    /// The caller of a server without keys.
    static let anyone = Caller(key: nil)

    /// An identifier for logs and per-key quotas.
    var label: String { self.key.map { "key \($0.id)" } ?? "anonymous" }

    /// Throws `forbidden` unless the key holds `right`.
    func require(_ right: AccessRight) throws(ServerError) {
        guard let key = self.key, !key.holds(right) else { return }
        throw .forbidden("key \(key.id) lacks the \(right.rawValue) right")
    }

    /// Throws `forbidden` unless the key's scope covers the queue or topic `entityName`.
    func requireScope(entityName: String) throws(ServerError) {
        guard let key = self.key, !key.covers(entityName: entityName) else { return }
        throw .forbidden("key \(key.id) is limited to '\(key.scopeDescription)'")
    }

    /// Throws `forbidden` unless the key's scope covers `path` (a subscription, and a dead-letter
    /// queue, fall under the queue or topic they belong to).
    func requireScope(_ path: EntityPath) throws(ServerError) {
        try self.requireScope(entityName: path.scopeName)
    }

    /// Throws `forbidden` unless the key covers the whole namespace (listing, stats).
    func requireNamespace() throws(ServerError) {
        guard let key = self.key, key.entity != nil else { return }
        throw .forbidden("key \(key.id) is limited to '\(key.scopeDescription)'; this route needs a namespace key")
    }
}

extension EntityPath {
    /// The queue or topic whose scope covers this path.
    var scopeName: String {
        self.kind == .subscription ? (self.topic ?? self.name) : self.name
    }
}
