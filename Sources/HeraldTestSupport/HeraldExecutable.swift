public import Foundation

/// Finds the package's executables for tests that run them as child processes: `herald` (`herald
/// serve`, `herald bench`) and `herald-lab` (crash workers, multi-process receivers, the crash
/// campaign).
public enum HeraldExecutable {
    /// The `herald` executable built with the tests: `HERALD_EXECUTABLE` if set, else beside the
    /// test runner, else `.build/debug` of this package; `nil` when none exists (run `swift build`).
    public static func url() -> URL? {
        self.url(named: "herald", override: "HERALD_EXECUTABLE")
    }

    /// The `herald-lab` executable built with the tests: `HERALD_LAB_EXECUTABLE` if set, else
    /// found as ``url()`` finds `herald`; `nil` when none exists (run `swift build`).
    public static func labURL() -> URL? {
        self.url(named: "herald-lab", override: "HERALD_LAB_EXECUTABLE")
    }

    /// The executable target `name` of this package (an example, say), found as ``url()`` finds
    /// `herald`, or at the path in the environment variable `override` if that is set.
    public static func url(named name: String, override: String? = nil) -> URL? {
        let fileManager = FileManager.default
        var candidates: [URL] = []
        if let override, let path = ProcessInfo.processInfo.environment[override] {
            candidates.append(URL(fileURLWithPath: path))
        }
        // Linux: the test runner is `.build/<triple>/<config>/HeraldPackageTests.xctest`, an executable.
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name))
        // Linux: Bundle.main is the build folder; macOS: the .xctest bundle sits in it.
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(name))
        for bundle in Bundle.allBundles + [Bundle.main] where bundle.bundleURL.pathExtension == "xctest" {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
        }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if fileManager.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                candidates.append(directory.appendingPathComponent(".build/debug/\(name)"))
                break
            }
            directory.deleteLastPathComponent()
        }
        return candidates.first { fileManager.isExecutableFile(atPath: $0.path) }
    }
}
