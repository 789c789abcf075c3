import Foundation
import Testing

/// A short `herald-lab crash-campaign` on the embedded store: three SIGKILL rounds (one with a SIGSTOP
/// pause past the lock duration) against real `herald serve` processes, then the checker's verdict.
/// The full campaign (100 rounds per store) is run by hand; see the command's help.
@Suite("Crash campaign")
struct CrashCampaignTests {
    @Test(.timeLimit(.minutes(2)))
    func threeSIGKILLRoundsOnTheEmbeddedStoreLoseNothing() async throws {
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("herald-crash-campaign-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: report) }
        let result = try await HeraldProcess.run(
            ["crash-campaign", "--store", "sqlite", "--rounds", "3", "--pause-every", "2", "--senders", "4", "--receivers", "2", "--report", report.path],
            lab: true,
            timeout: .seconds(90)
        )
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr.suffix(2000))")
        let text = try String(contentsOf: report, encoding: .utf8)
        #expect(text.contains("SIGKILLs: 3, SIGSTOP pauses past the lock duration: 1"), "\(text)")
        #expect(text.contains("lost: 0, duplicated (completed twice): 0, unexpected: 0"), "\(text)")
        #expect(text.contains("result: OK"), "\(text)")
        let sends = text.split(separator: "\n").first { $0.hasPrefix("sends: ") }?.dropFirst("sends: ".count)
        let ids = sends.flatMap { Int($0.prefix { $0.isNumber }) }
        #expect((ids ?? 0) > 0, "no message sent: \(text)")
    }
}
