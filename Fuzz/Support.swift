// Shared helpers of the fuzz targets (compiled into every target; see run.sh).
import Foundation
import HeraldCore
import HeraldWire

/// Stops the run with `message` when `condition` is false: libFuzzer records the input.
@inline(never)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz invariant broken: \(message())") }
}

/// Decodes `data` as the server does; when that succeeds, the value's own encoding decodes
/// back to the same value (no field is lost or changed by a round trip).
func wireRoundTrip<T: Codable & Hashable>(_ type: T.Type, _ data: Data) -> T? {
    guard let value = try? WireDecoding.decode(T.self, from: data) else { return nil }
    let encoded: Data
    do { encoded = try JSONEncoder().encode(value) } catch { fatalError("fuzz invariant broken: \(T.self) does not re-encode: \(error)") }
    do {
        let again = try WireDecoding.decode(T.self, from: encoded)
        require(again == value, "\(T.self) changes in a round trip: \(value) -> \(again)")
    } catch {
        fatalError("fuzz invariant broken: \(T.self) re-encoding does not decode: \(error) — \(String(decoding: encoded, as: UTF8.self))")
    }
    return value
}

/// Checks an entity the server would accept: its wire form gives the same path back, and its
/// description parses back to it.
func checkEntity(_ entity: WireEntity) {
    guard let path = try? entity.path() else { return }
    checkPath(path)
}

func checkPath(_ path: EntityPath) {
    require((try? WireEntity(path).path()) == path, "WireEntity round trip of \(path)")
    require((try? EntityPath(parsing: path.description, isTopic: path.kind == .topic)) == path, "description round trip of \(path)")
}

/// A message the server would accept: validated against default options, then echoed back the
/// way receive and peek answer (WireMessage(message)), with the store's time conversion.
func checkMessage(_ wire: WireMessage, requiresSession: Bool = false) {
    guard let message = try? wire.message() else { return }
    guard (try? message.validate(against: EntityOptions(requiresSession: requiresSession))) != nil else { return }
    _ = message.scheduledEnqueueTime?.millisecondsSince1970
    let echoed = WireMessage(message)
    guard let again = try? echoed.message() else {
        fatalError("fuzz invariant broken: echoed message does not decode: \(echoed)")
    }
    require(WireMessage(again) == echoed, "message echo is not stable: \(echoed) -> \(WireMessage(again))")
    require(again.body == message.body && again.applicationProperties == message.applicationProperties
        && again.messageId == message.messageId && again.timeToLive == message.timeToLive,
        "echoed message differs: \(message) -> \(again)")
    checkFilterMatches(properties: message.applicationProperties, message: message)
}

/// A filter built from a message's own fields and properties matches that message.
func checkFilterMatches(properties: [String: PropertyValue], message: Message) {
    guard !properties.values.contains(where: { if case .double(let d) = $0 { d.isNaN } else { false } }) else { return }
    let filter = SubscriptionFilter(subject: message.subject, correlationId: message.correlationId, contentType: message.contentType, properties: properties)
    require(filter.matches(message), "a filter of a message's own fields does not match it")
}

func checkToken(_ string: String) {
    guard let token = try? WireLockToken.decode(string) else { return }
    require((try? WireLockToken.decode(WireLockToken.encode(token))) == token, "lock token round trip of \(string)")
    checkPath(token.entity)
}

func checkSession(_ wire: WireSessionLock) {
    guard let lock = try? wire.lock() else { return }
    // The server uses the entity, session id and nonce; it answers with the store's own lock.
    checkPath(lock.entity)
}

func checkOptions(_ wire: WireOptions) {
    let options = wire.options()
    guard (try? options.validate()) != nil else { return }
    // Valid options are stored and echoed by the management routes.
    let echoed = WireOptions(options)
    require(echoed.options() == options, "options echo: \(options) -> \(echoed.options())")
}

func checkFilter(_ wire: WireFilter) {
    guard let filter = try? wire.filter(), (try? filter.validate()) != nil else { return }
    require((try? WireFilter(filter).filter()) == filter, "filter echo of \(filter)")
    // The stores keep the filter as JSON (SubscriptionFilter's Codable form).
    guard let json = try? JSONEncoder().encode(filter) else { fatalError("fuzz invariant broken: filter does not encode") }
    require((try? JSONDecoder().decode(SubscriptionFilter.self, from: json)) == filter, "stored filter round trip of \(filter)")
}
