public import HeraldCore

extension WireError {
    /// The `error` code of an error answer: every code the server sends, each with its HTTP status.
    ///
    /// The server builds its error answers from these codes and the client reads them back with
    /// ``init(_:)``, so both sides share one list; `openapi.yaml` lists the same names (a test
    /// compares them). A broker error keeps its ``HeraldCore/HeraldError/Code`` name; the other
    /// codes are refusals of the HTTP layer, before or around the broker.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case broker(HeraldError.Code)
            case unauthorized
            case forbidden
            case notFound
            case methodNotAllowed
            case requestTimeout
            case payloadTooLarge
            case quotaExceeded
            case `internal`
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// The broker error `code`, with the status the API gives it (400 for invalid input, 404 for
        /// something not found, 409 for a conflict, 410 for a lost lock, 413 for too large, 503 for a
        /// store that cannot serve, 507 for a full disk).
        ///
        /// - Parameter code: A broker error code.
        /// - Returns: The wire code with the same name.
        public static func broker(_ code: HeraldError.Code) -> Code { Code(.broker(code)) }

        /// No key, or an unknown or revoked one (401).
        public static let unauthorized = Code(.unauthorized)
        /// The key lacks the right the route needs, or its scope does not cover the entity (403).
        public static let forbidden = Code(.forbidden)
        /// No route has this path (404).
        public static let notFound = Code(.notFound)
        /// The path exists with other methods; the `Allow` header lists them (405).
        public static let methodNotAllowed = Code(.methodNotAllowed)
        /// The request body was not read within the server's read timeout (408).
        public static let requestTimeout = Code(.requestTimeout)
        /// The request body is larger than the server accepts (413).
        public static let payloadTooLarge = Code(.payloadTooLarge)
        /// The key already has as many requests in flight as the server allows (429).
        public static let quotaExceeded = Code(.quotaExceeded)
        /// An unexpected error, answered without details; the server logs them (500).
        public static let `internal` = Code(.internal)

        /// The codes of the HTTP layer, which are not broker errors.
        public static let refusals: [Code] = [
            .unauthorized, .forbidden, .notFound, .methodNotAllowed, .requestTimeout, .payloadTooLarge, .quotaExceeded, .internal,
        ]

        /// Every code the server sends: each broker code, then the refusals of the HTTP layer.
        public static let all: [Code] = HeraldError.Code.all.map(Code.broker) + Self.refusals

        /// The code named `name`, or `nil` for a name this version does not know (one a newer
        /// server may send).
        ///
        /// - Parameter name: The `error` field of an answer.
        public init?(_ name: String) {
            guard let code = Self.all.first(where: { $0.description == name }) else { return nil }
            self = code
        }

        /// The broker error code this code stands for; `nil` for the refusals of the HTTP layer.
        public var brokerCode: HeraldError.Code? {
            if case .broker(let code) = self.base { return code }
            return nil
        }

        /// The HTTP status of an answer with this code.
        public var status: Int {
            switch self.base {
            case .broker(let code): WireStatus.status(for: code)
            case .unauthorized: 401
            case .forbidden: 403
            case .notFound: 404
            case .methodNotAllowed: 405
            case .requestTimeout: 408
            case .payloadTooLarge: 413
            case .quotaExceeded: 429
            case .internal: 500
            }
        }

        /// The name the `error` field carries, for example `lockLost` or `unauthorized`.
        public var description: String {
            switch self.base {
            case .broker(let code): code.description
            case .unauthorized: "unauthorized"
            case .forbidden: "forbidden"
            case .notFound: "notFound"
            case .methodNotAllowed: "methodNotAllowed"
            case .requestTimeout: "requestTimeout"
            case .payloadTooLarge: "payloadTooLarge"
            case .quotaExceeded: "quotaExceeded"
            case .internal: "internal"
            }
        }
    }

    /// Creates the answer of `code`.
    ///
    /// - Parameters:
    ///   - code: What went wrong.
    ///   - message: What went wrong, for people.
    public init(_ code: Code, message: String) {
        self.init(error: code.description, message: message)
    }

    /// The code of ``error``; `nil` when this version does not know it.
    public var code: Code? { Code(self.error) }
}
