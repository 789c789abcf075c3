import Foundation
import HeraldCore
import Testing

/// The pure rules of the core: names, option bounds, message limits, filters, paths, the clock.
@Suite struct HeraldCoreTests {
    @Test(arguments: ["a", "A9", "9x", "a.b_c-d", String(repeating: "q", count: 128)])
    func validNames(_ name: String) throws {
        try EntityName.validate(name)
    }

    @Test(arguments: ["", "-a", ".a", "_a", "a b", "a/b", "é", "a$", String(repeating: "q", count: 129)])
    func invalidNames(_ name: String) {
        #expect(code { try EntityName.validate(name) } == .invalidName)
    }

    @Test func optionBoundsAreExact() {
        func check(_ options: EntityOptions) -> HeraldError.Code? { code { try options.validate() } }
        #expect(check(EntityOptions()) == nil)
        #expect(check(EntityOptions(lockDuration: .seconds(1))) == nil)
        #expect(check(EntityOptions(lockDuration: .milliseconds(999))) == .invalidOption)
        #expect(check(EntityOptions(lockDuration: .seconds(300))) == nil)
        #expect(check(EntityOptions(lockDuration: .seconds(300) + .nanoseconds(1))) == .invalidOption)
        #expect(check(EntityOptions(maxDeliveryCount: 0)) == .invalidOption)
        #expect(check(EntityOptions(maxDeliveryCount: 2000)) == nil)
        #expect(check(EntityOptions(maxDeliveryCount: 2001)) == .invalidOption)
        #expect(check(EntityOptions(maxMessageSize: 1024 * 1024)) == nil)
        #expect(check(EntityOptions(maxMessageSize: 1024 * 1024 + 1)) == .invalidOption)
        #expect(check(EntityOptions(duplicateDetectionWindow: .seconds(7 * 24 * 3600))) == nil)
        #expect(check(EntityOptions(duplicateDetectionWindow: .seconds(7 * 24 * 3600 + 1))) == .invalidOption)
        #expect(check(EntityOptions(defaultTimeToLive: .zero)) == .invalidOption)
        #expect(check(EntityOptions(parkSessionOnDeadLetter: true)) == .invalidOption)
        #expect(check(EntityOptions(requiresSession: true, parkSessionOnDeadLetter: true)) == nil)
    }

    @Test func messageLimitsAreExact() {
        let options = EntityOptions(maxMessageSize: 10)
        func check(_ message: Message, _ options: EntityOptions = options) -> HeraldError.Code? {
            code { try message.validate(against: options) }
        }
        #expect(check(Message(body: Data(count: 10))) == nil)
        #expect(check(Message(body: Data(count: 11))) == .messageTooLarge)
        #expect(check(Message(messageId: String(repeating: "m", count: 128), body: Data())) == nil)
        #expect(check(Message(messageId: String(repeating: "m", count: 129), body: Data())) == .identifierTooLong)
        #expect(check(Message(body: Data(), sessionId: String(repeating: "s", count: 129))) == .identifierTooLong)
        let key = "k"
        let fits = String(repeating: "v", count: HeraldLimits.maxPropertySize - 1)
        #expect(check(Message(body: Data(), applicationProperties: [key: .string(fits)])) == nil)
        #expect(check(Message(body: Data(), applicationProperties: [key: .string(fits + "v")])) == .propertyTooLarge)
        let half = String(repeating: "v", count: HeraldLimits.maxPropertySize - 2)
        let total: [String: PropertyValue] = ["k1": .string(half), "k2": .string(half)]
        #expect(check(Message(body: Data(), applicationProperties: total)) == nil)
        var over = total
        over["k"] = .bool(true)
        #expect(check(Message(body: Data(), applicationProperties: over)) == .propertiesTooLarge)
        #expect(check(Message(body: Data(), senderId: "s")) == .invalidArgument)
        #expect(check(Message(body: Data(), senderId: "s", senderSequence: 0)) == .invalidArgument)
        #expect(check(Message(body: Data()), EntityOptions(requiresSession: true)) == .sessionRequired)
    }

    @Test func filtersMatchOnEveryCondition() {
        let message = Message(
            body: Data(), contentType: "application/json", subject: "OrderPlaced", correlationId: "c1",
            applicationProperties: ["region": .string("eu"), "priority": .int(2)]
        )
        #expect(SubscriptionFilter.all.matches(message))
        #expect(SubscriptionFilter(subject: "OrderPlaced").matches(message))
        #expect(!SubscriptionFilter(subject: "OrderCancelled").matches(message))
        #expect(SubscriptionFilter(correlationId: "c1", contentType: "application/json").matches(message))
        #expect(!SubscriptionFilter(correlationId: "c2").matches(message))
        #expect(SubscriptionFilter(properties: ["region": .string("eu"), "priority": .int(2)]).matches(message))
        #expect(!SubscriptionFilter(properties: ["priority": .string("2")]).matches(message))
        #expect(!SubscriptionFilter(properties: ["missing": .bool(true)]).matches(message))
    }

    @Test func pathsRoundTripThroughTheirDescription() throws {
        let paths: [EntityPath] = [
            .queue("orders"), .queue("orders").deadLetter, .subscription("audit", of: "events"),
            .subscription("audit", of: "events").deadLetter,
        ]
        for path in paths {
            #expect(try EntityPath(parsing: path.description) == path)
        }
        #expect(try EntityPath(parsing: "events", isTopic: true) == .topic("events"))
        #expect(code { _ = try EntityPath(parsing: "a/b") } == .invalidName)
        #expect(code { _ = try EntityPath(parsing: "a/subscriptions/-x") } == .invalidName)
        #expect(code { try EntityPath.topic("t").deadLetter.validate() } == .invalidArgument)
    }

    @Test func manualClockMovesOnlyWhenTold() {
        let clock = ManualBrokerClock()
        let wall = clock.now()
        #expect(clock.monotonicNow() == .zero)
        clock.advance(by: .seconds(5))
        #expect(clock.now().timeIntervalSince(wall) == 5)
        #expect(clock.monotonicNow() == .seconds(5))
        clock.jumpWallClock(by: .seconds(-3600))
        #expect(clock.monotonicNow() == .seconds(5), "a wall-clock jump leaves the monotonic clock alone")
    }

    @Test func errorCodesRoundTripThroughTheirNames() {
        for code in HeraldError.Code.all {
            #expect(HeraldError.Code(code.description) == code)
        }
        #expect(Set(HeraldError.Code.all.map(\.description)).count == HeraldError.Code.all.count)
    }
}
