import ArgumentParser
import HeraldCore

/// An application property on the command line: `key=value` (a string), or typed as
/// `key:int=5`, `key:double=1.5`, `key:bool=true`.
struct PropertyArgument: ExpressibleByArgument, Sendable {
    var key: String
    var value: PropertyValue

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "=") else { return nil }
        let name = argument[..<equals]
        let text = String(argument[argument.index(after: equals)...])
        let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
        guard let key = parts.first, !key.isEmpty else { return nil }
        self.key = key
        switch parts.count == 2 ? parts[1] : "string" {
        case "string": self.value = .string(text)
        case "int":
            guard let value = Int64(text) else { return nil }
            self.value = .int(value)
        case "double":
            guard let value = Double(text) else { return nil }
            self.value = .double(value)
        case "bool":
            guard let value = Bool(text) else { return nil }
            self.value = .bool(value)
        default: return nil
        }
    }

    /// The command-line form of a property: `region=eu`, `count:int=5`, `urgent:bool=true`.
    static func format(key: String, value: PropertyValue) -> String {
        switch value {
        case .string(let value): "\(key)=\(value)"
        case .int(let value): "\(key):int=\(value)"
        case .double(let value): "\(key):double=\(value)"
        case .bool(let value): "\(key):bool=\(value)"
        }
    }

    /// The properties `arguments` name; a key given twice keeps its last value.
    static func properties(_ arguments: [PropertyArgument]) -> [String: PropertyValue] {
        arguments.reduce(into: [:]) { $0[$1.key] = $1.value }
    }
}
