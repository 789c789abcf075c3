// The AMQP codec's fuzz target: any bytes decode or fail with a typed error, never crash, and what
// decodes survives a round trip (encode, decode again: the same value and the same bytes).
//
// `Fuzz/run.sh fuzz-amqp-codec SECONDS` builds it with libFuzzer and the address sanitizer (see
// Fuzz/README.md). Without `-DFUZZING` the same target is a replay driver: `FuzzAMQPCodec FILE…`
// runs each file (or each file of a folder) through the checks: a crash file libFuzzer saved, or
// the seed corpus, as `swift test` does.
import HeraldAMQP
import NIOCore

/// Runs `bytes` through every decoder of the codec and checks the round trips.
func fuzzAMQPCodec(_ bytes: UnsafeRawBufferPointer) {
    let input = ByteBuffer(bytes: bytes)

    var values = input
    while values.readableBytes > 0, let value = try? values.readAMQPValue() {
        var encoded = ByteBuffer()
        // Decoded values are encodable except arrays whose elements cannot share a constructor.
        guard (try? encoded.writeAMQPValue(value)) != nil else { continue }
        var again = encoded
        guard let decoded = try? again.readAMQPValue(), decoded == value, again.readableBytes == 0 else {
            fatalError("round trip changed \(value) (\(Array(encoded.readableBytesView)))")
        }
        var reencoded = ByteBuffer()
        try! reencoded.writeAMQPValue(decoded)
        precondition(reencoded == encoded, "the encoding of \(value) is not canonical")
        if let performative = try? AMQPPerformative(value) {
            precondition((try? AMQPPerformative(performative.value)) == performative, "performative round trip: \(performative)")
        }
        if let sasl = try? AMQPSASLFrame(value) {
            precondition((try? AMQPSASLFrame(sasl.value)) == sasl, "SASL round trip: \(sasl)")
        }
    }

    var frames = input
    let decoder = AMQPFrameDecoder(maxFrameSize: 4096)
    while let frame = try? decoder.decode(&frames) { _ = frame.body.map { try? AMQPPerformative($0) } }

    var headers = input
    _ = try? AMQPProtocolHeader.read(from: &headers)

    if let message = try? AMQPMessage(from: input) {
        var encoded = ByteBuffer()
        if (try? encoded.writeAMQPMessage(message)) != nil {
            precondition((try? AMQPMessage(from: encoded)) == message, "message round trip: \(message)")
        }
    }
}

#if FUZZING
// SwiftPM names an executable's entry point `<module>_main` and links `main` to it; libFuzzer's
// driver is started from there (libFuzzer's own `main` is then not linked in).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzAMQPCodec(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzAMQPCodec_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzerTestOneInput(data, size) }
}
#else
import Foundation

@main
enum ReplayFuzzInputs {
    static func main() throws {
        var files = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let paths = isDirectory.boolValue ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" } : [path]
            for file in paths {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                data.withUnsafeBytes { fuzzAMQPCodec($0) }
                files += 1
            }
        }
        print("FuzzAMQPCodec: \(files) inputs passed")
    }
}
#endif
