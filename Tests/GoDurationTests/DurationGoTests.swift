import Testing

import GoDuration

@Suite("Duration in Go syntax")
struct DurationGoTests {
    // Valid inputs and their values; the cases follow Go's own time.ParseDuration tests.
    static let validCases: [(String, Duration)] = [
        ("0", .zero),
        ("+0", .zero),
        ("0s", .zero),
        ("5s", .seconds(5)),
        ("30s", .seconds(30)),
        ("1478s", .seconds(1478)),
        ("+5s", .seconds(5)),
        ("10s", .seconds(10)),
        ("500ms", .milliseconds(500)),
        ("1ns", .nanoseconds(1)),
        ("1100ns", .nanoseconds(1100)),
        ("3us", .microseconds(3)),
        ("3\u{00B5}s", .microseconds(3)),  // micro sign
        ("3\u{03BC}s", .microseconds(3)),  // Greek mu
        ("2m", .seconds(120)),
        ("2h", .seconds(7200)),
        ("1.5h", .seconds(5400)),
        ("5.0s", .seconds(5)),
        ("5.6s", .milliseconds(5600)),
        ("5.s", .seconds(5)),
        (".5s", .milliseconds(500)),
        ("1.004s", .milliseconds(1004)),
        ("1.0040s", .milliseconds(1004)),
        ("100.00100s", .milliseconds(100_001)),
        ("2m30s", .seconds(150)),
        ("1h2m3s", .seconds(3723)),
        ("10.5s4m", .seconds(4 * 60) + .milliseconds(10_500)),
        ("39h9m14.425s", .seconds(39 * 3600 + 9 * 60 + 14) + .milliseconds(425)),
        ("3h30m", .seconds(3 * 3600 + 30 * 60)),
        ("1h1m1s1ms1us1ns", .seconds(3661) + .nanoseconds(1_001_001)),
        // Digits below a nanosecond are dropped, however many there are.
        ("0.3333333333333333333h", .nanoseconds(1_199_999_999_999)),
        ("1.0000000001s", .seconds(1)),
        ("52763797000ns", .nanoseconds(52_763_797_000)),
        // The largest value, Int64.max nanoseconds, in two spellings.
        ("9223372036854775807ns", .nanoseconds(Int64.max)),
        ("2562047h47m16.854775807s", .nanoseconds(Int64.max)),
    ]

    @Test("parses valid durations", arguments: validCases)
    func parsesValid(input: String, expected: Duration) {
        #expect(Duration(goString: input) == expected)
    }

    static let invalidCases: [String] = [
        "",
        "+",
        "-",
        "-1s",
        "-0",
        "00",  // only a bare "0" may go without a unit
        "3",
        "1.5",
        "s",
        ".",
        ".s",
        "+.s",
        "abc",
        "10 s",
        " 10s",
        "10s ",
        "1e3s",
        "1d",  // Go has no days
        "5sec",
        "1S",  // units are case-sensitive
        "10s5",
        "1..5s",
        "1h-1m",
        "9223372036854775808ns",  // one past Int64.max nanoseconds
        "2562047h47m16.854775808s",
        "2562048h",
        "99999999999999999999999999s",
        "0x10s",
    ]

    @Test("rejects invalid durations", arguments: invalidCases)
    func rejectsInvalid(input: String) {
        #expect(Duration(goString: input) == nil)
    }

    // Expected strings are what Go's Duration.String() prints for the same value.
    static let formatCases: [(Duration, String)] = [
        (.zero, "0s"),
        (.nanoseconds(1), "1ns"),
        (.nanoseconds(999), "999ns"),
        (.nanoseconds(1100), "1.1\u{00B5}s"),
        (.microseconds(2), "2\u{00B5}s"),
        (.microseconds(2200), "2.2ms"),
        (.milliseconds(500), "500ms"),
        (.nanoseconds(1_000_001), "1.000001ms"),
        (.seconds(1), "1s"),
        (.milliseconds(1500), "1.5s"),
        (.seconds(10), "10s"),
        (.seconds(59), "59s"),
        (.seconds(60), "1m0s"),
        (.seconds(90), "1m30s"),
        (.seconds(120), "2m0s"),
        (.seconds(3600), "1h0m0s"),
        (.seconds(7200), "2h0m0s"),
        (.seconds(3723) + .milliseconds(500), "1h2m3.5s"),
        (.seconds(3661) + .nanoseconds(1), "1h1m1.000000001s"),
        (.nanoseconds(Int64.max), "2562047h47m16.854775807s"),
        (.seconds(-90), "-1m30s"),
        (.milliseconds(-1), "-1ms"),
        // Below a nanosecond is truncated toward zero.
        (.nanoseconds(1) + .microseconds(0.0000005), "1ns"),
        (.microseconds(0.0000005), "0s"),
    ]

    @Test("formats like Go's Duration.String", arguments: formatCases)
    func formats(duration: Duration, expected: String) {
        #expect(duration.goString == expected)
    }

    @Test("format then parse gives the value back")
    func roundTrips() {
        for (_, value) in Self.validCases {
            #expect(Duration(goString: value.goString) == value, "\(value.goString)")
        }
    }
}
