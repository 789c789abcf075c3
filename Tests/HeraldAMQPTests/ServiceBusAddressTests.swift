import HeraldAMQP
import HeraldCore
import Testing

@testable import HeraldAMQPServer

/// The addresses the Service Bus SDKs attach links to.
struct ServiceBusAddressTests {
    @Test func theAddressesTheSDKsWrite() throws {
        let cases: [(String, ServiceBusAddress)] = [
            ("$cbs", .claimsBasedSecurity),
            ("amqps://localhost:5672/orders", .entity(ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false))),
            ("orders", .entity(ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false))),
            ("amqps://localhost/events/Subscriptions/audit", .entity(ServiceBusEntity(name: "events", subscription: "audit", isDeadLetter: false))),
            ("amqps://localhost/orders/$DeadLetterQueue", .entity(ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: true))),
            ("events/subscriptions/audit/$deadletterqueue", .entity(ServiceBusEntity(name: "events", subscription: "audit", isDeadLetter: true))),
            ("orders/$management", .management(ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false))),
            ("amqps://h/events/Subscriptions/audit/$management", .management(ServiceBusEntity(name: "events", subscription: "audit", isDeadLetter: false))),
        ]
        for (text, address) in cases {
            #expect(try ServiceBusAddress(parsing: text) == address, "\(text)")
        }
        #expect(
            ServiceBusEntity(name: "events", subscription: "audit", isDeadLetter: true).receivePath == EntityPath.subscription("audit", of: "events").deadLetter
        )
        #expect(ServiceBusEntity(name: "orders", subscription: nil, isDeadLetter: false).receivePath == .queue("orders"))
    }

    @Test func whatIsNoAddressOrWhatHeraldLacksIsRefused() {
        for text in ["", "amqps://localhost", "a/b", "a//b", "orders/Subscriptions", "bad name", "amqps://h/a/b/c/d/e", String(repeating: "x", count: 200)] {
            #expect(throws: AMQPError.self, "\(text)") { try ServiceBusAddress(parsing: text) }
        }
        #expect(throws: AMQPError(condition: AMQPCondition.notFound, description: "Herald has no transfer dead-letter queues (it does not forward messages)")) {
            try ServiceBusAddress(parsing: "orders/$Transfer/$DeadLetterQueue")
        }
    }
}
