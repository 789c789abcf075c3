import Foundation
import HeraldCore
import Testing

/// Conversions of numbers a client controls never trap, and identifiers are random.
@Suite struct ClientNumberTests {
    @Test func durationConversionsHoldAtTheBoundsOfInt64() {
        #expect(Duration.seconds(Int64.max).milliseconds == .max)
        #expect(Duration.seconds(Int64.min).milliseconds == .min)
        #expect(Duration.milliseconds(Int64.max).nanoseconds == .max)
        #expect(Duration.milliseconds(Int64.min).nanoseconds == .min)
        #expect(Duration.milliseconds(Int64.max).milliseconds == .max)
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Duration.milliseconds(-1500).nanoseconds == -1_500_000_000)
    }

    @Test func datesBeyondInt64MillisecondsHoldAtTheBounds() {
        #expect(Date(timeIntervalSince1970: 1e300).millisecondsSince1970 == .max)
        #expect(Date(timeIntervalSince1970: -1e300).millisecondsSince1970 == .min)
        #expect(Date(timeIntervalSince1970: .infinity).millisecondsSince1970 == .max)
        #expect(Date(timeIntervalSince1970: .nan).millisecondsSince1970 == 0)
        #expect(Date(millisecondsSince1970: Int64.max).millisecondsSince1970 == .max)
        #expect(Date(millisecondsSince1970: 1_700_000_000_123).millisecondsSince1970 == 1_700_000_000_123)
    }

    @Test func messageIdsAreRandomVersion4UUIDs() {
        let ids = (0..<1000).map { _ in Message(text: "x").messageId }
        #expect(Set(ids).count == 1000)
        for id in ids.prefix(50) {
            let uuid = UUID(uuidString: id)
            #expect(uuid != nil, "\(id)")
            #expect(id.dropFirst(14).first == "4", "version 4: \(id)")
            #expect("89AB".contains(id.dropFirst(19).first!), "RFC 4122 variant: \(id)")
        }
    }

    /// The ids the server gives messages sent without one come from a pool of kernel randomness
    /// refilled every 16 ids: unique across refills and across concurrent senders.
    @Test func pooledIdsAreUniqueVersion4UUIDs() async throws {
        let ids = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for _ in 0..<4 { group.addTask { try (0..<1000).map { _ throws(HeraldError) in try RandomIdentifier.uuid() } } }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(Set(ids).count == 4000)
        for id in ids.prefix(40).map(\.uuidString) {
            #expect(id.dropFirst(14).first == "4", "version 4: \(id)")
            #expect("89AB".contains(id.dropFirst(19).first!), "RFC 4122 variant: \(id)")
        }
    }

    /// The ids of messages made without one (they cannot throw): version 4, in Foundation's text form.
    @Test func defaultMessageIdsAreUniqueVersion4UUIDs() {
        let ids = (0..<2000).map { _ in RandomIdentifier.uuidString() }
        #expect(Set(ids).count == 2000)
        for id in ids.prefix(200) {
            #expect(UUID(uuidString: id)?.uuidString == id, "Foundation's form: \(id)")
            #expect(id.dropFirst(14).first == "4", "version 4: \(id)")
            #expect("89AB".contains(id.dropFirst(19).first!), "RFC 4122 variant: \(id)")
        }
    }
}
