// Entity options and subscription filters as the stores read them back (their Codable JSON),
// plus their validation and matching.
import Foundation
import HeraldCore
import HeraldWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOptionsAndFilters(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let data = Data(bytes.dropFirst())
    if bytes[0] % 2 == 0 {
        guard let options = try? JSONDecoder().decode(EntityOptions.self, from: data) else { return 0 }
        guard let json = try? JSONEncoder().encode(options) else { fatalError("fuzz invariant broken: options do not encode") }
        require((try? JSONDecoder().decode(EntityOptions.self, from: json)) == options, "stored options round trip of \(options)")
        if (try? options.validate()) != nil {
            let wire = WireOptions(options)
            let wholeMilliseconds = [options.lockDuration, options.defaultTimeToLive, options.duplicateDetectionWindow].allSatisfy {
                guard let d = $0 else { return true }
                return d.components.attoseconds % 1_000_000_000_000_000 == 0
            }
            if wholeMilliseconds { require(wire.options() == options, "options echo: \(options) -> \(wire.options())") }
            checkOptions(wire)
        }
    } else {
        guard let filter = try? JSONDecoder().decode(SubscriptionFilter.self, from: data) else { return 0 }
        guard let json = try? JSONEncoder().encode(filter) else { fatalError("fuzz invariant broken: filter does not encode") }
        require((try? JSONDecoder().decode(SubscriptionFilter.self, from: json)) == filter, "stored filter round trip of \(filter) via \(String(decoding: json, as: UTF8.self))")
        let message = Message(
            messageId: filter.messageId ?? "m", body: Data(), contentType: filter.contentType, subject: filter.subject, correlationId: filter.correlationId,
            sessionId: filter.sessionId, replyTo: filter.replyTo, applicationProperties: filter.properties, replyToSessionId: filter.replyToSessionId,
            to: filter.to)
        require(!filter.matchesNothing || !filter.matches(message), "a filter that matches nothing matched \(message)")
        if !filter.matchesNothing, !filter.properties.values.contains(where: { if case .double(let d) = $0 { d.isNaN } else { false } }) {
            require(filter.matches(message), "a filter does not match a message with its own values")
        }
        if (try? filter.validate()) != nil { checkFilter(WireFilter(filter)) }
    }
    return 0
}
