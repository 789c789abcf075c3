/// The rights a key can hold, after Azure Service Bus's shared access rules.
public enum Right: String, Sendable, Hashable, Codable, CaseIterable {
    /// Create, delete and inspect entities and keys; implies `send` and `listen`.
    case manage
    /// Send and schedule messages, cancel scheduled ones.
    case send
    /// Receive, peek, settle, and use sessions.
    case listen
}

/// One operation of the HTTP API: its method, its path template and the right it needs.
///
/// The server answers every route of ``all``; `openapi.yaml` describes every one of them (a test
/// checks both). Path parameters are written `{name}`.
public struct Route: Sendable, Hashable {
    /// The HTTP method.
    public let method: String
    /// The path template, for example `/v1/queues/{queue}`.
    public let path: String
    /// The OpenAPI `operationId`.
    public let operationId: String
    /// The right a key needs; `nil` for routes open to everyone (health, metrics, the document).
    public let right: Right?

    /// Creates a route.
    public init(_ method: String, _ path: String, _ operationId: String, _ right: Right?) {
        self.method = method
        self.path = path
        self.operationId = operationId
        self.right = right
    }
}

extension Route {
    // Entity management.
    public static let listQueues = Route("GET", "/v1/queues", "listQueues", .manage)
    public static let createQueue = Route("PUT", "/v1/queues/{queue}", "createQueue", .manage)
    public static let getQueue = Route("GET", "/v1/queues/{queue}", "getQueue", .manage)
    public static let deleteQueue = Route("DELETE", "/v1/queues/{queue}", "deleteQueue", .manage)
    public static let listTopics = Route("GET", "/v1/topics", "listTopics", .manage)
    public static let createTopic = Route("PUT", "/v1/topics/{topic}", "createTopic", .manage)
    public static let getTopic = Route("GET", "/v1/topics/{topic}", "getTopic", .manage)
    public static let deleteTopic = Route("DELETE", "/v1/topics/{topic}", "deleteTopic", .manage)
    public static let listSubscriptions = Route("GET", "/v1/topics/{topic}/subscriptions", "listSubscriptions", .manage)
    public static let createSubscription = Route("PUT", "/v1/topics/{topic}/subscriptions/{subscription}", "createSubscription", .manage)
    public static let getSubscription = Route("GET", "/v1/topics/{topic}/subscriptions/{subscription}", "getSubscription", .manage)
    public static let deleteSubscription = Route("DELETE", "/v1/topics/{topic}/subscriptions/{subscription}", "deleteSubscription", .manage)
    public static let stats = Route("GET", "/v1/stats", "stats", .manage)

    // Messaging: the entity is named in the body (an Azure Service Bus path, see ``WireEntity``).
    public static let send = Route("POST", "/v1/messages/send", "send", .send)
    public static let cancelScheduled = Route("POST", "/v1/messages/cancel-scheduled", "cancelScheduled", .send)
    public static let receive = Route("POST", "/v1/messages/receive", "receive", .listen)
    public static let receiveDeferred = Route("POST", "/v1/messages/receive-deferred", "receiveDeferred", .listen)
    public static let peek = Route("POST", "/v1/messages/peek", "peek", .listen)
    public static let counts = Route("POST", "/v1/messages/counts", "counts", .listen)
    public static let complete = Route("POST", "/v1/locks/complete", "complete", .listen)
    public static let abandon = Route("POST", "/v1/locks/abandon", "abandon", .listen)
    public static let deferMessage = Route("POST", "/v1/locks/defer", "defer", .listen)
    public static let deadLetter = Route("POST", "/v1/locks/dead-letter", "deadLetter", .listen)
    public static let renewLock = Route("POST", "/v1/locks/renew", "renewLock", .listen)
    public static let resubmit = Route("POST", "/v1/locks/resubmit", "resubmit", .listen)
    public static let acceptSession = Route("POST", "/v1/sessions/accept", "acceptSession", .listen)
    public static let receiveFromSession = Route("POST", "/v1/sessions/receive", "receiveFromSession", .listen)
    public static let getSessionState = Route("POST", "/v1/sessions/get-state", "getSessionState", .listen)
    public static let setSessionState = Route("POST", "/v1/sessions/set-state", "setSessionState", .listen)
    public static let renewSessionLock = Route("POST", "/v1/sessions/renew", "renewSessionLock", .listen)
    public static let releaseSession = Route("POST", "/v1/sessions/release", "releaseSession", .listen)

    // Transactions and the state they commit with (GUARANTEES.md §4.8): documents, inbox, events.
    public static let commit = Route("POST", "/v1/transactions/commit", "commit", .send)
    public static let getDocument = Route("POST", "/v1/state/documents/get", "getDocument", .listen)
    public static let listDocuments = Route("POST", "/v1/state/documents/list", "listDocuments", .listen)
    public static let inboxContains = Route("POST", "/v1/state/inbox/contains", "inboxContains", .listen)
    public static let readStream = Route("POST", "/v1/events/read-stream", "readStream", .listen)
    public static let readAll = Route("POST", "/v1/events/read-all", "readAll", .listen)

    // Operations.
    public static let health = Route("GET", "/health", "health", nil)
    public static let metrics = Route("GET", "/metrics", "metrics", nil)
    public static let openAPI = Route("GET", "/openapi.yaml", "openAPI", nil)

    /// Every route of the API.
    public static let all: [Route] = [
        .listQueues, .createQueue, .getQueue, .deleteQueue,
        .listTopics, .createTopic, .getTopic, .deleteTopic,
        .listSubscriptions, .createSubscription, .getSubscription, .deleteSubscription, .stats,
        .send, .cancelScheduled, .receive, .receiveDeferred, .peek, .counts,
        .complete, .abandon, .deferMessage, .deadLetter, .renewLock, .resubmit,
        .acceptSession, .receiveFromSession, .getSessionState, .setSessionState, .renewSessionLock, .releaseSession,
        .commit, .getDocument, .listDocuments, .inboxContains, .readStream, .readAll,
        .health, .metrics, .openAPI,
    ]
}
