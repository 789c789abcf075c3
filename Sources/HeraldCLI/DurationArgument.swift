import ArgumentParser
import Foundation

/// A duration on the command line: a number with a unit, `500ms`, `30s`, `10m`, `2h` or `7d`;
/// a bare number is seconds.
struct DurationArgument: ExpressibleByArgument, Sendable {
    /// The parsed duration.
    var duration: Duration

    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
    ]

    /// Wraps `duration`.
    init(_ duration: Duration) {
        self.duration = duration
    }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        // "ms" before "s" and "m": the longest suffix that matches wins.
        let unit = Self.units.filter { text.hasSuffix($0.suffix) }.max { $0.suffix.count < $1.suffix.count }
        let number = unit.map { String(text.dropLast($0.suffix.count)) } ?? text
        guard let value = Double(number), value.isFinite, value >= 0 else { return nil }
        let milliseconds = value * Double(unit?.milliseconds ?? 1000)
        guard milliseconds < 1e15 else { return nil }
        self.duration = .milliseconds(Int64(milliseconds.rounded()))
    }

    static var defaultCompletionKind: CompletionKind { .default }

    var defaultValueDescription: String { Self.format(self.duration) }

    /// `duration` in the largest unit that states it exactly: `90s`, `10m`, `1500ms`.
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "0s" }
        for (suffix, size) in Self.units.reversed() where milliseconds % size == 0 {
            return "\(milliseconds / size)\(suffix)"
        }
        return "\(milliseconds)ms"
    }
}
