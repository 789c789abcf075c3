/// The frame bodies of the SASL exchange that precedes an AMQP connection (part 5, section 5.3).
public enum AMQPSASLFrame: Sendable, Hashable {
    /// The server's mechanisms.
    case mechanisms([String])
    /// The client's choice, with its first response.
    case initial(mechanism: String, response: [UInt8]?, hostname: String?)
    case challenge([UInt8])
    case response([UInt8])
    /// The result: code 0 is success; 1 authentication failed, 2 system error, 3 and 4 temporary.
    case outcome(code: UInt8, additionalData: [UInt8]?)

    /// Reads a SASL frame body from its described list.
    public init(_ value: AMQPValue) throws(AMQPFieldError) {
        let names: [String: UInt64] = [
            "amqp:sasl-mechanisms:list": 0x40, "amqp:sasl-init:list": 0x41, "amqp:sasl-challenge:list": 0x42, "amqp:sasl-response:list": 0x43,
            "amqp:sasl-outcome:list": 0x44,
        ]
        guard let code = AMQPFieldReader.code(of: value, names: names) else { throw AMQPFieldError(type: "sasl frame", field: nil) }
        switch code {
        case 0x40:
            let fields = try AMQPFieldReader(value, code: code, name: "sasl-mechanisms")
            guard let mechanisms = try fields.symbols(0, "sasl-server-mechanisms") else { throw fields.fail("sasl-server-mechanisms") }
            self = .mechanisms(mechanisms)
        case 0x41:
            let fields = try AMQPFieldReader(value, code: code, name: "sasl-init")
            guard let mechanism = try fields.symbol(0, "mechanism") else { throw fields.fail("mechanism") }
            self = .initial(mechanism: mechanism, response: try fields.binary(1, "initial-response"), hostname: try fields.string(2, "hostname"))
        case 0x42:
            let fields = try AMQPFieldReader(value, code: code, name: "sasl-challenge")
            guard let challenge = try fields.binary(0, "challenge") else { throw fields.fail("challenge") }
            self = .challenge(challenge)
        case 0x43:
            let fields = try AMQPFieldReader(value, code: code, name: "sasl-response")
            guard let response = try fields.binary(0, "response") else { throw fields.fail("response") }
            self = .response(response)
        case 0x44:
            let fields = try AMQPFieldReader(value, code: code, name: "sasl-outcome")
            guard let outcome = try fields.ubyte(0, "code") else { throw fields.fail("code") }
            self = .outcome(code: outcome, additionalData: try fields.binary(1, "additional-data"))
        default:
            throw AMQPFieldError(type: "sasl frame", field: nil)
        }
    }

    /// The described list.
    public var value: AMQPValue {
        var fields = AMQPFieldWriter()
        switch self {
        case .mechanisms(let mechanisms):
            fields.append(.array(mechanisms.map { .symbol($0) }))
            return fields.described(0x40)
        case .initial(let mechanism, let response, let hostname):
            fields.append(mechanism, symbol: true)
            fields.append(response)
            fields.append(hostname)
            return fields.described(0x41)
        case .challenge(let bytes):
            fields.append(bytes)
            return fields.described(0x42)
        case .response(let bytes):
            fields.append(bytes)
            return fields.described(0x43)
        case .outcome(let code, let data):
            fields.append(code)
            fields.append(data)
            return fields.described(0x44)
        }
    }
}
