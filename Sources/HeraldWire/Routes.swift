/// The rights an access key can hold, after Azure Service Bus's shared access rules.
public enum AccessRight: String, Sendable, Hashable, Codable, CaseIterable {
    /// Create, delete and inspect entities and keys; implies `send` and `listen`.
    case manage
    /// Send and schedule messages, cancel scheduled ones.
    case send
    /// Receive, peek, settle, and use sessions.
    case listen
}

/// One operation of the HTTP API: its method, its path template and the right it needs.
///
/// The server answers every route of ``all`` and the client calls the API's (the web console's
/// page and files are for browsers); `openapi.yaml` describes every one of them (a test checks
/// both). Path parameters are written `{name}`.
package struct WireRoute: Sendable, Hashable {
    /// The HTTP method.
    package let method: String
    /// The path template, for example `/v1/queues/{queue}`.
    package let path: String
    /// The OpenAPI `operationId`.
    package let operationId: String
    /// The right a key needs; `nil` for routes open to everyone (health, metrics, the document).
    package let right: AccessRight?

    /// Creates a route: `method` on `path`, documented as `operationId`, open to keys holding `right`.
    package init(_ method: String, _ path: String, _ operationId: String, _ right: AccessRight?) {
        self.method = method
        self.path = path
        self.operationId = operationId
        self.right = right
    }
}

extension WireRoute {
    // Entity management.
    package static let listQueues = WireRoute("GET", "/v1/queues", "listQueues", .manage)
    package static let createQueue = WireRoute("PUT", "/v1/queues/{queue}", "createQueue", .manage)
    package static let getQueue = WireRoute("GET", "/v1/queues/{queue}", "getQueue", .manage)
    package static let deleteQueue = WireRoute("DELETE", "/v1/queues/{queue}", "deleteQueue", .manage)
    package static let listTopics = WireRoute("GET", "/v1/topics", "listTopics", .manage)
    package static let createTopic = WireRoute("PUT", "/v1/topics/{topic}", "createTopic", .manage)
    package static let getTopic = WireRoute("GET", "/v1/topics/{topic}", "getTopic", .manage)
    package static let deleteTopic = WireRoute("DELETE", "/v1/topics/{topic}", "deleteTopic", .manage)
    package static let listSubscriptions = WireRoute("GET", "/v1/topics/{topic}/subscriptions", "listSubscriptions", .manage)
    package static let createSubscription = WireRoute("PUT", "/v1/topics/{topic}/subscriptions/{subscription}", "createSubscription", .manage)
    package static let getSubscription = WireRoute("GET", "/v1/topics/{topic}/subscriptions/{subscription}", "getSubscription", .manage)
    package static let deleteSubscription = WireRoute("DELETE", "/v1/topics/{topic}/subscriptions/{subscription}", "deleteSubscription", .manage)
    package static let listRules = WireRoute("GET", "/v1/topics/{topic}/subscriptions/{subscription}/rules", "listRules", .manage)
    package static let addRule = WireRoute("PUT", "/v1/topics/{topic}/subscriptions/{subscription}/rules/{rule}", "addRule", .manage)
    package static let removeRule = WireRoute("DELETE", "/v1/topics/{topic}/subscriptions/{subscription}/rules/{rule}", "removeRule", .manage)
    package static let stats = WireRoute("GET", "/v1/stats", "stats", .manage)
    package static let updateQueue = WireRoute("PATCH", "/v1/queues/{queue}", "updateQueue", .manage)
    package static let updateTopic = WireRoute("PATCH", "/v1/topics/{topic}", "updateTopic", .manage)
    package static let updateSubscription = WireRoute("PATCH", "/v1/topics/{topic}/subscriptions/{subscription}", "updateSubscription", .manage)

    // The operator's routes (GUARANTEES.md §6): purge, one message, dead-letter searches and bulk jobs.
    package static let purge = WireRoute("POST", "/v1/messages/purge", "purge", .manage)
    package static let getMessage = WireRoute("POST", "/v1/messages/get", "getMessage", .listen)
    package static let searchDeadLetters = WireRoute("POST", "/v1/dead-letters/search", "searchDeadLetters", .listen)
    package static let summarizeDeadLetters = WireRoute("POST", "/v1/dead-letters/summary", "summarizeDeadLetters", .listen)
    package static let startBulkJob = WireRoute("POST", "/v1/dead-letters/jobs", "startBulkJob", .manage)
    package static let listBulkJobs = WireRoute("GET", "/v1/dead-letters/jobs", "listBulkJobs", .manage)
    package static let getBulkJob = WireRoute("GET", "/v1/dead-letters/jobs/{job}", "getBulkJob", .manage)
    package static let listSessions = WireRoute("POST", "/v1/sessions/list", "listSessions", .listen)
    package static let cancelBulkJob = WireRoute("DELETE", "/v1/dead-letters/jobs/{job}", "cancelBulkJob", .manage)

    // Messaging: the entity is named in the body (an Azure Service Bus path, see ``WireEntity``).
    package static let send = WireRoute("POST", "/v1/messages/send", "send", .send)
    package static let cancelScheduled = WireRoute("POST", "/v1/messages/cancel-scheduled", "cancelScheduled", .send)
    package static let receive = WireRoute("POST", "/v1/messages/receive", "receive", .listen)
    package static let receiveDeferred = WireRoute("POST", "/v1/messages/receive-deferred", "receiveDeferred", .listen)
    package static let peek = WireRoute("POST", "/v1/messages/peek", "peek", .listen)
    package static let counts = WireRoute("POST", "/v1/messages/counts", "counts", .listen)
    package static let complete = WireRoute("POST", "/v1/locks/complete", "complete", .listen)
    package static let abandon = WireRoute("POST", "/v1/locks/abandon", "abandon", .listen)
    package static let deferMessage = WireRoute("POST", "/v1/locks/defer", "defer", .listen)
    package static let deadLetter = WireRoute("POST", "/v1/locks/dead-letter", "deadLetter", .listen)
    package static let renewLock = WireRoute("POST", "/v1/locks/renew", "renewLock", .listen)
    package static let resubmit = WireRoute("POST", "/v1/locks/resubmit", "resubmit", .listen)
    package static let acceptSession = WireRoute("POST", "/v1/sessions/accept", "acceptSession", .listen)
    package static let receiveFromSession = WireRoute("POST", "/v1/sessions/receive", "receiveFromSession", .listen)
    package static let receiveDeferredFromSession = WireRoute("POST", "/v1/sessions/receive-deferred", "receiveDeferredFromSession", .listen)
    package static let getSessionState = WireRoute("POST", "/v1/sessions/get-state", "getSessionState", .listen)
    package static let setSessionState = WireRoute("POST", "/v1/sessions/set-state", "setSessionState", .listen)
    package static let renewSessionLock = WireRoute("POST", "/v1/sessions/renew", "renewSessionLock", .listen)
    package static let releaseSession = WireRoute("POST", "/v1/sessions/release", "releaseSession", .listen)

    // Transactions and the state they commit with (GUARANTEES.md §4.8): documents, inbox, events.
    package static let commit = WireRoute("POST", "/v1/transactions/commit", "commit", .send)
    package static let getDocument = WireRoute("POST", "/v1/state/documents/get", "getDocument", .listen)
    package static let listDocuments = WireRoute("POST", "/v1/state/documents/list", "listDocuments", .listen)
    package static let inboxContains = WireRoute("POST", "/v1/state/inbox/contains", "inboxContains", .listen)
    package static let readStream = WireRoute("POST", "/v1/events/read-stream", "readStream", .listen)
    package static let readAll = WireRoute("POST", "/v1/events/read-all", "readAll", .listen)

    // Operations.
    package static let health = WireRoute("GET", "/health", "health", nil)
    package static let metrics = WireRoute("GET", "/metrics", "metrics", nil)
    package static let openAPI = WireRoute("GET", "/openapi.yaml", "openAPI", nil)
    /// The key a request presents: who it is, its rights and scope. Any valid key may ask (the
    /// responder requires one when the server checks keys), so the route names no right.
    package static let whoAmI = WireRoute("GET", "/v1/whoami", "whoAmI", nil)

    // The web console: its page and static files, open to everyone (the page asks for a key).
    package static let console = WireRoute("GET", "/", "console", nil)
    package static let consoleAsset = WireRoute("GET", "/console/{asset}", "consoleAsset", nil)

    /// Every route of the API.
    package static let all: [WireRoute] = [
        .listQueues, .createQueue, .getQueue, .deleteQueue,
        .listTopics, .createTopic, .getTopic, .deleteTopic,
        .listSubscriptions, .createSubscription, .getSubscription, .deleteSubscription, .listRules, .addRule, .removeRule, .stats,
        .updateQueue, .updateTopic, .updateSubscription,
        .purge, .getMessage, .searchDeadLetters, .summarizeDeadLetters, .startBulkJob, .listBulkJobs, .getBulkJob, .cancelBulkJob, .listSessions,
        .send, .cancelScheduled, .receive, .receiveDeferred, .peek, .counts,
        .complete, .abandon, .deferMessage, .deadLetter, .renewLock, .resubmit,
        .acceptSession, .receiveFromSession, .receiveDeferredFromSession, .getSessionState, .setSessionState, .renewSessionLock, .releaseSession,
        .commit, .getDocument, .listDocuments, .inboxContains, .readStream, .readAll,
        .health, .metrics, .openAPI, .whoAmI, .console, .consoleAsset,
    ]
}
