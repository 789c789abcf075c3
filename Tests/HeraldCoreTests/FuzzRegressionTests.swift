import Foundation
import HeraldCore
import Testing

/// Inputs the fuzz targets (Fuzz/run.sh) found crashing, kept so they stay fixed.
@Suite struct FuzzRegressionTests {
    /// fuzz-wire-bodies: `{"sessionId":"s","scheduledEnqueueTime":9223372036854775807}` passed
    /// `Message.validate`, then trapped in `Date.millisecondsSince1970` ("Double value cannot be
    /// converted to Int64") when a store converted the scheduled time back to milliseconds.
    @Test(arguments: [Int64.max, Int64.min, 253_402_300_800_000, -62_135_596_800_001])
    func scheduledTimeOutsideTheYears1To9999IsRejected(_ milliseconds: Int64) {
        let message = Message(messageId: "m", body: Data(), scheduledEnqueueTime: Date(millisecondsSince1970: milliseconds))
        #expect(throws: HeraldError.self) { try message.validate(against: EntityOptions()) }
        do {
            try message.validate(against: EntityOptions())
        } catch {
            #expect(error.code == .invalidArgument)
        }
    }

    @Test(arguments: [253_402_300_799_999, -62_135_596_800_000, 0, 1_800_000_000_000] as [Int64])
    func scheduledTimeInsideTheRangeIsAcceptedAndConverts(_ milliseconds: Int64) throws {
        let time = Date(millisecondsSince1970: milliseconds)
        try Message(messageId: "m", body: Data(), scheduledEnqueueTime: time).validate(against: EntityOptions())
        #expect(time.millisecondsSince1970 == milliseconds)
    }

    /// fuzz-wire-bodies: a subscription filter on `{"double": 172}` was stored as `172` and read
    /// back (after a restart) as `.int(172)`, so it matched other messages than before. The
    /// crashing body, after its type byte: `{"subject": "Order", "correlationId": "!!!!!!!plication/json",
    /// "properties": {"a": {"double": 172}, "b": {"bool": false}}}`.
    @Test func wholeDoubleInAStoredFilterStaysADouble() throws {
        let filter = SubscriptionFilter(subject: "Order", correlationId: "!!!!!!!plication/json", properties: ["a": .double(172), "b": .bool(false)])
        let stored = try JSONDecoder().decode(SubscriptionFilter.self, from: JSONEncoder().encode(filter))
        #expect(stored == filter)
        #expect(
            stored.matches(
                Message(
                    messageId: "m", body: Data(), subject: "Order", correlationId: "!!!!!!!plication/json",
                    applicationProperties: ["a": .double(172), "b": .bool(false)])))
        #expect(
            !stored.matches(
                Message(
                    messageId: "m", body: Data(), subject: "Order", correlationId: "!!!!!!!plication/json",
                    applicationProperties: ["a": .int(172), "b": .bool(false)])))
    }

    /// Filters stored before doubles were written keyed still read as they did.
    @Test func bareStoredPropertyValuesStillDecode() throws {
        let json = #"{"properties":{"d":1.5,"i":172,"b":true,"s":"x","k":{"double":2}}}"#
        let filter = try JSONDecoder().decode(SubscriptionFilter.self, from: Data(json.utf8))
        #expect(filter.properties == ["d": .double(1.5), "i": .int(172), "b": .bool(true), "s": .string("x"), "k": .double(2)])
    }
}
