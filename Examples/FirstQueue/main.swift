import HeraldCore
import HeraldSQLite

// The broker runs for the closure's scope (in a server, add it to your ServiceGroup: it is a Service).
try await SQLiteBroker.withBroker(path: "herald.sqlite") { broker in
    do {
        try await broker.createQueue("orders", options: EntityOptions(duplicateDetectionWindow: .seconds(600)))
    } catch let error as HeraldError where error.code == .entityAlreadyExists {
        // A second run finds the queue the first one created.
    }

    // Returns once the message is durable. The same message id again within 10 minutes is a duplicate.
    let receipt = try await broker.send(
        Message(messageId: "order-42", text: #"{"sku":"A1","quantity":2}"#, subject: "PlaceOrder"), to: .queue("orders"))
    print("sent order-42: sequence number \(receipt.sequenceNumber ?? 0)\(receipt.isDuplicate ? ", a duplicate" : "")")

    // Peek-lock: each message is locked for the queue's lock duration (60 s by default).
    for received in try await broker.receive(from: .queue("orders"), maxCount: 10, maxWaitTime: .seconds(5)) {
        print("received \(received.message.subject ?? ""): \(String(decoding: received.message.body, as: UTF8.self))")
        try await broker.complete(received.lockToken!)  // or abandon, defer, deadLetter
    }
}
