import Foundation
import HeraldCore
import HeraldPostgres

let url = ProcessInfo.processInfo.environment["HERALD_POSTGRES_URL"] ?? "postgres://herald@localhost/herald"

try await PostgresBroker.withBroker(
    clientConfiguration: try PostgresBroker.clientConfiguration(url: url),
    configuration: .init(schema: "example")
) { broker in
    do {
        try await broker.createQueue("orders")
    } catch let error as HeraldError where error.code == .entityAlreadyExists {
        // Another process, or an earlier run, created it: every broker on this schema shares it.
    }
    let receipt = try await broker.send(Message(text: "hello"), to: .queue("orders"))
    print("sent: sequence number \(receipt.sequenceNumber ?? 0)")
    for received in try await broker.receive(from: .queue("orders"), maxCount: 10, maxWaitTime: .seconds(5)) {
        print("received: \(String(decoding: received.message.body, as: UTF8.self))")
        try await broker.complete(received.lockToken!)
    }
}
