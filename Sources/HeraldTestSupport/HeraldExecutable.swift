public import Foundation

/// Finds the `herald` executable for tests that run it as a child process (crash workers,
/// multi-process receivers, `herald serve`).
public enum HeraldExecutable {
    /// The `herald` executable built with the tests: `HERALD_EXECUTABLE` if set, else beside the
    /// test runner, else `.build/debug` of this package; `nil` when none exists (run `swift build`).
    public static func url() -> URL? {
        let fileManager = FileManager.default
        var candidates: [URL] = []
        if let path = ProcessInfo.processInfo.environment["HERALD_EXECUTABLE"] {
            candidates.append(URL(fileURLWithPath: path))
        }
        // Linux: the test runner is `.build/<triple>/<config>/HeraldPackageTests.xctest`, an executable.
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("herald"))
        // Linux: Bundle.main is the build folder; macOS: the .xctest bundle sits in it.
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("herald"))
        for bundle in Bundle.allBundles + [Bundle.main] where bundle.bundleURL.pathExtension == "xctest" {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("herald"))
        }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if fileManager.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                candidates.append(directory.appendingPathComponent(".build/debug/herald"))
                break
            }
            directory.deleteLastPathComponent()
        }
        return candidates.first { fileManager.isExecutableFile(atPath: $0.path) }
    }
}
