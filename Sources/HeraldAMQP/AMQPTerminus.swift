/// The `source` of a link: where its messages come from, with the filters a receiver asks for.
public struct AMQPSource: Sendable, Hashable {
    public var address: String?
    public var durable: UInt32 = 0
    public var expiryPolicy: String?
    public var timeout: UInt32 = 0
    public var dynamic = false
    public var distributionMode: String?
    /// Filters by name (Service Bus: `com.microsoft:session-filter`).
    public var filter: [AMQPMapEntry]?
    public var defaultOutcome: AMQPValue = .null
    public var outcomes: [String]?
    public var capabilities: [String]?

    /// A source at `address`.
    public init(address: String?, filter: [AMQPMapEntry]? = nil) {
        self.address = address
        self.filter = filter
    }

    static let code: UInt64 = 0x28

    init?(_ value: AMQPValue) throws(AMQPFieldError) {
        if value.isNull { return nil }
        let fields = try AMQPFieldReader(value, code: Self.code, name: "source")
        self.address = try fields.string(0, "address")
        self.durable = try fields.uint(1, "durable") ?? 0
        self.expiryPolicy = try fields.symbol(2, "expiry-policy")
        self.timeout = try fields.uint(3, "timeout") ?? 0
        self.dynamic = try fields.bool(4, "dynamic") ?? false
        self.distributionMode = try fields.symbol(6, "distribution-mode")
        self.filter = try fields.map(7, "filter")
        self.defaultOutcome = fields[8]
        self.outcomes = try fields.symbols(9, "outcomes")
        self.capabilities = try fields.symbols(10, "capabilities")
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.address)
        fields.append(self.durable)
        fields.append(self.expiryPolicy, symbol: true)
        fields.append(self.timeout)
        fields.append(self.dynamic)
        fields.append(AMQPValue.null)
        fields.append(self.distributionMode, symbol: true)
        fields.append(self.filter)
        fields.append(self.defaultOutcome)
        fields.append(symbols: self.outcomes)
        fields.append(symbols: self.capabilities)
        return fields.described(Self.code)
    }
}

/// The `target` of a link: where its messages go.
public struct AMQPTarget: Sendable, Hashable {
    public var address: String?
    public var durable: UInt32 = 0
    public var expiryPolicy: String?
    public var timeout: UInt32 = 0
    public var dynamic = false
    public var capabilities: [String]?
    /// A transaction coordinator (part 4: the peer wants to declare transactions), not a node.
    public var isCoordinator = false

    /// A target at `address`.
    public init(address: String?) { self.address = address }

    static let code: UInt64 = 0x29
    static let coordinatorCode: UInt64 = 0x30

    init?(_ value: AMQPValue) throws(AMQPFieldError) {
        if value.isNull { return nil }
        if AMQPFieldReader.code(of: value, names: ["amqp:coordinator:list": Self.coordinatorCode]) == Self.coordinatorCode {
            self.address = nil
            self.isCoordinator = true
            return
        }
        let fields = try AMQPFieldReader(value, code: Self.code, name: "target")
        self.address = try fields.string(0, "address")
        self.durable = try fields.uint(1, "durable") ?? 0
        self.expiryPolicy = try fields.symbol(2, "expiry-policy")
        self.timeout = try fields.uint(3, "timeout") ?? 0
        self.dynamic = try fields.bool(4, "dynamic") ?? false
        self.capabilities = try fields.symbols(6, "capabilities")
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.address)
        fields.append(self.durable)
        fields.append(self.expiryPolicy, symbol: true)
        fields.append(self.timeout)
        fields.append(self.dynamic)
        fields.append(AMQPValue.null)
        fields.append(symbols: self.capabilities)
        return fields.described(Self.code)
    }
}

/// The state of a delivery: its outcome once the receiver decided, or how much it received.
public enum AMQPDeliveryState: Sendable, Hashable {
    case received(sectionNumber: UInt32, sectionOffset: UInt64)
    /// Processed: complete.
    case accepted
    /// Refused (Service Bus: dead-lettered, or a failure with its error).
    case rejected(AMQPError?)
    /// Given back without being processed: not a delivery attempt.
    case released
    /// Given back after an attempt (Service Bus: abandon; with `undeliverableHere`, defer).
    case modified(deliveryFailed: Bool, undeliverableHere: Bool, messageAnnotations: [AMQPMapEntry]?)

    init?(_ value: AMQPValue) throws(AMQPFieldError) {
        if value.isNull { return nil }
        let names: [String: UInt64] = [
            "amqp:received:list": 0x23, "amqp:accepted:list": 0x24, "amqp:rejected:list": 0x25, "amqp:released:list": 0x26, "amqp:modified:list": 0x27,
        ]
        guard let code = AMQPFieldReader.code(of: value, names: names) else { throw AMQPFieldError(type: "delivery-state", field: nil) }
        switch code {
        case 0x23:
            let fields = try AMQPFieldReader(value, code: code, name: "received")
            self = .received(sectionNumber: try fields.requiredUInt(0, "section-number"), sectionOffset: try fields.ulong(1, "section-offset") ?? 0)
        case 0x24:
            _ = try AMQPFieldReader(value, code: code, name: "accepted")
            self = .accepted
        case 0x25:
            let fields = try AMQPFieldReader(value, code: code, name: "rejected")
            self = .rejected(try AMQPError(fields[0]))
        case 0x26:
            _ = try AMQPFieldReader(value, code: code, name: "released")
            self = .released
        case 0x27:
            let fields = try AMQPFieldReader(value, code: code, name: "modified")
            self = .modified(
                deliveryFailed: try fields.bool(0, "delivery-failed") ?? false,
                undeliverableHere: try fields.bool(1, "undeliverable-here") ?? false,
                messageAnnotations: try fields.map(2, "message-annotations"))
        default:
            throw AMQPFieldError(type: "delivery-state", field: nil)
        }
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        switch self {
        case .received(let number, let offset):
            fields.append(number)
            fields.append(offset)
            return fields.described(0x23)
        case .accepted: return fields.described(0x24)
        case .rejected(let error):
            fields.append(error?.value ?? .null)
            return fields.described(0x25)
        case .released: return fields.described(0x26)
        case .modified(let failed, let undeliverable, let annotations):
            fields.append(failed)
            fields.append(undeliverable)
            fields.append(annotations)
            return fields.described(0x27)
        }
    }
}
