// Durations on the drill's command line use Go's syntax (`500ms`, `2s`, `1m30s`, `1.5s`), the
// same syntax the service's own flags take, so an operator writes `--signal-after 2s` and
// `-- --drain-timeout 2s` alike. The parser is the small GoDuration module the service uses too;
// the drill still imports nothing of the engine it is judging.

import ArgumentParser
import GoDuration

/// A non-negative duration with nanosecond resolution, parsed from and printed as Go's syntax.
struct GoDuration: Equatable, Comparable, Sendable, CustomStringConvertible {
    var nanoseconds: Int64

    init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    static func milliseconds(_ value: Int64) -> GoDuration { GoDuration(nanoseconds: value * 1_000_000) }
    static func seconds(_ value: Int64) -> GoDuration { GoDuration(nanoseconds: value * 1_000_000_000) }

    static func < (lhs: GoDuration, rhs: GoDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Parses Go's `time.ParseDuration` syntax (`500ms`, `1.5s`, `1m30s`) with the parser the
    /// service's own flags use; nil for anything else, a negative value included.
    init?(_ text: String) {
        guard let duration = Duration(goString: text) else { return nil }
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        nanoseconds = whole + attoseconds / 1_000_000_000
    }

    /// A short form that parses back to the same value: `2s`, `1m30s`, `500ms`, `1500ms`, `250us`.
    var description: String {
        let ns = nanoseconds
        if ns == 0 { return "0s" }
        if ns % 1_000_000_000 == 0 {
            let seconds = ns / 1_000_000_000
            let hours = seconds / 3600, minutes = seconds % 3600 / 60, rest = seconds % 60
            var text = ""
            if hours > 0 { text += "\(hours)h" }
            if minutes > 0 { text += "\(minutes)m" }
            if rest > 0 || text.isEmpty { text += "\(rest)s" }
            return text
        }
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
        if ns % 1_000 == 0 { return "\(ns / 1_000)us" }
        return "\(ns)ns"
    }

    /// Milliseconds as a Double, for printing.
    var milliseconds: Double { Double(nanoseconds) / 1_000_000 }
}

extension GoDuration: ExpressibleByArgument {
    init?(argument: String) {
        self.init(argument)
    }

    /// `--help` prints `(default: 2s)` rather than the struct's debug form.
    var defaultValueDescription: String { description }
}
