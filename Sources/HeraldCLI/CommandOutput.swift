import Foundation

/// Where the admin commands write: the console, or a capture in tests and embedding programs.
///
/// ```swift
/// let lines = Mutex<[String]>([])
/// let capture = CommandOutput(standardOutput: { text in lines.withLock { $0.append(text) } }, standardError: { _ in })
/// var command = try StatsCommand.parseAsRoot(["--data", path]) as! any AsyncParsableCommand
/// try await CommandOutput.$current.withValue(capture) { try await command.run() }
/// ```
public struct CommandOutput: Sendable {
    /// Writes to standard output.
    public var standardOutput: @Sendable (String) -> Void
    /// Writes to standard error.
    public var standardError: @Sendable (String) -> Void

    /// Creates an output from its two writers.
    public init(standardOutput: @escaping @Sendable (String) -> Void, standardError: @escaping @Sendable (String) -> Void) {
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// The process's standard output and standard error.
    public static let console = CommandOutput(
        standardOutput: { text in FileHandle.standardOutput.write(Data(text.utf8)) },
        standardError: { text in FileHandle.standardError.write(Data(text.utf8)) }
    )

    /// The output of the running command; ``console`` unless a caller binds another.
    @TaskLocal public static var current: CommandOutput = .console

    /// Writes `line` and a newline to the current standard output.
    static func print(_ line: String) {
        Self.current.standardOutput(line + "\n")
    }

    /// Writes `line` and a newline to the current standard error.
    static func printError(_ line: String) {
        Self.current.standardError(line + "\n")
    }

    /// Writes `value` as pretty-printed JSON with sorted keys to the current standard output.
    static func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        Self.print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}
