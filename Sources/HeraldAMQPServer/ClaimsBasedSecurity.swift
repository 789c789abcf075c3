import Foundation
import HeraldAMQP
public import HeraldCore
public import HeraldWire

/// An access key as AMQP clients use it: its shared access key (which signs their tokens), its
/// rights and its scope. `herald serve` finds them in its key file.
public struct AMQPCredential: Sendable {
    /// The UTF-8 bytes of the key's `SharedAccessKey`.
    public var sharedAccessKey: [UInt8]
    /// What the key may do.
    public var rights: Set<AccessRight>
    /// The queue or topic the key is limited to; `nil` for the whole namespace.
    public var entity: String?

    /// A credential.
    public init(sharedAccessKey: [UInt8], rights: Set<AccessRight>, entity: String?) {
        self.sharedAccessKey = sharedAccessKey
        self.rights = rights
        self.entity = entity
    }
}

/// What a connection's verified tokens allow: each grants a key's rights on an entity path (or the
/// namespace) until it expires.
struct ClaimsGrants: Sendable {
    struct Grant: Sendable, Hashable {
        /// `""` for the namespace, else `orders` or `events/subscriptions/audit`.
        var path: String
        var rights: Set<AccessRight>
        var keyEntity: String?
        var expiry: Date
    }

    private(set) var grants: [Grant] = []
    /// The most grants a connection keeps: a client puts one token per entity it uses.
    let maxGrants: Int

    init(maxGrants: Int = 256) {
        self.maxGrants = maxGrants
    }

    /// Adds `grant`; a renewed token replaces the one for the same path, expired grants go, and
    /// past ``maxGrants`` the oldest goes.
    mutating func add(_ grant: Grant, now: Date) {
        self.grants.removeAll { $0.path == grant.path || $0.expiry <= now }
        if self.grants.count >= self.maxGrants { self.grants.removeFirst(self.grants.count - self.maxGrants + 1) }
        self.grants.append(grant)
    }

    /// Whether a token still valid at `now` allows `right` on `entity`.
    func allows(_ right: AccessRight, on entity: ServiceBusEntity, at now: Date) -> Bool {
        let path = ([entity.name] + (entity.subscription.map { ["subscriptions", $0] } ?? []) + (entity.isDeadLetter ? ["$deadletterqueue"] : []))
            .joined(separator: "/")
        return self.grants.contains { grant in
            grant.expiry > now && (grant.path.isEmpty || path == grant.path || path.hasPrefix(grant.path + "/"))
                && (grant.rights.contains(right) || grant.rights.contains(.manage))
                && (grant.keyEntity == nil || grant.keyEntity == entity.name)
        }
    }
}

/// The `$cbs` node: a client puts a token (a shared access signature) with a request message and
/// gets a response message whose `status-code` says whether the token was accepted.
enum ClaimsBasedSecurity {
    /// The answer to a put-token request, and the grant it adds when the token is valid.
    struct Outcome {
        var response: AMQPMessage
        var grant: ClaimsGrants.Grant?
    }

    /// Answers the request `request`, verifying its token with `credential(keyName)` at `now`.
    static func putToken(_ request: AMQPMessage, now: Date, credential: (String) -> AMQPCredential?) -> Outcome {
        let properties = Dictionary((request.applicationProperties ?? []).compactMap { entry in entry.key.text.map { ($0, entry.value) } }) { first, _ in first
        }
        let correlation = request.properties?.messageId ?? .null
        guard properties["operation"]?.text == "put-token" else {
            return Outcome(response: Self.response(to: correlation, status: 400, "the $cbs node knows only the put-token operation"), grant: nil)
        }
        // The token's own form says what it is: the Python SDK puts shared access signatures with
        // the type "jwt" (the one its token provider defaults to), as Service Bus accepts.
        guard case .value(let body) = request.body, let text = body.text, let token = SharedAccessSignature(parsing: text) else {
            return Outcome(response: Self.response(to: correlation, status: 401, "Herald accepts shared access signatures only (no JWT)"), grant: nil)
        }
        // One answer for every way a token can be wrong, so that it reveals nothing about the keys.
        let refused = Outcome(response: Self.response(to: correlation, status: 401, "the token is invalid, expired, or signed by an unknown key"), grant: nil)
        guard let credential = credential(token.keyName), token.isSigned(with: credential.sharedAccessKey), token.isValid(at: now),
            let path = token.grantedPath
        else { return refused }
        let grant = ClaimsGrants.Grant(
            path: path, rights: credential.rights, keyEntity: credential.entity, expiry: Date(timeIntervalSince1970: Double(token.expiry)))
        return Outcome(response: Self.response(to: correlation, status: 202, "Accepted"), grant: grant)
    }

    /// A response message: `status-code` is an int, as the SDKs require.
    static func response(to correlation: AMQPValue, status: Int32, _ description: String) -> AMQPMessage {
        var response = AMQPMessage(body: .value(.null))
        var properties = AMQPMessage.Properties()
        properties.correlationId = correlation
        response.properties = properties
        response.applicationProperties = [
            AMQPMapEntry(.string("status-code"), .int(status)), AMQPMapEntry(.string("status-description"), .string(description)),
        ]
        return response
    }
}

/// What the AMQP listener serves links with: the broker and the access keys.
public struct AMQPBackend: Sendable {
    /// The broker messages are stored in and delivered from.
    public var broker: any MessageBroker
    /// The access key named by a token's `skn`, with its shared access key; `nil` for none.
    public var credential: @Sendable (String) -> AMQPCredential?
    /// Whether tokens are verified; `false` (a server without access keys, on loopback) accepts
    /// any token with every right.
    public var verifiesTokens: Bool

    /// A backend that verifies tokens with `credential`.
    public init(broker: any MessageBroker, credential: @escaping @Sendable (String) -> AMQPCredential?) {
        self.broker = broker
        self.credential = credential
        self.verifiesTokens = true
    }

    /// A backend that accepts any token, for a server without access keys.
    public init(acceptingAnyTokenFor broker: any MessageBroker) {
        self.broker = broker
        self.credential = { _ in nil }
        self.verifiesTokens = false
    }
}
