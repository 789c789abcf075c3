import Foundation
import HTTPTypes
import HeraldCore
import HeraldSQLite
import HeraldWire
import Testing

/// Request bodies the fuzz targets (Fuzz/run.sh) found crashing, sent to a real server.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// fuzz-wire-bodies: a send whose `scheduledEnqueueTime` does not fit the stores' Int64
    /// milliseconds trapped the server (Date.millisecondsSince1970); now it is a 400.
    @Test(arguments: ["9223372036854775807", "-9223372036854775808", "253402300800000"])
    func farScheduledTimeIsABadRequest(_ milliseconds: String) async throws {
        try await ServerHarness.withServer { server in
            try await server.broker.createQueue("orders", options: EntityOptions())
            try await server.withClient { http in
                let body = #"{"entity":{"queue":"orders"},"messages":[{"text":"x","scheduledEnqueueTime":\#(milliseconds)}]}"#
                let answer = try await http.request(.post, "/v1/messages/send", body: Array(body.utf8))
                #expect(answer.status == 400 && answer.error == "invalidArgument", "\(answer.status) \(answer.text)")
                let commit = #"{"sends":[{"entity":{"queue":"orders"},"message":{"text":"x","scheduledEnqueueTime":\#(milliseconds)}}]}"#
                let committed = try await http.request(.post, "/v1/transactions/commit", body: Array(commit.utf8))
                #expect(committed.status == 400 && committed.error == "invalidArgument", "\(committed.status) \(committed.text)")
                let counts = try await http.request(.post, "/v1/messages/counts", json: ["entity": ["queue": "orders"]])
                #expect(counts.status == 200)
            }
        }
    }
}
