import HeraldCore
import Testing

@testable import HeraldServer

@Suite("The server's metrics")
struct ServerMetricsTests {
    @Test func countsAndTimingsAccumulateAcrossRequests() throws {
        let metrics = ServerMetrics()
        for _ in 0..<3 {
            metrics.sent([SendReceipt(sequenceNumber: 1, isDuplicate: false), SendReceipt(sequenceNumber: 1, isDuplicate: true)], to: .queue("orders"))
        }
        metrics.sent([SendReceipt(sequenceNumber: 1, isDuplicate: false)], to: .queue("invoices"))
        for status in [200, 204, 404] { metrics.request(operation: "send", status: status, duration: .milliseconds(1)) }
        metrics.request(operation: "receive", status: 200, duration: .milliseconds(1))
        let text = String(decoding: metrics.render(), as: UTF8.self)
        for line in [
            #"herald_messages_sent_total{entity="orders"} 3"#, #"herald_messages_duplicate_total{entity="orders"} 3"#,
            #"herald_messages_sent_total{entity="invoices"} 1"#,
            #"herald_http_request_duration_seconds_count{operation="send",status="2xx"} 2"#,
            #"herald_http_request_duration_seconds_count{operation="send",status="4xx"} 1"#,
            #"herald_http_request_duration_seconds_count{operation="receive",status="2xx"} 1"#,
        ] {
            #expect(text.contains(line), "missing \(line) in\n\(text)")
        }
    }
}
