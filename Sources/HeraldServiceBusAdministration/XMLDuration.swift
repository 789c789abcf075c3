import Foundation

/// The `xs:duration` text Service Bus writes its time spans in: `PT1M`, `P14D`,
/// `P10675199DT2H48M5.4775807S` (.NET's `TimeSpan.MaxValue`, meaning "never").
enum XMLDuration {
    /// What Service Bus writes for a time span that never ends (no time to live, never deleted
    /// when idle).
    static let never = "P10675199DT2H48M5.4775807S"
    /// Durations at least this long mean "never": .NET's `TimeSpan.MaxValue` (10,675,199 days,
    /// 2:48:05.4775807), less its fraction of a second, which clients round their own ways.
    static let neverThreshold: Duration = .seconds(Int64(922_337_203_684))

    /// Parses `P[nD][T[nH][nM][n[.n]S]]` (weeks too); `nil` for anything else, including years and
    /// months, whose length is not fixed, and negative durations.
    static func parse(_ text: String) -> Duration? {
        var rest = Substring(text)
        guard rest.first == "P" else { return nil }
        rest = rest.dropFirst()
        var total = Duration.zero
        var inTime = false
        var sawComponent = false
        var sawTimeComponent = false
        while !rest.isEmpty {
            if rest.first == "T" {
                guard !inTime else { return nil }
                inTime = true
                rest = rest.dropFirst()
                continue
            }
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, number.count <= 24 else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = rest.first else { return nil }
            rest = rest.dropFirst()
            let seconds: Double
            switch (unit, inTime) {
            case ("W", false): seconds = 7 * 86_400
            case ("D", false): seconds = 86_400
            case ("H", true): seconds = 3600
            case ("M", true): seconds = 60
            case ("S", true): seconds = 1
            default: return nil
            }
            guard let value = Self.component(number, unit: seconds) else { return nil }
            total += value
            sawComponent = true
            sawTimeComponent = sawTimeComponent || inTime
        }
        return sawComponent && (!inTime || sawTimeComponent) ? total : nil
    }

    /// `count` units of `unit` seconds, exact for whole numbers and to the nanosecond for fractions.
    private static func component(_ number: Substring, unit: Double) -> Duration? {
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = Int64(parts[0].isEmpty ? "0" : String(parts[0])) else { return nil }
        // Past ~290 years of days the nanoseconds of a Duration would not matter: cap so the
        // multiplication cannot overflow; such a span means "never" anyway.
        let cappedWhole = min(whole, 100_000_000)
        var duration = Duration.seconds(cappedWhole) * Int(unit)
        if parts.count == 2 {
            guard let fraction = Double("0." + parts[1]) else { return nil }
            duration += .nanoseconds(Int64((fraction * unit * 1e9).rounded()))
        }
        return duration
    }

    /// `duration` as Service Bus writes it: `P1DT2H3M4.5S`, `PT1M`, `PT0S`.
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var remaining = seconds
        let days = remaining / 86_400
        remaining %= 86_400
        let hours = remaining / 3600
        remaining %= 3600
        let minutes = remaining / 60
        remaining %= 60
        var text = "P"
        if days > 0 { text += "\(days)D" }
        var time = ""
        if hours > 0 { time += "\(hours)H" }
        if minutes > 0 { time += "\(minutes)M" }
        if remaining > 0 || attoseconds > 0 || (days == 0 && hours == 0 && minutes == 0) {
            if attoseconds > 0 {
                var fraction = String(attoseconds / 100_000_000_000)  // 7 digits, as .NET writes ticks
                fraction = String(repeating: "0", count: 7 - fraction.count) + fraction
                while fraction.hasSuffix("0") { fraction.removeLast() }
                time += fraction.isEmpty ? "\(remaining)S" : "\(remaining).\(fraction)S"
            } else {
                time += "\(remaining)S"
            }
        }
        if !time.isEmpty { text += "T" + time }
        return text
    }
}
