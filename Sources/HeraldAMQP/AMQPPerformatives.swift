/// `open`: the first frame of each side of a connection.
public struct AMQPOpen: Sendable, Hashable {
    public var containerId: String
    public var hostname: String?
    /// The largest frame this side accepts (the specification's default: no limit).
    public var maxFrameSize: UInt32 = .max
    /// The highest channel number this side accepts.
    public var channelMax: UInt16 = .max
    /// How long this side waits for a frame before it closes the connection, in milliseconds.
    public var idleTimeout: UInt32?
    public var offeredCapabilities: [String]?
    public var desiredCapabilities: [String]?
    public var properties: [AMQPMapEntry]?

    /// An `open`.
    public init(containerId: String, hostname: String? = nil, maxFrameSize: UInt32 = .max, channelMax: UInt16 = .max, idleTimeout: UInt32? = nil) {
        self.containerId = containerId
        self.hostname = hostname
        self.maxFrameSize = maxFrameSize
        self.channelMax = channelMax
        self.idleTimeout = idleTimeout
    }

    static let code: UInt64 = 0x10

    init(_ value: AMQPValue) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: Self.code, name: "open")
        guard let containerId = try fields.string(0, "container-id") else { throw fields.fail("container-id") }
        self.containerId = containerId
        self.hostname = try fields.string(1, "hostname")
        self.maxFrameSize = try fields.uint(2, "max-frame-size") ?? .max
        self.channelMax = try fields.ushort(3, "channel-max") ?? .max
        self.idleTimeout = try fields.uint(4, "idle-time-out")
        self.offeredCapabilities = try fields.symbols(7, "offered-capabilities")
        self.desiredCapabilities = try fields.symbols(8, "desired-capabilities")
        self.properties = try fields.map(9, "properties")
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.containerId)
        fields.append(self.hostname)
        fields.append(self.maxFrameSize)
        fields.append(self.channelMax)
        fields.append(self.idleTimeout)
        fields.append(AMQPValue.null)
        fields.append(AMQPValue.null)
        fields.append(symbols: self.offeredCapabilities)
        fields.append(symbols: self.desiredCapabilities)
        fields.append(self.properties)
        return fields.described(Self.code)
    }
}

/// `begin`: starts a session on a channel.
public struct AMQPBegin: Sendable, Hashable {
    /// The peer's channel of the session this answers, in a reply.
    public var remoteChannel: UInt16?
    public var nextOutgoingId: UInt32
    public var incomingWindow: UInt32
    public var outgoingWindow: UInt32
    public var handleMax: UInt32 = .max
    public var properties: [AMQPMapEntry]?

    /// A `begin`.
    public init(remoteChannel: UInt16?, nextOutgoingId: UInt32, incomingWindow: UInt32, outgoingWindow: UInt32, handleMax: UInt32 = .max) {
        self.remoteChannel = remoteChannel
        self.nextOutgoingId = nextOutgoingId
        self.incomingWindow = incomingWindow
        self.outgoingWindow = outgoingWindow
        self.handleMax = handleMax
    }

    static let code: UInt64 = 0x11

    init(_ value: AMQPValue) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: Self.code, name: "begin")
        self.remoteChannel = try fields.ushort(0, "remote-channel")
        self.nextOutgoingId = try fields.requiredUInt(1, "next-outgoing-id")
        self.incomingWindow = try fields.requiredUInt(2, "incoming-window")
        self.outgoingWindow = try fields.requiredUInt(3, "outgoing-window")
        self.handleMax = try fields.uint(4, "handle-max") ?? .max
        self.properties = try fields.map(7, "properties")
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.remoteChannel)
        fields.append(self.nextOutgoingId)
        fields.append(self.incomingWindow)
        fields.append(self.outgoingWindow)
        fields.append(self.handleMax)
        // Every field is sent: some clients index the list without checking its length.
        fields.append(AMQPValue.null)
        fields.append(AMQPValue.null)
        fields.append(self.properties)
        return fields.described(Self.code, keepingAll: true)
    }
}

/// Which end of a link a side is.
public enum AMQPRole: Sendable, Hashable {
    case sender
    case receiver

    init(_ flag: Bool) { self = flag ? .receiver : .sender }
    var flag: Bool { self == .receiver }
}

/// `attach`: opens a link in a session.
public struct AMQPAttach: Sendable, Hashable {
    public var name: String
    public var handle: UInt32
    public var role: AMQPRole
    /// 0 unsettled, 1 settled, 2 mixed (the default).
    public var senderSettleMode: UInt8 = 2
    /// 0 first (the default), 1 second.
    public var receiverSettleMode: UInt8 = 0
    public var source: AMQPSource?
    public var target: AMQPTarget?
    public var initialDeliveryCount: UInt32?
    public var maxMessageSize: UInt64?
    public var offeredCapabilities: [String]?
    public var desiredCapabilities: [String]?
    public var properties: [AMQPMapEntry]?

    /// An `attach`.
    public init(name: String, handle: UInt32, role: AMQPRole, source: AMQPSource?, target: AMQPTarget?) {
        self.name = name
        self.handle = handle
        self.role = role
        self.source = source
        self.target = target
    }

    static let code: UInt64 = 0x12

    init(_ value: AMQPValue) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: Self.code, name: "attach")
        guard let name = try fields.string(0, "name") else { throw fields.fail("name") }
        guard let role = try fields.bool(2, "role") else { throw fields.fail("role") }
        self.name = name
        self.handle = try fields.requiredUInt(1, "handle")
        self.role = AMQPRole(role)
        self.senderSettleMode = try fields.ubyte(3, "snd-settle-mode") ?? 2
        self.receiverSettleMode = try fields.ubyte(4, "rcv-settle-mode") ?? 0
        self.source = try AMQPSource(fields[5])
        self.target = try AMQPTarget(fields[6])
        self.initialDeliveryCount = try fields.uint(9, "initial-delivery-count")
        self.maxMessageSize = try fields.ulong(10, "max-message-size")
        self.offeredCapabilities = try fields.symbols(11, "offered-capabilities")
        self.desiredCapabilities = try fields.symbols(12, "desired-capabilities")
        self.properties = try fields.map(13, "properties")
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.name)
        fields.append(self.handle)
        fields.append(self.role.flag)
        fields.append(self.senderSettleMode)
        fields.append(self.receiverSettleMode)
        fields.append(self.source?.value ?? .null)
        fields.append(self.target?.value ?? .null)
        fields.append(AMQPValue.null)
        fields.append(false)
        fields.append(self.initialDeliveryCount)
        fields.append(self.maxMessageSize)
        fields.append(symbols: self.offeredCapabilities)
        fields.append(symbols: self.desiredCapabilities)
        fields.append(self.properties)
        return fields.described(Self.code)
    }
}

/// `flow`: the session's windows and, with a handle, a link's credit.
public struct AMQPFlow: Sendable, Hashable {
    public var nextIncomingId: UInt32?
    public var incomingWindow: UInt32
    public var nextOutgoingId: UInt32
    public var outgoingWindow: UInt32
    public var handle: UInt32?
    public var deliveryCount: UInt32?
    public var linkCredit: UInt32?
    public var available: UInt32?
    public var drain = false
    public var echo = false
    public var properties: [AMQPMapEntry]?

    /// A `flow`.
    public init(nextIncomingId: UInt32?, incomingWindow: UInt32, nextOutgoingId: UInt32, outgoingWindow: UInt32) {
        self.nextIncomingId = nextIncomingId
        self.incomingWindow = incomingWindow
        self.nextOutgoingId = nextOutgoingId
        self.outgoingWindow = outgoingWindow
    }

    static let code: UInt64 = 0x13

    init(_ value: AMQPValue) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: Self.code, name: "flow")
        self.nextIncomingId = try fields.uint(0, "next-incoming-id")
        self.incomingWindow = try fields.requiredUInt(1, "incoming-window")
        self.nextOutgoingId = try fields.requiredUInt(2, "next-outgoing-id")
        self.outgoingWindow = try fields.requiredUInt(3, "outgoing-window")
        self.handle = try fields.uint(4, "handle")
        self.deliveryCount = try fields.uint(5, "delivery-count")
        self.linkCredit = try fields.uint(6, "link-credit")
        self.available = try fields.uint(7, "available")
        self.drain = try fields.bool(8, "drain") ?? false
        self.echo = try fields.bool(9, "echo") ?? false
        self.properties = try fields.map(10, "properties")
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.nextIncomingId)
        fields.append(self.incomingWindow)
        fields.append(self.nextOutgoingId)
        fields.append(self.outgoingWindow)
        fields.append(self.handle)
        fields.append(self.deliveryCount)
        fields.append(self.linkCredit)
        fields.append(self.available)
        fields.append(self.drain)
        fields.append(self.echo)
        fields.append(self.properties)
        return fields.described(Self.code)
    }
}

/// `transfer`: (a frame of) a message on a link; the message's bytes follow the performative.
public struct AMQPTransfer: Sendable, Hashable {
    public var handle: UInt32
    public var deliveryId: UInt32?
    public var deliveryTag: [UInt8]?
    public var messageFormat: UInt32?
    public var settled: Bool?
    /// More frames of this delivery follow.
    public var more = false
    public var receiverSettleMode: UInt8?
    public var state: AMQPDeliveryState?
    public var resume = false
    public var aborted = false
    public var batchable = false

    /// A `transfer`.
    public init(handle: UInt32, deliveryId: UInt32?, deliveryTag: [UInt8]?, messageFormat: UInt32? = 0, settled: Bool?, more: Bool = false) {
        self.handle = handle
        self.deliveryId = deliveryId
        self.deliveryTag = deliveryTag
        self.messageFormat = messageFormat
        self.settled = settled
        self.more = more
    }

    static let code: UInt64 = 0x14

    init(_ value: AMQPValue) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: Self.code, name: "transfer")
        self.handle = try fields.requiredUInt(0, "handle")
        self.deliveryId = try fields.uint(1, "delivery-id")
        self.deliveryTag = try fields.binary(2, "delivery-tag")
        self.messageFormat = try fields.uint(3, "message-format")
        self.settled = try fields.bool(4, "settled")
        self.more = try fields.bool(5, "more") ?? false
        self.receiverSettleMode = try fields.ubyte(6, "rcv-settle-mode")
        self.state = try AMQPDeliveryState(fields[7])
        self.resume = try fields.bool(8, "resume") ?? false
        self.aborted = try fields.bool(9, "aborted") ?? false
        self.batchable = try fields.bool(10, "batchable") ?? false
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.handle)
        fields.append(self.deliveryId)
        fields.append(self.deliveryTag)
        fields.append(self.messageFormat)
        fields.append(self.settled)
        fields.append(self.more)
        fields.append(self.receiverSettleMode)
        fields.append(self.state?.value ?? .null)
        fields.append(self.resume)
        fields.append(self.aborted)
        fields.append(self.batchable)
        var value = fields.described(Self.code)
        // `false` flags at the end are the defaults: drop them too.
        if case .described(let descriptor, .list(var list)) = value {
            while let last = list.last, last == .bool(false) || last == .null { list.removeLast() }
            value = .described(descriptor: descriptor, value: .list(list))
        }
        return value
    }
}

/// `disposition`: the state or settlement of a range of deliveries.
public struct AMQPDisposition: Sendable, Hashable {
    public var role: AMQPRole
    public var first: UInt32
    public var last: UInt32?
    public var settled = false
    public var state: AMQPDeliveryState?
    public var batchable = false

    /// A `disposition`.
    public init(role: AMQPRole, first: UInt32, last: UInt32? = nil, settled: Bool, state: AMQPDeliveryState?) {
        self.role = role
        self.first = first
        self.last = last
        self.settled = settled
        self.state = state
    }

    static let code: UInt64 = 0x15

    init(_ value: AMQPValue) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: Self.code, name: "disposition")
        guard let role = try fields.bool(0, "role") else { throw fields.fail("role") }
        self.role = AMQPRole(role)
        self.first = try fields.requiredUInt(1, "first")
        self.last = try fields.uint(2, "last")
        self.settled = try fields.bool(3, "settled") ?? false
        self.state = try AMQPDeliveryState(fields[4])
        self.batchable = try fields.bool(5, "batchable") ?? false
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.role.flag)
        fields.append(self.first)
        fields.append(self.last)
        fields.append(self.settled)
        fields.append(self.state?.value ?? .null)
        if self.batchable { fields.append(true) }
        return fields.described(Self.code)
    }
}

/// `detach`: ends a link (`closed`) or suspends it.
public struct AMQPDetach: Sendable, Hashable {
    public var handle: UInt32
    public var closed = false
    public var error: AMQPError?

    /// A `detach`.
    public init(handle: UInt32, closed: Bool, error: AMQPError? = nil) {
        self.handle = handle
        self.closed = closed
        self.error = error
    }

    static let code: UInt64 = 0x16

    init(_ value: AMQPValue) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: Self.code, name: "detach")
        self.handle = try fields.requiredUInt(0, "handle")
        self.closed = try fields.bool(1, "closed") ?? false
        self.error = try AMQPError(fields[2])
    }

    var value: AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.handle)
        fields.append(self.closed)
        fields.append(self.error?.value ?? .null)
        return fields.described(Self.code)
    }
}

/// `end` (of a session) or `close` (of the connection), with the error that caused it.
public struct AMQPEnding: Sendable, Hashable {
    public var error: AMQPError?

    /// An `end` or `close`.
    public init(error: AMQPError? = nil) { self.error = error }

    init(_ value: AMQPValue, code: UInt64, name: String) throws(AMQPFieldError) {
        let fields = try AMQPFieldReader(value, code: code, name: name)
        self.error = try AMQPError(fields[0])
    }

    func value(code: UInt64) -> AMQPValue {
        var fields = AMQPFieldWriter()
        fields.append(self.error?.value ?? .null)
        return fields.described(code)
    }
}

/// The frame bodies of an AMQP connection (part 2, section 2.7).
public enum AMQPPerformative: Sendable, Hashable {
    case open(AMQPOpen)
    case begin(AMQPBegin)
    case attach(AMQPAttach)
    case flow(AMQPFlow)
    case transfer(AMQPTransfer)
    case disposition(AMQPDisposition)
    case detach(AMQPDetach)
    case end(AMQPEnding)
    case close(AMQPEnding)

    /// Reads a performative from its described list.
    public init(_ value: AMQPValue) throws(AMQPFieldError) {
        guard let code = AMQPFieldReader.code(of: value, names: Self.names) else { throw AMQPFieldError(type: "performative", field: nil) }
        switch code {
        case AMQPOpen.code: self = .open(try AMQPOpen(value))
        case AMQPBegin.code: self = .begin(try AMQPBegin(value))
        case AMQPAttach.code: self = .attach(try AMQPAttach(value))
        case AMQPFlow.code: self = .flow(try AMQPFlow(value))
        case AMQPTransfer.code: self = .transfer(try AMQPTransfer(value))
        case AMQPDisposition.code: self = .disposition(try AMQPDisposition(value))
        case AMQPDetach.code: self = .detach(try AMQPDetach(value))
        case 0x17: self = .end(try AMQPEnding(value, code: 0x17, name: "end"))
        case 0x18: self = .close(try AMQPEnding(value, code: 0x18, name: "close"))
        default: throw AMQPFieldError(type: "performative", field: nil)
        }
    }

    private static let names: [String: UInt64] = [
        "amqp:open:list": 0x10, "amqp:begin:list": 0x11, "amqp:attach:list": 0x12, "amqp:flow:list": 0x13, "amqp:transfer:list": 0x14,
        "amqp:disposition:list": 0x15, "amqp:detach:list": 0x16, "amqp:end:list": 0x17, "amqp:close:list": 0x18,
    ]

    /// The described list.
    public var value: AMQPValue {
        switch self {
        case .open(let open): open.value
        case .begin(let begin): begin.value
        case .attach(let attach): attach.value
        case .flow(let flow): flow.value
        case .transfer(let transfer): transfer.value
        case .disposition(let disposition): disposition.value
        case .detach(let detach): detach.value
        case .end(let end): end.value(code: 0x17)
        case .close(let close): close.value(code: 0x18)
        }
    }
}
