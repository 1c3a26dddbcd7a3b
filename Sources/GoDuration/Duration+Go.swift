// Go's duration syntax (`time.ParseDuration` and `time.Duration.String`), so that operators can
// write timeouts the way Go services accept them: `500ms`, `10s`, `1m30s`, `1.5h`.
//
// Like Go, the resolution is one nanosecond and the range is that of a 64-bit count of
// nanoseconds (about 292 years).

extension Duration {
    /// Parses a duration in Go's `time.ParseDuration` syntax: one or more decimal numbers, each
    /// with an optional fraction and a unit suffix (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`),
    /// such as `500ms`, `1.5h` or `2m30s`. A bare `0` is the only number allowed without a unit.
    ///
    /// Unlike Go, a leading `-` is rejected: a negative timeout has no meaning for us, and
    /// refusing it here keeps that check out of every caller. A leading `+` is accepted, as in Go.
    /// Digits of a fraction below one nanosecond are dropped.
    ///
    /// Returns nil for anything else: an empty string, a missing or unknown unit, whitespace,
    /// exponents (`1e3s`), or a total of more than `Int64.max` nanoseconds.
    public init?(goString: String) {
        var rest = goString.utf8[...]
        if rest.first == UInt8(ascii: "+") {
            rest.removeFirst()
        }
        // Go's single exception to "every number has a unit".
        if rest.elementsEqual("0".utf8) {
            self = .zero
            return
        }
        if rest.isEmpty {
            return nil
        }

        // Int128 holds any intermediate product (at most Int64.max hours in nanoseconds), so
        // overflow is a plain comparison against the Int64 limit rather than checked arithmetic.
        let limit = Int128(Int64.max)
        var total: Int128 = 0
        while !rest.isEmpty {
            // The integer part: [0-9]*
            var whole: Int128 = 0
            var hasWholeDigits = false
            while let digit = rest.first.flatMap(Self.decimalDigit) {
                whole = whole * 10 + digit
                guard whole <= limit else { return nil }
                hasWholeDigits = true
                rest.removeFirst()
            }

            // The fraction: (\.[0-9]*)?  Digits past 18 cannot change a nanosecond count even
            // in hours (10^-18 h < 1 ns), so they are read but not accumulated.
            var fraction: Int128 = 0
            var scale: Int128 = 1
            var hasFractionDigits = false
            if rest.first == UInt8(ascii: ".") {
                rest.removeFirst()
                while let digit = rest.first.flatMap(Self.decimalDigit) {
                    if scale < 1_000_000_000_000_000_000 {
                        fraction = fraction * 10 + digit
                        scale *= 10
                    }
                    hasFractionDigits = true
                    rest.removeFirst()
                }
            }
            // "." or ".s" alone is not a number.
            guard hasWholeDigits || hasFractionDigits else { return nil }

            // The unit runs up to the next number, as in Go; so "10 s" has the unit " s" and
            // "1e3s" the unit "e", both unknown. A '.' or digit is ASCII and never falls
            // inside a multi-byte scalar, so the slice is valid UTF-8.
            let unitStart = rest.startIndex
            while let byte = rest.first, byte != UInt8(ascii: "."), Self.decimalDigit(byte) == nil {
                rest.removeFirst()
            }
            let unit = Substring(goString.utf8[unitStart..<rest.startIndex])
            guard let nanosecondsPerUnit = Self.goUnitNanoseconds(unit) else { return nil }

            total += whole * nanosecondsPerUnit + fraction * nanosecondsPerUnit / scale
            guard total <= limit else { return nil }
        }
        self = .nanoseconds(Int64(total))
    }

    /// Formats the duration as Go's `time.Duration.String()` does: `1h2m3.5s`, `2h0m0s`,
    /// `1m30s`, `10s`, `1.5s`, `500ms`, `1.2µs`, `7ns`, `0s`; negative durations get a leading `-`.
    ///
    /// Parts below one nanosecond are truncated toward zero, as Go has no finer resolution.
    /// `Duration(goString: d.goString) == d` for every non-negative whole-nanosecond `d` up to
    /// `Int64.max` nanoseconds.
    public var goString: String {
        let nanoseconds = attoseconds / 1_000_000_000
        let sign = nanoseconds < 0 ? "-" : ""
        let magnitude = nanoseconds.magnitude
        if magnitude == 0 {
            return "0s"
        }

        // Below a second Go switches to the largest unit that keeps an integer part.
        if magnitude < 1_000 {
            return "\(sign)\(magnitude)ns"
        }
        if magnitude < 1_000_000 {
            return sign + Self.decimal(magnitude, fractionDigits: 3) + "\u{00B5}s"
        }
        if magnitude < 1_000_000_000 {
            return sign + Self.decimal(magnitude, fractionDigits: 6) + "ms"
        }

        // From a second up Go always writes seconds, and minutes and hours once they are non-zero.
        let totalSeconds = magnitude / 1_000_000_000
        let totalMinutes = totalSeconds / 60
        var text = "\(totalSeconds % 60)" + Self.fractionSuffix(magnitude % 1_000_000_000, digits: 9) + "s"
        if totalMinutes > 0 {
            text = "\(totalMinutes % 60)m" + text
            let hours = totalMinutes / 60
            if hours > 0 {
                text = "\(hours)h" + text
            }
        }
        return sign + text
    }

    /// The value of an ASCII decimal digit, or nil for any other byte.
    private static func decimalDigit(_ byte: UInt8) -> Int128? {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        return Int128(byte - UInt8(ascii: "0"))
    }

    /// Nanoseconds in one of Go's duration units, or nil for an unknown unit.
    private static func goUnitNanoseconds(_ unit: Substring) -> Int128? {
        switch unit {
        case "ns": 1
        // Go accepts the ASCII spelling, U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU. Swift
        // string equality does not unify the last two (they are only compatibility-equivalent).
        case "us", "\u{00B5}s", "\u{03BC}s": 1_000
        case "ms": 1_000_000
        case "s": 1_000_000_000
        case "m": 60_000_000_000
        case "h": 3_600_000_000_000
        default: nil
        }
    }

    /// `value` as a decimal with `fractionDigits` implied decimal places: (1500, 3) is "1.5",
    /// (2000, 3) is "2", (5, 3) is "0.005".
    private static func decimal(_ value: UInt128, fractionDigits: Int) -> String {
        var scale: UInt128 = 1
        for _ in 0..<fractionDigits {
            scale *= 10
        }
        return "\(value / scale)" + fractionSuffix(value % scale, digits: fractionDigits)
    }

    /// The fraction `fraction / 10^digits` as Go prints it: "" when zero, else a point and the
    /// digits without trailing zeros ((500, 3) is ".5", (5, 3) is ".005").
    private static func fractionSuffix(_ fraction: UInt128, digits: Int) -> String {
        guard fraction > 0 else { return "" }
        var text = String(fraction)
        text = String(repeating: "0", count: digits - text.count) + text
        while text.last == "0" {
            text.removeLast()
        }
        return "." + text
    }
}
