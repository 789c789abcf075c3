/// The `error` of AMQP 1.0 (a `rejected` outcome, `detach`, `end`, `close`): a condition symbol,
/// a description and optional information.
public struct AMQPError: Error, Sendable, Hashable {
    /// `amqp:not-found`, `com.microsoft:message-lock-lost`, ….
    public var condition: String
    /// Words for a person.
    public var description: String?
    /// More, as the condition defines.
    public var info: [AMQPMapEntry]?

    /// An error.
    public init(condition: String, description: String? = nil, info: [AMQPMapEntry]? = nil) {
        self.condition = condition
        self.description = description
        self.info = info
    }

    static let code: UInt64 = 0x1d

    /// Reads an error, or `nil` from `null`.
    init?(_ value: AMQPValue) throws(AMQPFieldError) {
        if value.isNull { return nil }
        let fields = try AMQPFieldReader(value, code: Self.code, name: "error")
        guard let condition = try fields.symbol(0, "condition") else { throw fields.fail("condition") }
        self.condition = condition
        self.description = try fields.string(1, "description")
        self.info = try fields.map(2, "info")
    }

    /// The described list.
    public var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.condition, symbol: true)
        fields.append(self.description)
        fields.append(self.info)
        // Every field, nulls too: the Python SDK reads an error's `info` by position (error[2]).
        return fields.described(Self.code, keepingAll: true)
    }
}

/// The error conditions of AMQP 1.0 that Herald uses.
public enum AMQPCondition {
    public static let internalError = "amqp:internal-error"
    public static let notFound = "amqp:not-found"
    public static let unauthorizedAccess = "amqp:unauthorized-access"
    public static let decodeError = "amqp:decode-error"
    public static let resourceLimitExceeded = "amqp:resource-limit-exceeded"
    public static let notAllowed = "amqp:not-allowed"
    public static let invalidField = "amqp:invalid-field"
    public static let notImplemented = "amqp:not-implemented"
    public static let resourceLocked = "amqp:resource-locked"
    public static let preconditionFailed = "amqp:precondition-failed"
    public static let frameSizeTooSmall = "amqp:frame-size-too-small"
    public static let connectionForced = "amqp:connection:forced"
    public static let framingError = "amqp:connection:framing-error"
    public static let windowViolation = "amqp:session:window-violation"
    public static let unattachedHandle = "amqp:session:unattached-handle"
    public static let handleInUse = "amqp:session:handle-in-use"
    public static let errantLink = "amqp:session:errant-link"
    public static let detachForced = "amqp:link:detach-forced"
    public static let transferLimitExceeded = "amqp:link:transfer-limit-exceeded"
    public static let messageSizeExceeded = "amqp:link:message-size-exceeded"
}
