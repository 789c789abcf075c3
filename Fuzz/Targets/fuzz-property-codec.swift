// Application properties as the stores read them back (PropertyCodec.decode), then used as a
// message's properties and a filter's.
import Foundation
import HeraldCore
import HeraldWire

/// Equality that treats a NaN double as equal to itself (the codec can read "d:nan").
func sameProperties(_ a: [String: PropertyValue], _ b: [String: PropertyValue]) -> Bool {
    guard a.count == b.count else { return false }
    for (key, value) in a {
        guard let other = b[key] else { return false }
        switch (value, other) {
        case (.double(let x), .double(let y)): if x.bitPattern != y.bitPattern && x != y { return false }
        default: if value != other { return false }
        }
    }
    return true
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPropertyCodec(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    guard let properties = try? PropertyCodec.decode(data) else { return 0 }
    guard let encoded = try? PropertyCodec.encode(properties) else { fatalError("fuzz invariant broken: decoded properties do not encode") }
    guard let again = try? PropertyCodec.decode(encoded) else { fatalError("fuzz invariant broken: encoded properties do not decode: \(String(decoding: encoded, as: UTF8.self))") }
    require(sameProperties(again, properties), "PropertyCodec round trip: \(properties) -> \(again)")
    let message = Message(messageId: "m", body: Data(), applicationProperties: properties)
    if (try? message.validate(against: EntityOptions())) != nil {
        checkFilterMatches(properties: properties, message: message)
        // A valid stored message is echoed by receive and peek (non-finite doubles cannot be JSON).
        let finite = properties.values.allSatisfy { if case .double(let d) = $0 { d.isFinite } else { true } }
        if finite {
            let wire = WireMessage(message)
            if let json = try? JSONEncoder().encode(wire), let back = try? WireDecoding.decode(WireMessage.self, from: json), let rebuilt = try? back.message() {
                require(rebuilt.applicationProperties == properties, "properties change on the wire: \(properties) -> \(rebuilt.applicationProperties)")
            } else {
                fatalError("fuzz invariant broken: a stored message's wire form does not decode")
            }
        }
    }
    return 0
}
