public import NIOCore

/// A message as AMQP 1.0 carries it (part 3, section 3.2): the header and annotations the
/// infrastructure reads and stamps, then the bare message the sender wrote.
public struct AMQPMessage: Sendable, Hashable {
    /// The `header` section.
    public struct Header: Sendable, Hashable {
        public var durable = false
        public var priority: UInt8?
        /// Time to live in milliseconds.
        public var ttl: UInt32?
        public var firstAcquirer = false
        /// Earlier deliveries that failed.
        public var deliveryCount: UInt32 = 0

        /// A header.
        public init(durable: Bool = false, ttl: UInt32? = nil, deliveryCount: UInt32 = 0) {
            self.durable = durable
            self.ttl = ttl
            self.deliveryCount = deliveryCount
        }
    }

    /// The `properties` section.
    public struct Properties: Sendable, Hashable {
        /// A string, ulong, uuid or binary.
        public var messageId: AMQPValue = .null
        public var userId: [UInt8]?
        public var to: String?
        public var subject: String?
        public var replyTo: String?
        public var correlationId: AMQPValue = .null
        public var contentType: String?
        public var contentEncoding: String?
        /// Milliseconds since the Unix epoch.
        public var absoluteExpiryTime: Int64?
        /// Milliseconds since the Unix epoch.
        public var creationTime: Int64?
        /// Service Bus: the session id.
        public var groupId: String?
        public var groupSequence: UInt32?
        /// Service Bus: the session id of replies.
        public var replyToGroupId: String?

        /// Empty properties.
        public init() {}
    }

    /// The body: data sections, sequence sections or one value.
    public enum Body: Sendable, Hashable {
        case data([[UInt8]])
        case sequence([[AMQPValue]])
        case value(AMQPValue)
    }

    public var header: Header?
    public var deliveryAnnotations: [AMQPMapEntry]?
    public var messageAnnotations: [AMQPMapEntry]?
    public var properties: Properties?
    public var applicationProperties: [AMQPMapEntry]?
    public var body: Body
    public var footer: [AMQPMapEntry]?

    /// A message with `body` and nothing else.
    public init(body: Body) {
        self.body = body
    }

    enum SectionCode {
        static let header: UInt64 = 0x70
        static let deliveryAnnotations: UInt64 = 0x71
        static let messageAnnotations: UInt64 = 0x72
        static let properties: UInt64 = 0x73
        static let applicationProperties: UInt64 = 0x74
        static let data: UInt64 = 0x75
        static let sequence: UInt64 = 0x76
        static let value: UInt64 = 0x77
        static let footer: UInt64 = 0x78
    }
}

/// Bytes that are not a message: an unknown section, sections out of order, a body of mixed kinds.
public enum AMQPMessageError: Error, Hashable, Sendable {
    case malformed(AMQPDecodingError)
    case invalidSection(String)
}

extension AMQPMessage {
    /// Reads a message from all of `bytes`.
    public init(from bytes: ByteBuffer) throws(AMQPMessageError) {
        var buffer = bytes
        var sections: [(UInt64, AMQPValue)] = []
        while buffer.readableBytes > 0 {
            let section: AMQPValue
            do { section = try buffer.readAMQPValue() } catch { throw .malformed(error) }
            guard case .described(let descriptor, let value) = section, let code = descriptor.unsigned, (0x70...0x78).contains(code) else {
                throw .invalidSection("a message section must be described by a code from 0x70 to 0x78")
            }
            if let last = sections.last?.0, code < last || (code == last && code != SectionCode.data && code != SectionCode.sequence) {
                throw .invalidSection("section 0x\(String(code, radix: 16)) is out of order or repeated")
            }
            sections.append((code, value))
        }
        var body: Body?
        var message = AMQPMessage(body: .data([]))
        for (code, value) in sections {
            switch code {
            case SectionCode.header: message.header = try Self.header(value)
            case SectionCode.deliveryAnnotations: message.deliveryAnnotations = try Self.map(value, "delivery-annotations")
            case SectionCode.messageAnnotations: message.messageAnnotations = try Self.map(value, "message-annotations")
            case SectionCode.properties: message.properties = try Self.properties(value)
            case SectionCode.applicationProperties: message.applicationProperties = try Self.map(value, "application-properties")
            case SectionCode.data:
                guard case .binary(let bytes) = value else { throw .invalidSection("a data section holds binary") }
                switch body {
                case nil: body = .data([bytes])
                case .data(let chunks): body = .data(chunks + [bytes])
                default: throw .invalidSection("a body mixes kinds of sections")
                }
            case SectionCode.sequence:
                guard case .list(let values) = value else { throw .invalidSection("an amqp-sequence section holds a list") }
                switch body {
                case nil: body = .sequence([values])
                case .sequence(let lists): body = .sequence(lists + [values])
                default: throw .invalidSection("a body mixes kinds of sections")
                }
            case SectionCode.value:
                guard body == nil else { throw .invalidSection("a body mixes kinds of sections") }
                body = .value(value)
            default: message.footer = try Self.map(value, "footer")
            }
        }
        message.body = body ?? .data([])
        self = message
    }

    private static func map(_ value: AMQPValue, _ name: String) throws(AMQPMessageError) -> [AMQPMapEntry]? {
        switch value {
        case .null: return nil
        case .map(let entries): return entries
        default: throw .invalidSection("the \(name) section holds a map")
        }
    }

    private static func header(_ value: AMQPValue) throws(AMQPMessageError) -> Header {
        let fields = try Self.fields(value, "header")
        do {
            var header = Header()
            header.durable = try fields.bool(0, "durable") ?? false
            header.priority = try fields.ubyte(1, "priority")
            header.ttl = try fields.uint(2, "ttl")
            header.firstAcquirer = try fields.bool(3, "first-acquirer") ?? false
            header.deliveryCount = try fields.uint(4, "delivery-count") ?? 0
            return header
        } catch {
            throw .invalidSection(error.description)
        }
    }

    private static func properties(_ value: AMQPValue) throws(AMQPMessageError) -> Properties {
        let fields = try Self.fields(value, "properties")
        do {
            var properties = Properties()
            properties.messageId = fields[0]
            properties.userId = try fields.binary(1, "user-id")
            properties.to = try fields.string(2, "to")
            properties.subject = try fields.string(3, "subject")
            properties.replyTo = try fields.string(4, "reply-to")
            properties.correlationId = fields[5]
            properties.contentType = try fields.symbol(6, "content-type")
            properties.contentEncoding = try fields.symbol(7, "content-encoding")
            properties.absoluteExpiryTime = try Self.timestamp(fields[8], "absolute-expiry-time")
            properties.creationTime = try Self.timestamp(fields[9], "creation-time")
            properties.groupId = try fields.string(10, "group-id")
            properties.groupSequence = try fields.uint(11, "group-sequence")
            properties.replyToGroupId = try fields.string(12, "reply-to-group-id")
            return properties
        } catch {
            throw .invalidSection(error.description)
        }
    }

    private static func timestamp(_ value: AMQPValue, _ name: String) throws(AMQPFieldError) -> Int64? {
        switch value {
        case .null: return nil
        case .timestamp(let milliseconds): return milliseconds
        default: throw AMQPFieldError(type: "properties", field: name)
        }
    }

    private static func fields(_ value: AMQPValue, _ name: String) throws(AMQPMessageError) -> AMQPFieldReader {
        guard case .list(let list) = value else { throw .invalidSection("the \(name) section holds a list") }
        return AMQPFieldReader(type: name, fields: list)
    }
}

extension ByteBuffer {
    /// Appends `message`'s sections.
    @discardableResult
    public mutating func writeAMQPMessage(_ message: AMQPMessage) throws(AMQPEncodingError) -> Int {
        let start = self.writerIndex
        typealias Code = AMQPMessage.SectionCode
        func section(_ code: UInt64, _ value: AMQPValue) -> AMQPValue { .described(descriptor: .ulong(code), value: value) }
        if let header = message.header {
            var fields = AMQPFieldWriter()
            fields.append(header.durable)
            fields.append(header.priority)
            fields.append(header.ttl)
            fields.append(header.firstAcquirer)
            // Always written, 0 included: some clients read a missing count as an error.
            fields.append(.uint(header.deliveryCount))
            try self.writeAMQPValue(section(Code.header, fields.list))
        }
        if let annotations = message.deliveryAnnotations { try self.writeAMQPValue(section(Code.deliveryAnnotations, .map(annotations))) }
        if let annotations = message.messageAnnotations { try self.writeAMQPValue(section(Code.messageAnnotations, .map(annotations))) }
        if let properties = message.properties {
            var fields = AMQPFieldWriter()
            fields.append(properties.messageId)
            fields.append(properties.userId)
            fields.append(properties.to)
            fields.append(properties.subject)
            fields.append(properties.replyTo)
            fields.append(properties.correlationId)
            fields.append(properties.contentType, symbol: true)
            fields.append(properties.contentEncoding, symbol: true)
            fields.append(properties.absoluteExpiryTime.map { .timestamp($0) } ?? .null)
            fields.append(properties.creationTime.map { .timestamp($0) } ?? .null)
            fields.append(properties.groupId)
            fields.append(properties.groupSequence)
            fields.append(properties.replyToGroupId)
            try self.writeAMQPValue(section(Code.properties, fields.list))
        }
        if let properties = message.applicationProperties { try self.writeAMQPValue(section(Code.applicationProperties, .map(properties))) }
        switch message.body {
        case .data(let chunks):
            for chunk in chunks { try self.writeAMQPValue(section(Code.data, .binary(chunk))) }
        case .sequence(let lists):
            for list in lists { try self.writeAMQPValue(section(Code.sequence, .list(list))) }
        case .value(let value):
            try self.writeAMQPValue(section(Code.value, value))
        }
        if let footer = message.footer { try self.writeAMQPValue(section(Code.footer, .map(footer))) }
        return self.writerIndex - start
    }
}
