/// The answer of `GET /v1/whoami`: the key a request presented, what it may do and where, so that
/// a client (the web console) offers only what the key allows.
package struct WhoAmIResponse: Codable, Sendable, Hashable {
    /// Whether the server checks keys; `false` when it runs without them (loopback only), and
    /// every request may do everything.
    package var keysRequired: Bool
    /// The key's id (`hk_<id>_…`); absent without keys.
    package var id: String?
    /// The key's name; absent without keys.
    package var name: String?
    /// The rights the key holds (`manage` implies the other two); all of them without keys.
    package var rights: [AccessRight]
    /// The queue or topic the key is limited to; absent for the whole namespace.
    package var scope: String?
    /// For a scoped key, the entities of its scope that exist: the queue, or the topic and its
    /// subscriptions. Absent for a namespace key, which lists entities with `GET /v1/stats`.
    package var entities: [WireEntity]?

    /// Creates the answer from its fields.
    package init(keysRequired: Bool, id: String?, name: String?, rights: [AccessRight], scope: String?, entities: [WireEntity]?) {
        self.keysRequired = keysRequired
        self.id = id
        self.name = name
        self.rights = rights
        self.scope = scope
        self.entities = entities
    }
}
