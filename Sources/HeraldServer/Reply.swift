import Foundation
import HTTPTypes
import HeraldCore
import HeraldWire
import Hummingbird
import NIOCore

/// Builds the HTTP responses of the API.
enum Reply {
    /// `value` as JSON with `status`.
    static func json(_ value: some Encodable, status: Int = 200) throws -> Response {
        Self.bytes(try Self.encoded(value), contentType: "application/json", status: status)
    }

    /// `value` as the JSON bytes of an answer: written by ``AnswerEncoder`` (one pass), or by
    /// `JSONEncoder` for what that does not cover.
    static func encoded(_ value: some Encodable) throws -> [UInt8] {
        do {
            return try AnswerEncoder.encode(value)
        } catch is AnswerEncoder.Unsupported {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return Array(try encoder.encode(value))
        }
    }

    /// The answer of a receive or peek: `messages` as a ``HeraldWire/MessagesResponse``.
    static func messages(_ messages: [ReceivedMessage]) throws -> Response {
        Self.bytes(try Self.messagesJSON(messages), contentType: "application/json")
    }

    /// The JSON bytes of ``messages(_:)``.
    static func messagesJSON(_ messages: [ReceivedMessage]) throws -> [UInt8] {
        try DirectAnswer.messages(messages) ?? Self.encoded(MessagesResponse(messages: messages.map(WireReceivedMessage.init)))
    }

    /// The answer of a send: `receipts` as a ``HeraldWire/SendResponse``.
    static func receipts(_ receipts: [SendReceipt]) -> Response {
        Self.bytes(DirectAnswer.receipts(receipts), contentType: "application/json")
    }

    /// 204 without a body.
    static func noContent() -> Response {
        Response(status: .noContent)
    }

    /// `bytes` with `contentType`.
    static func bytes(_ bytes: [UInt8], contentType: String, status: Int = 200) -> Response {
        Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: contentType, .contentLength: String(bytes.count)],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// The ``HeraldWire/WireError`` answer of `error`.
    static func error(_ error: ServerError) -> Response {
        let body = (try? JSONEncoder().encode(WireError(error.code, message: error.message))) ?? Data()
        var response = Self.bytes(Array(body), contentType: "application/json", status: error.status)
        for (name, value) in error.headers {
            if let field = HTTPField.Name(name) { response.headers[field] = value }
        }
        return response
    }
}

/// Decoding request bodies: strictly (``HeraldWire/WireDecoding``), so that a malformed body is
/// refused before anything reaches the store.
enum BodyDecoder {
    /// The body as `T`.
    ///
    /// - Throws: ``HeraldCore/HeraldError/Code/invalidArgument`` for an empty or malformed body.
    static func decode<T: Codable>(_ type: T.Type, from body: ByteBuffer) throws(HeraldError) -> T {
        if let value = body.withUnsafeReadableBytes({ FastWireDecoding.decode(T.self, from: $0) }) { return value }
        return try WireDecoding.decode(T.self, from: Data(body.readableBytesView))
    }

    /// The body as `T`, or `nil` when it is empty (the PUT routes' bodies are optional).
    static func decodeOptional<T: Codable>(_ type: T.Type, from body: ByteBuffer) throws(HeraldError) -> T? {
        body.readableBytes == 0 ? nil : try Self.decode(T.self, from: body)
    }
}
