import HeraldCore

/// The request bodies the server decodes on its busiest routes, read by ``FastJSONReader`` in
/// their plain form. A body in any other form, or with a field twice, unknown or missing, is left
/// to ``WireDecoding`` (`nil`), which decides whether it is valid and words the error.
package enum FastWireDecoding {
    /// `bytes` as `T` when `T` is one of the fast-read bodies and the body is in plain form;
    /// `nil` otherwise.
    package static func decode<T>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) -> T? {
        guard let readable = type as? any FastReadable.Type else { return nil }
        return readable.read(bytes) as? T
    }
}

/// A body ``FastJSONReader`` can read.
protocol FastReadable {
    /// Reads one value of this type at the reader's position.
    static func read(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> Self
}

extension FastReadable {
    /// The whole of `bytes` as one value, or `nil` when the reader gives up.
    static func read(_ bytes: UnsafeRawBufferPointer) -> Self? {
        var reader = FastJSONReader(bytes)
        do {
            let value = try Self.read(from: &reader)
            try reader.end()
            return value
        } catch {
            return nil
        }
    }
}

/// The fields seen so far in one object, to give up on a field that comes twice.
private struct SeenFields {
    private var bits: UInt32 = 0

    mutating func insert(_ field: UInt32) throws(FastJSONReader.GiveUp) {
        let bit: UInt32 = 1 << field
        guard self.bits & bit == 0 else { throw FastJSONReader.GiveUp() }
        self.bits |= bit
    }

}

extension SendRequest: FastReadable {
    static func read(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> SendRequest {
        var entity: WireEntity?
        var messages: [WireMessage]?
        var seen = SeenFields()
        try FastJSONReader.readObject(&reader) { name, reader throws(FastJSONReader.GiveUp) in
            if name.spells("entity") {
                try seen.insert(0)
                entity = try WireEntity.read(from: &reader)
            } else if name.spells("messages") {
                try seen.insert(1)
                var list: [WireMessage] = []
                try FastJSONReader.readArray(&reader) { reader throws(FastJSONReader.GiveUp) in list.append(try WireMessage.read(from: &reader)) }
                messages = list
            } else {
                return false
            }
            return true
        }
        guard let entity, let messages else { throw FastJSONReader.GiveUp() }
        return SendRequest(entity: entity, messages: messages)
    }
}

extension WireEntity: FastReadable {
    static func read(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> WireEntity {
        var entity = WireEntity()
        var seen = SeenFields()
        try FastJSONReader.readObject(&reader) { name, reader throws(FastJSONReader.GiveUp) in
            if name.spells("queue") {
                try seen.insert(0)
                entity.queue = try reader.string()
            } else if name.spells("topic") {
                try seen.insert(1)
                entity.topic = try reader.string()
            } else if name.spells("subscription") {
                try seen.insert(2)
                entity.subscription = try reader.string()
            } else if name.spells("deadLetter") {
                try seen.insert(3)
                entity.deadLetter = try reader.bool()
            } else {
                return false
            }
            return true
        }
        return entity
    }
}

extension WireMessage: FastReadable {
    static func read(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> WireMessage {
        var message = WireMessage()
        var seen = SeenFields()
        try FastJSONReader.readObject(&reader) { name, reader throws(FastJSONReader.GiveUp) in
            switch name.count {
            case 4 where name.spells("body"):
                try seen.insert(0)
                message.body = try reader.string()
            case 4 where name.spells("text"):
                try seen.insert(1)
                message.text = try reader.string()
            case 7 where name.spells("subject"):
                try seen.insert(2)
                message.subject = try reader.string()
            case 7 where name.spells("replyTo"):
                try seen.insert(3)
                message.replyTo = try reader.string()
            case 8 where name.spells("senderId"):
                try seen.insert(4)
                message.senderId = try reader.string()
            case 9 where name.spells("messageId"):
                try seen.insert(5)
                message.messageId = try reader.string()
            case 9 where name.spells("sessionId"):
                try seen.insert(6)
                message.sessionId = try reader.string()
            case 11 where name.spells("contentType"):
                try seen.insert(7)
                message.contentType = try reader.string()
            case 11 where name.spells("causationId"):
                try seen.insert(8)
                message.causationId = try reader.string()
            case 12 where name.spells("timeToLiveMs"):
                try seen.insert(9)
                message.timeToLiveMs = try reader.int64()
            case 13 where name.spells("correlationId"):
                try seen.insert(10)
                message.correlationId = try reader.string()
            case 14 where name.spells("senderSequence"):
                try seen.insert(11)
                message.senderSequence = try reader.int64()
            case 20 where name.spells("scheduledEnqueueTime"):
                try seen.insert(12)
                message.scheduledEnqueueTime = try reader.int64()
            case 21 where name.spells("applicationProperties"):
                try seen.insert(13)
                message.applicationProperties = try Self.readProperties(from: &reader)
            default:
                return false
            }
            return true
        }
        return message
    }

    private static func readProperties(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> [String: WireProperty] {
        var properties: [String: WireProperty] = [:]
        var more = try reader.beginObject()
        while more {
            let key = try reader.string()
            // The key was read as a string; its `:` follows.
            try reader.colon()
            guard properties[key] == nil else { throw FastJSONReader.GiveUp() }
            properties[key] = try WireProperty.read(from: &reader)
            more = try reader.nextField()
        }
        return properties
    }
}

extension WireProperty: FastReadable {
    /// Reads `{"string": …}`, `{"int": …}` or `{"bool": …}`; a double is left to the decoder,
    /// whose number parsing is the reference.
    static func read(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> WireProperty {
        var property = WireProperty()
        var seen = SeenFields()
        try FastJSONReader.readObject(&reader) { name, reader throws(FastJSONReader.GiveUp) in
            if name.spells("string") {
                try seen.insert(0)
                property.string = try reader.string()
            } else if name.spells("int") {
                try seen.insert(1)
                property.int = try reader.int64()
            } else if name.spells("bool") {
                try seen.insert(2)
                property.bool = try reader.bool()
            } else {
                return false
            }
            return true
        }
        return property
    }
}

extension ReceiveRequest: FastReadable {
    static func read(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> ReceiveRequest {
        var entity: WireEntity?
        var request = ReceiveRequest(entity: WireEntity(), maxCount: nil, maxWaitMs: nil, mode: nil)
        var seen = SeenFields()
        try FastJSONReader.readObject(&reader) { name, reader throws(FastJSONReader.GiveUp) in
            if name.spells("entity") {
                try seen.insert(0)
                entity = try WireEntity.read(from: &reader)
            } else if name.spells("maxCount") {
                try seen.insert(1)
                request.maxCount = try reader.int()
            } else if name.spells("maxWaitMs") {
                try seen.insert(2)
                request.maxWaitMs = try reader.int64()
            } else if name.spells("mode") {
                try seen.insert(3)
                guard let mode = ReceiveMode(rawValue: try reader.string()) else { throw FastJSONReader.GiveUp() }
                request.mode = mode
            } else if name.spells("maxBytes") {
                try seen.insert(4)
                request.maxBytes = try reader.int()
            } else {
                return false
            }
            return true
        }
        guard let entity else { throw FastJSONReader.GiveUp() }
        request.entity = entity
        return request
    }
}

extension CompleteRequest: FastReadable {
    static func read(from reader: inout FastJSONReader) throws(FastJSONReader.GiveUp) -> CompleteRequest {
        var tokens: [String]?
        try FastJSONReader.readObject(&reader) { name, reader throws(FastJSONReader.GiveUp) in
            guard tokens == nil, name.spells("lockTokens") else { return false }
            var list: [String] = []
            try FastJSONReader.readArray(&reader) { reader throws(FastJSONReader.GiveUp) in list.append(try reader.string()) }
            tokens = list
            return true
        }
        guard let tokens else { throw FastJSONReader.GiveUp() }
        return CompleteRequest(lockTokens: tokens)
    }
}

// Empty values for the readers to fill in; every field is optional.
extension WireEntity { fileprivate init() {} }
extension WireMessage { fileprivate init() {} }
extension WireProperty { fileprivate init() {} }
