import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// An XML element as the administration API's bodies need it: its namespace and local name, its
/// attributes, its text and its child elements.
struct XMLTree: Equatable, Sendable {
    /// The element's namespace URI; `""` for none.
    var namespace: String
    /// The element's name without its prefix.
    var name: String
    /// The attributes, by their names without prefix (`xsi:type` is `type`).
    var attributes: [String: String]
    /// The text directly inside the element, trimmed.
    var text: String
    var children: [XMLTree]

    /// The first child named `name` (in any namespace).
    func child(_ name: String) -> XMLTree? {
        self.children.first { $0.name == name }
    }

    /// The trimmed text of the child named `name`; `nil` when there is none.
    func text(of name: String) -> String? {
        self.child(name)?.text
    }

    /// The value of an `xsi:type`-like attribute without its prefix (`d6p1:string` is `string`).
    var typeAttribute: String? {
        guard let value = self.attributes["type"] else { return nil }
        return value.split(separator: ":").last.map(String.init)
    }
}

/// Why a body is not XML the administration API takes.
struct XMLTreeError: Error, CustomStringConvertible {
    var description: String
}

/// Parses a request body into an ``XMLTree`` with FoundationXML, within limits a hostile client
/// cannot grow past: the body's size is bounded by the server, the depth and element count here,
/// and a document type declaration (the door to entity expansion) is refused.
enum XMLTreeParser {
    /// The deepest nesting accepted.
    static let maxDepth = 16
    /// The most elements in one document.
    static let maxElements = 4096

    static func parse(_ data: Data) throws(XMLTreeError) -> XMLTree {
        if Self.declaresDocumentType(data) {
            throw XMLTreeError(description: "the body declares a document type, which the administration API does not accept")
        }
        let builder = Builder()
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        let parsed = parser.parse()
        if let failure = builder.failure { throw XMLTreeError(description: failure) }
        guard parsed, let root = builder.root else {
            let reason = parser.parserError.map { "\($0.localizedDescription)" } ?? "no root element"
            throw XMLTreeError(description: "the body is not well-formed XML (line \(parser.lineNumber)): \(reason)")
        }
        return root
    }

    private static func declaresDocumentType(_ data: Data) -> Bool {
        data.range(of: Data("<!DOCTYPE".utf8)) != nil || data.range(of: Data("<!ENTITY".utf8)) != nil
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?
        var elements = 0
        var failure: String?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            self.elements += 1
            guard self.stack.count < XMLTreeParser.maxDepth, self.elements <= XMLTreeParser.maxElements else {
                self.failure = "the body nests deeper than \(XMLTreeParser.maxDepth) or holds more than \(XMLTreeParser.maxElements) elements"
                parser.abortParsing()
                return
            }
            var unprefixed: [String: String] = [:]
            for (key, value) in attributes {
                let local = key.split(separator: ":").last.map(String.init) ?? key
                if key.hasPrefix("xmlns") { continue }
                unprefixed[local] = value
            }
            let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
            self.stack.append(XMLTree(namespace: namespaceURI ?? "", name: local, attributes: unprefixed, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !self.stack.isEmpty else { return }
            self.stack[self.stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard var element = self.stack.popLast() else { return }
            element.text = element.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if self.stack.isEmpty {
                self.root = element
            } else {
                self.stack[self.stack.count - 1].children.append(element)
            }
        }
    }
}

/// Writes the XML of the administration API's answers, escaping text and attribute values.
struct XMLWriter {
    private(set) var text = ""

    /// Appends `<name attributes>`, then what `content` writes, then `</name>`.
    mutating func element(_ name: String, _ attributes: KeyValuePairs<String, String> = [:], content: (inout XMLWriter) -> Void) {
        self.open(name, attributes)
        content(&self)
        self.text += "</\(name)>"
    }

    /// Appends an element holding `value` as text; nothing when `value` is `nil`.
    mutating func element(_ name: String, _ attributes: KeyValuePairs<String, String> = [:], text value: String?) {
        guard let value else { return }
        self.open(name, attributes)
        self.text += Self.escaped(value)
        self.text += "</\(name)>"
    }

    /// Appends an element with no content.
    mutating func empty(_ name: String, _ attributes: KeyValuePairs<String, String> = [:]) {
        self.text += "<\(name)"
        self.attributes(attributes)
        self.text += "/>"
    }

    private mutating func open(_ name: String, _ attributes: KeyValuePairs<String, String>) {
        self.text += "<\(name)"
        self.attributes(attributes)
        self.text += ">"
    }

    private mutating func attributes(_ attributes: KeyValuePairs<String, String>) {
        for (key, value) in attributes { self.text += " \(key)=\"\(Self.escaped(value))\"" }
    }

    static func escaped(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
