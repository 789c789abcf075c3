import Foundation
import HeraldCore
import Testing

@testable import HeraldCLI

@Suite("command-line values")
struct ArgumentTests {
    @Test("durations parse with units and format in the largest exact unit")
    func durations() {
        #expect(DurationArgument(argument: "500ms")?.duration == .milliseconds(500))
        #expect(DurationArgument(argument: "30s")?.duration == .seconds(30))
        #expect(DurationArgument(argument: "10m")?.duration == .seconds(600))
        #expect(DurationArgument(argument: "2h")?.duration == .seconds(7200))
        #expect(DurationArgument(argument: "7d")?.duration == .seconds(7 * 86400))
        #expect(DurationArgument(argument: "1.5s")?.duration == .milliseconds(1500))
        #expect(DurationArgument(argument: "45")?.duration == .seconds(45))
        #expect(DurationArgument(argument: "-1s") == nil)
        #expect(DurationArgument(argument: "soon") == nil)
        #expect(DurationArgument.format(.seconds(90)) == "90s")
        #expect(DurationArgument.format(.seconds(600)) == "10m")
        #expect(DurationArgument.format(.milliseconds(1500)) == "1500ms")
        #expect(DurationArgument.format(.zero) == "0s")
    }

    @Test("properties parse as strings or typed values")
    func properties() {
        #expect(PropertyArgument(argument: "region=eu")?.value == .string("eu"))
        #expect(PropertyArgument(argument: "count:int=5")?.value == .int(5))
        #expect(PropertyArgument(argument: "urgent:bool=true")?.value == .bool(true))
        #expect(PropertyArgument(argument: "note=a=b")?.value == .string("a=b"))
        #expect(PropertyArgument(argument: "count:int=five") == nil)
        #expect(PropertyArgument(argument: "novalue") == nil)
        #expect(PropertyArgument.format(key: "count", value: .int(5)) == "count:int=5")
    }

    @Test("tables align columns and never break lines")
    func table() {
        var table = Table([.init("NAME"), .init("COUNT", alignRight: true)])
        table.append(["orders", "7"])
        table.append(["a\nb", "12345"])
        #expect(table.render() == "NAME    COUNT\norders      7\na b     12345")
    }
}
