// Durations on the drill's command line use Go's syntax (`500ms`, `2s`, `1m30s`, `1.5s`), the
// same syntax the service's own flags take, so an operator writes `--signal-after 2s` and
// `-- --drain-timeout 2s` alike. The drill keeps its own small parser rather than importing
// ServiceKit's, so that it never depends on the code it is judging.

import ArgumentParser

/// A non-negative duration with nanosecond resolution, parsed from and printed as Go's syntax.
struct GoDuration: Equatable, Comparable, Sendable, CustomStringConvertible {
    var nanoseconds: Int64

    init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    static func milliseconds(_ value: Int64) -> GoDuration { GoDuration(nanoseconds: value * 1_000_000) }
    static func seconds(_ value: Int64) -> GoDuration { GoDuration(nanoseconds: value * 1_000_000_000) }

    static func < (lhs: GoDuration, rhs: GoDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Parses Go's `time.ParseDuration` syntax: one or more decimal numbers, each with an
    /// optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); a bare `0` is the
    /// one number allowed without a unit. Returns nil for anything else, for a negative value
    /// (no drill setting has a meaning for one) and for more than Int64.max nanoseconds.
    init?(_ text: String) {
        var rest = Substring(text)
        if rest.first == "+" {
            rest.removeFirst()
        }
        if rest == "0" {
            self.nanoseconds = 0
            return
        }
        guard !rest.isEmpty else { return nil }

        var total: Int64 = 0
        while !rest.isEmpty {
            let wholeDigits = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(wholeDigits.count)
            var fractionDigits: Substring = ""
            if rest.first == "." {
                rest.removeFirst()
                fractionDigits = rest.prefix { $0.isASCII && $0.isNumber }
                rest = rest.dropFirst(fractionDigits.count)
            }
            // "." alone, or a unit with no number before it, is not a duration.
            guard !wholeDigits.isEmpty || !fractionDigits.isEmpty else { return nil }

            let unit = rest.prefix { !($0.isASCII && $0.isNumber) && $0 != "." }
            rest = rest.dropFirst(unit.count)
            guard let scale = Self.unitNanoseconds(unit) else { return nil }

            // Whole part: digits times the unit, with overflow checks at every step.
            var whole: Int64 = 0
            for digit in wholeDigits {
                guard let value = digit.wholeNumberValue else { return nil }
                let (shifted, overflow1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = shifted.addingReportingOverflow(Int64(value))
                guard !overflow1, !overflow2 else { return nil }
                whole = sum
            }
            let (wholeNanoseconds, overflow) = whole.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }

            // Fraction: digit by digit, each worth a tenth of the last; below a nanosecond the
            // remaining digits cannot matter and are dropped (Go does the same).
            var fractionNanoseconds: Int64 = 0
            var place = scale
            for digit in fractionDigits {
                place /= 10
                guard place > 0, let value = digit.wholeNumberValue else { break }
                fractionNanoseconds += Int64(value) * place
            }

            let (partial, overflow3) = total.addingReportingOverflow(wholeNanoseconds)
            let (sum, overflow4) = partial.addingReportingOverflow(fractionNanoseconds)
            guard !overflow3, !overflow4 else { return nil }
            total = sum
        }
        self.nanoseconds = total
    }

    private static func unitNanoseconds(_ unit: Substring) -> Int64? {
        switch unit {
        case "ns": 1
        // Go accepts the ASCII spelling, MICRO SIGN and GREEK SMALL LETTER MU.
        case "us", "\u{00B5}s", "\u{03BC}s": 1_000
        case "ms": 1_000_000
        case "s": 1_000_000_000
        case "m": 60_000_000_000
        case "h": 3_600_000_000_000
        default: nil
        }
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
