import Foundation
import HeraldTestSupport
import Testing

/// The codec's fuzz target, built as its replay driver, passes its seed corpus: the corpus and the
/// target stay usable for a libFuzzer run (`Fuzz/run.sh fuzz-amqp-codec`).
struct FuzzTargetTests {
    @Test func theFuzzTargetReplaysItsSeedCorpus() async throws {
        let executable = try #require(HeraldExecutable.url(named: "FuzzAMQPCodec"), "FuzzAMQPCodec is built with the tests (run `swift build`)")
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/corpus/fuzz-amqp-codec").standardized
        let inputs = try FileManager.default.contentsOfDirectory(atPath: corpus.path).count
        #expect(inputs > 20)
        let replay = try ChildProcess(executable, [corpus.path])
        #expect(await replay.waitForExit(timeout: .seconds(60)) == .exited(0), "\(replay.standardError.suffix(2000))")
        #expect(replay.standardOutput == "FuzzAMQPCodec: \(inputs) inputs passed\n")
    }
}
