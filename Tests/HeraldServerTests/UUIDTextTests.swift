import Foundation
import HeraldCore
import HeraldWire
import Testing

/// Lock tokens carry a UUID written and read by ``UUIDText``; it must agree with Foundation's
/// `uuidString` and `UUID(uuidString:)` on every input.
@Suite struct UUIDTextTests {
    @Test func formatsAndParsesAsFoundationDoes() {
        for _ in 0..<1000 {
            let uuid = UUID()
            #expect(UUIDText.format(uuid) == uuid.uuidString)
            #expect(UUIDText.parse(Substring(uuid.uuidString)) == uuid)
            #expect(UUIDText.parse(Substring(uuid.uuidString.lowercased())) == uuid)
        }
        let zero = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        #expect(UUIDText.format(zero) == zero.uuidString)
    }

    @Test(arguments: [
        "", "E621E1F8-C36C-495A-93FC-0C247A3E6E5", "E621E1F8-C36C-495A-93FC-0C247A3E6E5FF", "E621E1F8C36C-495A-93FC-0C247A3E6E5F0",
        "E621E1F8-C36C-495A-93FC_0C247A3E6E5F", "G621E1F8-C36C-495A-93FC-0C247A3E6E5F", "E621E1F8-C36C-495A-93FC-0C247A3E6E5 ",
        "é621E1F8-C36C-495A-93FC-0C247A3E6E5F", "{621E1F8-C36C-495A-93FC-0C247A3E6E5}",
    ])
    func refusesWhatFoundationRefuses(_ text: String) {
        #expect(UUID(uuidString: text) == nil)
        #expect(UUIDText.parse(Substring(text)) == nil)
    }

    @Test func lockTokensRoundTrip() throws {
        let token = LockToken(entity: .subscription("all", of: "events").deadLetter, sequenceNumber: 42, nonce: UUID())
        #expect(try WireLockToken.decode(WireLockToken.encode(token)) == token)
        #expect(throws: HeraldError.self) { try WireLockToken.decode("orders#12@not-a-uuid") }
        #expect(throws: HeraldError.self) { try WireLockToken.decode("orders@\(UUID().uuidString)") }
    }

    /// A list of tokens reads a path and a nonce once for a run of tokens that repeat them; every
    /// token is still read as it would be alone, and a bad one fails the list.
    @Test func aListOfTokensIsReadAsEachTokenAlone() throws {
        let (first, second) = (UUID(), UUID())
        let texts = [
            "orders#1@\(first)", "orders#2@\(first)", "orders#007@\(first)", "orders#3@\(second)",
            "orders/$deadletterqueue#3@\(second)", "events/subscriptions/all#4@\(second)", "events/subscriptions/all#5@\(first)",
            "orders#6@\(first.uuidString.lowercased())", "orders#+7@\(first)",
        ]
        #expect(try WireLockToken.decode(texts) == texts.map { try WireLockToken.decode($0) })
        #expect(try WireLockToken.decode(texts).map(\.sequenceNumber) == [1, 2, 7, 3, 3, 4, 5, 6, 7])
        #expect(try WireLockToken.decode([String]()).isEmpty)
        for bad in ["orders#8@not-a-uuid", "bad name#8@\(first)", "orders#x@\(first)", "orders@\(first)"] {
            #expect(throws: HeraldError.self, "\(bad)") { try WireLockToken.decode(["orders#1@\(first)", bad, "orders#2@\(first)"]) }
        }
    }
}
