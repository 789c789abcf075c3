import HeraldCore
import HeraldWire
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The operations of the API: each route's handler decodes its input, checks the caller's scope,
/// calls the broker and builds the answer. The caller's key and right were checked before.
struct Handlers: Sendable {
    let broker: any MessageBroker
    let metrics: ServerMetrics
    /// The store's name for `GET /health`.
    let storeName: String
    /// The byte budget of an answer with messages.
    let maxResponseBodySize: Int
    /// The memory all answers with messages share.
    let answerMemory: AnswerMemory
    let logger: Logger

    /// Answers `route`.
    ///
    /// - Parameters:
    ///   - route: The matched route.
    ///   - parameters: The path's parameters (`queue`, `topic`, `subscription`).
    ///   - body: The request body (empty for routes without one).
    ///   - caller: Who is asking.
    func handle(_ route: WireRoute, parameters: [String: String], body: ByteBuffer, caller: Caller) async throws -> Response {
        switch route {
        case .listQueues, .listTopics, .listSubscriptions, .stats,
            .createQueue, .getQueue, .deleteQueue, .createTopic, .getTopic, .deleteTopic,
            .createSubscription, .getSubscription, .deleteSubscription:
            return try await self.handleEntity(route, parameters: parameters, body: body, caller: caller)
        case .receive, .receiveDeferred, .peek:
            return try await self.answerMemory.preparing { try await self.handleMessages(route, body: body, caller: caller) }
        case .send, .cancelScheduled, .counts:
            return try await self.handleMessages(route, body: body, caller: caller)
        case .complete, .abandon, .deferMessage, .deadLetter, .renewLock, .resubmit:
            return try await self.handleLock(route, body: body, caller: caller)
        case .receiveFromSession, .receiveDeferredFromSession:
            return try await self.answerMemory.preparing { try await self.handleSession(route, body: body, caller: caller) }
        case .acceptSession, .getSessionState, .setSessionState, .renewSessionLock, .releaseSession:
            return try await self.handleSession(route, body: body, caller: caller)
        case .updateQueue, .updateTopic, .updateSubscription, .listRules, .addRule, .removeRule, .purge, .startBulkJob, .listBulkJobs, .getBulkJob,
            .cancelBulkJob:
            return try await self.handleManagement(route, parameters: parameters, body: body, caller: caller)
        case .getMessage, .searchDeadLetters, .summarizeDeadLetters, .listSessions:
            return try await self.answerMemory.preparing { try await self.handleInspection(route, body: body, caller: caller) }
        case .commit, .getDocument, .listDocuments, .inboxContains, .readStream, .readAll:
            return try await self.handleTransaction(route, body: body, caller: caller)
        case .health:
            return try await self.health()
        case .metrics:
            return try await self.renderMetrics(logger: self.logger)
        case .openAPI:
            return try self.openAPIDocument()
        case .whoAmI:
            return try Reply.json(try await self.whoAmI(caller))
        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// A wait in milliseconds from a request, checked: 0 to ``HeraldWire/WireLimits/maxWaitPerRequest``
    /// (0 when absent).
    static func maxWait(_ milliseconds: Int64?) throws(HeraldError) -> Duration {
        let value = milliseconds ?? 0
        let limit = WireLimits.maxWaitPerRequest.milliseconds
        guard (0...limit).contains(value) else { throw HeraldError(.invalidArgument, "maxWaitMs is 0 to \(limit), not \(value)") }
        return .milliseconds(value)
    }

    /// Runs a long poll so that a graceful shutdown ends its wait early instead of holding the
    /// shutdown for up to a minute, and so that a client that goes away ends it too (a poll for
    /// nobody must not take messages): the broker then returns what it has (usually nothing), or,
    /// if it throws `CancellationError` as PostgreSQL's does, the answer is `whenShutDown()` (what
    /// the wait would have answered had it timed out; nobody reads it when the client has gone).
    static func longPoll<T: Sendable>(
        _ wait: Duration,
        whenShutDown: () throws -> T,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard wait > .zero else { return try await operation() }
        let connection = ClientConnection.current
        do {
            guard let connection else { return try await cancelWhenGracefulShutdown(operation) }
            return try await connection.cancellingWhenGone(operation)
        } catch let error as CancellationError {
            if Task.isShuttingDownGracefully { return try whenShutDown() }
            if let connection, connection.isGone() { return try whenShutDown() }
            throw error
        }
    }
}
