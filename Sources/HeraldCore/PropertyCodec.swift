package import Foundation

/// Stores application properties with their types, so a whole double stays a double.
///
/// A JSON object of key → `"<tag>:<value>"`, the tag one of `s`, `i`, `d`, `b`; Swift prints
/// doubles in a form that reads back exactly.
package enum PropertyCodec {
    /// The typed encoding of `properties`.
    package static func encode(_ properties: [String: PropertyValue]) throws -> Data {
        var tagged: [String: String] = [:]
        for (key, value) in properties {
            switch value {
            case .string(let string): tagged[key] = "s:" + string
            case .int(let int): tagged[key] = "i:" + String(int)
            case .double(let double): tagged[key] = "d:" + String(double)
            case .bool(let bool): tagged[key] = bool ? "b:1" : "b:0"
            }
        }
        return try JSONEncoder().encode(tagged)
    }

    /// The properties `data` encodes.
    package static func decode(_ data: Data) throws -> [String: PropertyValue] {
        let tagged = try JSONDecoder().decode([String: String].self, from: data)
        var properties: [String: PropertyValue] = [:]
        for (key, text) in tagged {
            let value = text.dropFirst(2)
            switch text.prefix(2) {
            case "s:": properties[key] = .string(String(value))
            case "i:": properties[key] = Int64(value).map { .int($0) }
            case "d:": properties[key] = Double(value).map { .double($0) }
            case "b:": properties[key] = .bool(value == "1")
            default: throw HeraldError(.storeFailed, "a stored application property has an unknown type tag")
            }
            if properties[key] == nil { throw HeraldError(.storeFailed, "a stored application property does not parse") }
        }
        return properties
    }
}
