#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import Synchronization
import Testing

@testable import ServiceKit

// These tests read back what the handler wrote through a real pipe and check it with a strict
// JSON parser (below) that, unlike JSONSerialization, rejects duplicate keys and raw control
// bytes. JSONSerialization is used as a second, independent opinion on the hostile strings.

@Suite("JSONLogHandler and LogSink")
struct JSONLogHandlerTests {
    // MARK: Escaping and round trips

    static let hostileStrings: [String] = [
        "",
        "plain",
        "quote\"d",
        "back\\slash\\",
        "line1\nline2",
        "cr\rlf\r\n",
        "\"}\n{\"time\":\"x\",\"level\":\"critical\",\"msg\":\"forged\"}",
        "nul\0byte",
        String(decoding: (0..<0x20).map { UInt8($0) } + [0x7F], as: UTF8.self),
        "tab\tbs\u{8}ff\u{c}esc\u{1b}[31m",
        "line\u{2028}separator\u{2029}paragraph",
        "👩‍👩‍👧‍👦 🇸🇪 ✅",
        String(decoding: [0xFF, 0xFE, 0x41], as: UTF8.self),
        "\\u0000 looks escaped but is literal",
        "precomposed é and decomposed e\u{301}",
        "BOM\u{FEFF}, NEL\u{85}, replacement \u{FFFD}",
        "\u{E2}\u{80}",  // the scalars Ã¢ and U+0080, whose UTF-8 is not the E2 80 A8 prefix
    ]

    @Test("hostile strings round-trip exactly as message, value and key", arguments: hostileStrings)
    func hostileStringRoundTrip(_ hostile: String) throws {
        let capture = try PipeCapture()
        let logger = Logger(label: "test\n\"label") { JSONLogHandler(label: $0, sink: capture.sink) }
        logger.info("\(hostile)", metadata: ["value": .string(hostile), "k\(hostile)": "key"])
        let output = capture.finish()

        let lines = try splitLines(output)
        try #require(lines.count == 1)
        let line = lines[0]
        // Nothing in the line may be a raw control byte, DEL, or a raw U+2028/U+2029.
        #expect(!line.contains { $0 < 0x20 || $0 == 0x7F })
        #expect(!containsLineSeparator(line))

        let object = try StrictJSON.parseObject(line)
        #expect(object["msg"]?.string?.utf8.elementsEqual(hostile.utf8) == true)
        #expect(object["value"]?.string?.utf8.elementsEqual(hostile.utf8) == true)
        #expect(object["k" + hostile]?.string == "key")
        #expect(object["logger"]?.string == "test\n\"label")

        // Independent check with Foundation's parser.
        let parsed = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
        let foundationMessage = try #require(parsed?["msg"] as? String)
        #expect(foundationMessage.utf8.elementsEqual(hostile.utf8))
    }

    @Test("escapes are the short forms, \\u00XX, and \\u2028/\\u2029")
    func exactEscaping() throws {
        let capture = try PipeCapture()
        let handler = JSONLogHandler(label: "l", sink: capture.sink)
        handler.log(event: event(.info, "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{0}i\u{1f}j\u{7f}k\u{2028}l\u{2029}m/é"))
        let text = String(decoding: capture.finish(), as: UTF8.self)
        #expect(
            text.contains(
                #","msg":"a\"b\\c\nd\re\tf\bg\fh\u0000i\u001fj\u007fk\u2028l\u2029m/é","logger":"l"}"#
                    + "\n"
            )
        )
    }

    /// JSON escaping one scalar at a time, the way the handler promises to escape.
    static func referenceEscaped(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x2028: out += "\\u2028"
            case 0x2029: out += "\\u2029"
            case 0..<0x20, 0x7F: out += "\\u00" + String(format: "%02x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    @Test("the word-at-a-time escaper agrees with a scalar-at-a-time reference, at every offset")
    func escapingAtEveryOffset() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["a", "Z", "0", " ", "~", "\"", "\\", "\n", "\u{0}", "\u{1f}", "\u{7f}", "é", "€", "\u{2028}", "\u{2029}", "\u{2027}", "\u{202A}", "😀"]
            + (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }
        for _ in 0..<5_000 {
            // Mostly plain ASCII, so that words pass the fast path and specials land at every offset.
            let length = Int.random(in: 0...40, using: &generator)
            let string = (0..<length).map { _ in
                Int.random(in: 0..<4, using: &generator) == 0 ? pieces.randomElement(using: &generator)! : "x"
            }.joined()
            var bytes: [UInt8] = []
            bytes.appendBytes(atMost: ByteWriter.jsonStringBound(string, maxBytes: 10_000)) {
                $0.writeJSONString(string, maxBytes: 10_000)
            }
            let written = String(decoding: bytes, as: UTF8.self)
            if written != Self.referenceEscaped(string) {
                Issue.record("\(string.debugDescription): \(written) != \(Self.referenceEscaped(string))")
                return
            }
        }
    }

    @Test("one call is exactly one line, whatever the input")
    func oneCallOneLine() throws {
        let capture = try PipeCapture()
        let logger = Logger(label: "l") { JSONLogHandler(label: $0, sink: capture.sink) }
        for hostile in Self.hostileStrings {
            logger.warning("\(hostile)", metadata: [hostile: .array([.string(hostile)])])
        }
        let lines = try splitLines(capture.finish())
        #expect(lines.count == Self.hostileStrings.count)
        for line in lines {
            _ = try StrictJSON.parseObject(line)
        }
    }

    // MARK: Metadata

    struct Opaque: CustomStringConvertible, Sendable {
        var description: String { "opaque \"value\"\n" }
    }

    @Test("numbers and bools stay typed; everything else is a string")
    func typedMetadata() throws {
        let capture = try PipeCapture()
        let handler = JSONLogHandler(label: "l", sink: capture.sink)
        handler.log(
            event: event(
                .info,
                "m",
                metadata: [
                    "int": .stringConvertible(42),
                    "neg": .stringConvertible(Int64(-7)),
                    "min": .stringConvertible(Int.min),
                    "u64": .stringConvertible(UInt64.max),
                    "uint": .stringConvertible(UInt(3)),
                    "i32": .stringConvertible(Int32.min),
                    "dbl": .stringConvertible(3.5),
                    "tiny": .stringConvertible(1e-5),
                    "flt": .stringConvertible(Float(0.25)),
                    "yes": .stringConvertible(true),
                    "no": .stringConvertible(false),
                    "nan": .stringConvertible(Double.nan),
                    "inf": .stringConvertible(-Double.infinity),
                    "opaque": .stringConvertible(Opaque()),
                    "str": "42",
                ]
            )
        )
        let line = try #require(try splitLines(capture.finish()).first)
        let text = String(decoding: line, as: UTF8.self)
        for fragment in [
            #""int":42"#, #""neg":-7"#, #""min":-9223372036854775808"#, #""u64":18446744073709551615"#,
            #""uint":3"#, #""i32":-2147483648"#, #""dbl":3.5"#, #""tiny":1e-05"#, #""flt":0.25"#,
            #""yes":true"#, #""no":false"#, #""nan":"nan""#, #""inf":"-inf""#,
            #""opaque":"opaque \"value\"\n""#, #""str":"42""#,
        ] {
            #expect(text.contains(fragment), "missing \(fragment) in \(text)")
        }
        let object = try StrictJSON.parseObject(line)
        #expect(object["int"] == .number("42"))
        #expect(object["yes"] == .bool(true))
        #expect(object["opaque"]?.string == "opaque \"value\"\n")
    }

    @Test("nested dictionaries and arrays, with sorted keys at every level")
    func nestedMetadata() throws {
        let capture = try PipeCapture()
        let handler = JSONLogHandler(label: "l", sink: capture.sink)
        let nested: Logger.Metadata = [
            "z\n": .array([.string("x\"y"), .stringConvertible(1), .dictionary([:]), .array([])]),
            "a": .dictionary(["inner": .stringConvertible(false)]),
        ]
        handler.log(event: event(.info, "m", metadata: ["nested": .dictionary(nested)]))
        let line = try #require(try splitLines(capture.finish()).first)
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.contains(#""nested":{"a":{"inner":false},"z\n":["x\"y",1,{},[]]}"#))
        let object = try StrictJSON.parseObject(line)
        #expect(object["nested"]?["z\n"] == .array([.string("x\"y"), .number("1"), .object([]), .array([])]))
    }

    @Test("fixed fields first, then metadata sorted; call beats provider beats handler")
    func mergeAndOrder() throws {
        let capture = try PipeCapture()
        var handler = JSONLogHandler(label: "l", sink: capture.sink)
        handler[metadataKey: "a"] = "handler"
        handler[metadataKey: "z"] = "handler"
        handler[metadataKey: "h"] = "handler"
        handler.metadataProvider = Logger.MetadataProvider { ["a": "provider", "p": "provider", "h": "provider"] }
        handler.log(event: event(.info, "m", metadata: ["a": "call", "c": "call"]))
        let object = try StrictJSON.parseObject(try #require(try splitLines(capture.finish()).first))
        #expect(object.keys == ["time", "level", "msg", "logger", "a", "c", "h", "p", "z"])
        #expect(object["a"]?.string == "call")
        #expect(object["c"]?.string == "call")
        #expect(object["h"]?.string == "provider")
        #expect(object["p"]?.string == "provider")
        #expect(object["z"]?.string == "handler")
    }

    @Test("metadata keys equal to fixed fields are renamed, never duplicated")
    func reservedKeys() throws {
        let capture = try PipeCapture()
        let handler = JSONLogHandler(label: "real-logger", sink: capture.sink)
        handler.log(
            event: event(
                .error,
                "real message",
                metadata: [
                    "msg": "fake message", "time": "fake time", "level": "fake level",
                    "logger": "fake logger", "meta.msg": "taken",
                ]
            )
        )
        let object = try StrictJSON.parseObject(try #require(try splitLines(capture.finish()).first))
        #expect(object["msg"]?.string == "real message")
        #expect(object["level"]?.string == "error")
        #expect(object["logger"]?.string == "real-logger")
        #expect(object["meta.msg"]?.string == "taken")
        #expect(object["meta.meta.msg"]?.string == "fake message")
        #expect(object["meta.time"]?.string == "fake time")
        #expect(object["meta.level"]?.string == "fake level")
        #expect(object["meta.logger"]?.string == "fake logger")
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String { "disk \"full\"" }
    }

    @Test("an event's error is logged as \"error\" unless metadata has one")
    func errorField() throws {
        let capture = try PipeCapture()
        let handler = JSONLogHandler(label: "l", sink: capture.sink)
        handler.log(event: event(.error, "a", error: Failure()))
        handler.log(event: event(.error, "b", metadata: ["error": "from metadata"], error: Failure()))
        let lines = try splitLines(capture.finish())
        try #require(lines.count == 2)
        #expect(try StrictJSON.parseObject(lines[0])["error"]?.string == "disk \"full\"")
        #expect(try StrictJSON.parseObject(lines[1])["error"]?.string == "from metadata")
    }

    // MARK: Truncation

    @Test("long values are cut at a character boundary, end in …, and stay valid JSON")
    func truncation() throws {
        let capture = try PipeCapture()
        let limit = 64
        let handler = JSONLogHandler(label: "l", sink: capture.sink, maxValueBytes: limit)
        let family = "👩‍👩‍👧‍👦"  // one Character, 25 UTF-8 bytes
        let exact = String(repeating: "x", count: limit)
        handler.log(
            event: event(
                .info,
                "\(String(repeating: "m", count: 10_000))",
                metadata: [
                    "family": .string(String(repeating: family, count: 100)),
                    "combining": .string(String(repeating: "e\u{301}", count: 100)),
                    "controls": .string(String(repeating: "\u{1}\"", count: 10_000)),
                    "exact": .string(exact),
                    "described": .stringConvertible(String(repeating: "d", count: 1000)),
                    "inArray": .array([.string(String(repeating: "a", count: 1000))]),
                ]
            )
        )
        let line = try #require(try splitLines(capture.finish()).first)
        // Every value is bounded, escaping at most multiplies by 6: the line stays small.
        #expect(line.count < 12 * limit * 6)
        let object = try StrictJSON.parseObject(line)

        let message = try #require(object["msg"]?.string)
        #expect(message.utf8.count <= limit)
        #expect(message == String(repeating: "m", count: limit - 3) + "…")

        let cutFamily = try #require(object["family"]?.string)
        #expect(cutFamily.utf8.count <= limit)
        #expect(cutFamily == family + family + "…")

        let cutCombining = try #require(object["combining"]?.string)
        #expect(cutCombining.utf8.count <= limit)
        #expect(cutCombining.unicodeScalars.dropLast().last == "\u{301}")

        let cutControls = try #require(object["controls"]?.string)
        #expect(cutControls.utf8.count == limit)
        #expect(Array(cutControls.utf8.dropLast(3)) == Array(String(repeating: "\u{1}\"", count: 100).utf8.prefix(limit - 3)))

        #expect(object["exact"]?.string == exact)
        #expect(object["described"]?.string == String(repeating: "d", count: limit - 3) + "…")
        #expect(object["inArray"]?[0]?.string == String(repeating: "a", count: limit - 3) + "…")
    }

    @Test("character boundaries never split a grapheme cluster")
    func characterBoundaries() {
        let text = "ab👩‍👩‍👧‍👦c"
        #expect(JSONLineWriter.characterBoundary(in: text, atMost: 0) == 0)
        #expect(JSONLineWriter.characterBoundary(in: text, atMost: 2) == 2)
        #expect(JSONLineWriter.characterBoundary(in: text, atMost: 26) == 2)
        #expect(JSONLineWriter.characterBoundary(in: text, atMost: 27) == 27)
        #expect(JSONLineWriter.characterBoundary(in: text, atMost: 1000) == 28)
    }

    // MARK: Levels and time

    @Test("messages below the handler's level write nothing")
    func levelFiltering() throws {
        let capture = try PipeCapture()
        var logger = Logger(label: "l") { JSONLogHandler(label: $0, sink: capture.sink, logLevel: .info) }
        logger.debug("hidden")
        logger.trace("hidden")
        logger.info("shown")
        logger.logLevel = .trace
        for level in Logger.Level.allCases {
            logger.log(level: level, "all")
        }
        let lines = try splitLines(capture.finish())
        try #require(lines.count == 1 + Logger.Level.allCases.count, "unexpected lines: \(lines.map { String(decoding: $0, as: UTF8.self).prefix(200) })")
        #expect(try StrictJSON.parseObject(lines[0])["msg"]?.string == "shown")
        let levels = try lines.dropFirst().map { try StrictJSON.parseObject($0)["level"]?.string }
        #expect(levels == ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    }

    @Test("time is RFC 3339 UTC with milliseconds, and now")
    func timeField() throws {
        let capture = try PipeCapture()
        let handler = JSONLogHandler(label: "l", sink: capture.sink)
        let before = time(nil)
        handler.log(event: event(.info, "m"))
        let after = time(nil)
        let object = try StrictJSON.parseObject(try #require(try splitLines(capture.finish()).first))
        let stamp = try #require(object["time"]?.string)
        let match = try #require(stamp.wholeMatch(of: /(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z/))
        var fields = tm()
        fields.tm_year = Int32(try #require(Int(match.1))) - 1900
        fields.tm_mon = Int32(try #require(Int(match.2))) - 1
        fields.tm_mday = Int32(try #require(Int(match.3)))
        fields.tm_hour = Int32(try #require(Int(match.4)))
        fields.tm_min = Int32(try #require(Int(match.5)))
        fields.tm_sec = Int32(try #require(Int(match.6)))
        let seconds = timegm(&fields)
        #expect(seconds >= before - 2 && seconds <= after + 2, "\(stamp) is not now")
    }

    @Test("the date arithmetic agrees with gmtime_r")
    func civilDateMatchesGmtime() {
        var generator = SystemRandomNumberGenerator()
        let boundaries: [Int] = [
            0, 86_399, 86_400, 951_782_400, 951_868_800, 4_107_542_399, 4_107_542_400, -1, -86_401,
            253_402_300_799,  // 9999-12-31T23:59:59Z
        ]
        let samples = boundaries + (0..<20_000).map { _ in Int.random(in: -3_000_000_000...20_000_000_000, using: &generator) }
        for seconds in samples {
            var whole = time_t(seconds)
            var expected = tm()
            guard gmtime_r(&whole, &expected) != nil else { continue }
            var writer = JSONLineWriter(capacity: 32)
            writer.appendTime(seconds: seconds, milliseconds: 7)
            let formatted = String(decoding: writer.bytes, as: UTF8.self)
            let reference = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.007Z",
                expected.tm_year + 1900, expected.tm_mon + 1, expected.tm_mday,
                expected.tm_hour, expected.tm_min, expected.tm_sec
            )
            if formatted != reference {
                Issue.record("\(seconds): \(formatted) != \(reference)")
                return
            }
        }
    }

    @Test("milliseconds keep three digits, and a writer's cached second never goes stale")
    func millisecondsAndTheSecondCache() throws {
        for (milliseconds, text) in [(0, "000"), (9, "009"), (10, "010"), (99, "099"), (100, "100"), (999, "999")] {
            var writer = JSONLineWriter(capacity: 32)
            writer.appendTime(seconds: 951_782_400, milliseconds: milliseconds)
            #expect(String(decoding: writer.bytes, as: UTF8.self) == "2000-02-29T00:00:00.\(text)Z")
        }
        // A cache holding another second, with bytes that are not a time: the writer must
        // notice the second changed and not copy them.
        let bogus = Array("9999-99-99T99:99:99.".utf8)
        var cache = TimePrefix(second: 12, bytes: (0, 0, 0))
        withUnsafeMutableBytes(of: &cache.bytes) { $0.copyBytes(from: bogus) }
        let before = time(nil)
        var bytes: [UInt8] = []
        bytes.appendBytes(atMost: ByteWriter.maxTimeBytes) { $0.writeCurrentTime(cache: &cache) }
        let after = time(nil)
        let stamp = String(decoding: bytes, as: UTF8.self)
        #expect(!stamp.hasPrefix("9999"))
        // time() reads the coarse clock, which may still show the second before.
        #expect(cache.second >= before && cache.second <= after + 1)
        var reference = JSONLineWriter(capacity: 32)
        reference.appendTime(seconds: cache.second, milliseconds: 0)
        #expect(stamp.prefix(20) == String(decoding: reference.bytes, as: UTF8.self).prefix(20))
        #expect(stamp.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(stamp)")
    }

    // MARK: Concurrency

    @Test("8 threads x 500 lines: 4000 whole lines, in order per thread")
    func concurrentWriters() throws {
        let capture = try PipeCapture()
        let logger = Logger(label: "l") { JSONLogHandler(label: $0, sink: capture.sink) }
        let threadCount = 8
        let linesPerThread = 500
        var threads: [pthread_t] = []
        for thread in 0..<threadCount {
            let sink = capture.sink
            // Half the threads batch, the way event loops do, and flush now and then.
            let batching = thread % 2 == 0
            threads.append(
                try #require(
                    spawnThread {
                        if batching { LogSink.beginBatchingOnCurrentThread() }
                        for sequence in 0..<linesPerThread {
                            logger.info(
                                "line with \"quotes\"\nand newline",
                                metadata: ["thread": "\(thread)", "seq": "\(sequence)", "pad": "\(String(repeating: "p", count: sequence % 97))"]
                            )
                            if batching, sequence % 7 == 0 { sink.flush() }
                        }
                        if batching { sink.flush() }
                    }
                )
            )
        }
        for thread in threads { pthread_join(thread, nil) }
        let lines = try splitLines(capture.finish())
        #expect(lines.count == threadCount * linesPerThread)

        var nextSequence = [Int](repeating: 0, count: threadCount)
        for line in lines {
            let object = try StrictJSON.parseObject(line)
            let thread = try #require(object["thread"]?.string.flatMap { Int($0) })
            let sequence = try #require(object["seq"]?.string.flatMap { Int($0) })
            #expect(sequence == nextSequence[thread], "thread \(thread) out of order")
            nextSequence[thread] = sequence + 1
        }
        #expect(nextSequence == [Int](repeating: linesPerThread, count: threadCount))
        #expect(capture.sink.droppedLines == 0)
    }

    // MARK: Failing descriptors

    @Test("a blocking pipe nobody reads: appends and flushes return, lines past the cap are counted, one report once it flows")
    func stalledBlockingPipe() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let cap = 64 * 1024
        let sink = LogSink(fileDescriptor: writeEnd, maxBufferedBytes: cap)
        let reports = Mutex<[(lines: Int, bytes: Int)]>([])
        sink.onDrops { lines, bytes in
            reports.withLock { $0.append((lines, bytes)) }
            sink.append(line: Array("dropped \(lines)\n".utf8))
        }
        // The pipe is full before the first line: the writer's first write(2) blocks, so no
        // write completes (and nothing may be reported) until the reader comes back.
        let prefilled = fillPipe(writeEnd)
        // Then the writer's batch and the buffer, and then some: a blocking write(2) in the
        // caller would hang this thread at the first line.
        let lineSize = 1000
        let line = [UInt8](repeating: UInt8(ascii: "s"), count: lineSize - 1) + [UInt8(ascii: "\n")]
        let lineCount = 3 * cap / lineSize
        let batching = try #require(
            spawnThread {
                LogSink.beginBatchingOnCurrentThread()
                for index in 0..<lineCount {
                    sink.append(line: line)
                    if index % 10 == 0 { sink.flush() }
                }
                sink.flush()
                LogSink.endBatchingOnCurrentThread()
            }
        )
        pthread_join(batching, nil)
        for _ in 0..<lineCount { sink.append(line: line) }  // this thread does not batch
        #expect(!sink.flush(waitingUpTo: .milliseconds(100)), "the writer finished with nobody reading")
        let dropped = sink.droppedLines
        #expect(dropped > 0)
        #expect(reports.withLock { $0.isEmpty }, "drops reported while output was still stalled")

        // The reader comes back: everything not dropped arrives, then one report of the drops.
        let expected = prefilled + (2 * lineCount - dropped) * lineSize
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = time(nil) + 10
        while time(nil) < deadline, !received.reversed().starts(with: Array("\n\(dropped) deppord".utf8)) {
            var descriptor = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) == 1 else { continue }
            let count = read(readEnd, &chunk, chunk.count)
            if count <= 0 { break }
            received += chunk[..<count]
        }
        #expect(received.count == expected + "dropped \(dropped)\n".utf8.count)
        let report = reports.withLock { $0 }
        #expect(report.count == 1)
        #expect(report.first?.lines == dropped)
        #expect(report.first?.bytes == dropped * lineSize)
        #expect(sink.droppedBytes == dropped * lineSize)
    }

    @Test("a pipe with no reader drops and counts lines instead of crashing")
    func closedPipe() throws {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        close(fds[0])
        defer { close(fds[1]) }
        let sink = LogSink(fileDescriptor: fds[1])
        let handler = JSONLogHandler(label: "l", sink: sink)
        for _ in 0..<10 {
            handler.log(event: event(.info, "into the void"))
        }
        #expect(sink.flush(waitingUpTo: .seconds(10)))
        #expect(sink.droppedLines == 10)
        #expect(sink.droppedBytes > 10 * 60)
    }

    @Test("a bad descriptor drops and counts lines")
    func badDescriptor() {
        let sink = LogSink(fileDescriptor: -1)
        sink.append(line: Array("one\n".utf8))
        sink.append(line: Array("two\n".utf8))
        #expect(sink.flush(waitingUpTo: .seconds(10)))
        #expect(sink.droppedLines == 2)
        #expect(sink.droppedBytes == 8)
    }

    @Test("a full non-blocking pipe holds no appender up and loses nothing once it is read")
    func fullNonBlockingPipe() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        let sink = LogSink(fileDescriptor: fds[1])
        let lineSize = 30_000
        let lineCount = pipeCapacity(fds[1]) / lineSize + 4
        let line = [UInt8](repeating: UInt8(ascii: "x"), count: lineSize - 1) + [UInt8(ascii: "\n")]
        for _ in 0..<lineCount { sink.append(line: line) }
        // Nobody reads: the writer cannot finish, and says so rather than wait on.
        #expect(!sink.flush(waitingUpTo: .milliseconds(200)))

        let received = readAll(fds[0], until: lineCount * lineSize, timeout: 10)
        #expect(received == lineCount * lineSize)
        #expect(sink.droppedLines == 0)
    }

    // MARK: Batching

    @Test("a batching thread writes nothing until flush; other threads write at once")
    func batching() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let readEnd = fds[0]
        let sink = LogSink(fileDescriptor: fds[1])
        let handler = JSONLogHandler(label: "l", sink: sink)
        let results = Mutex<(beforeFlush: Bool, afterFlush: Bool, flagged: Bool)>((true, false, false))
        let thread = try #require(
            spawnThread {
                LogSink.beginBatchingOnCurrentThread()
                for _ in 0..<3 { handler.log(event: event(.info, "batched")) }
                let before = isReadable(readEnd)
                sink.flush(waitingUpTo: .seconds(10))
                let after = isReadable(readEnd)
                let flagged = LogSink.isBatchingOnCurrentThread
                LogSink.endBatchingOnCurrentThread()
                results.withLock { $0 = (before, after, flagged && !LogSink.isBatchingOnCurrentThread) }
            }
        )
        pthread_join(thread, nil)
        let (before, after, flagged) = results.withLock { $0 }
        #expect(!before, "a batching thread wrote before flush()")
        #expect(after, "flush() wrote nothing")
        #expect(flagged)
        let batched = try splitLines(drain(readEnd))
        #expect(batched.count == 3)

        // This thread never asked for batching: its line goes to the writer at once, with no
        // flush from this thread.
        handler.log(event: event(.info, "direct"))
        #expect(isReadable(readEnd, timeoutMilliseconds: 10_000))
        #expect(try splitLines(drain(readEnd)).count == 1)
    }

    @Test("a batching thread flushes past the threshold and drops past the cap")
    func batchingThresholdAndCap() throws {
        let capture = try PipeCapture()
        let thresholdSink = LogSink(fileDescriptor: capture.writeEnd, flushThreshold: 1000)
        let cappedSink = LogSink(fileDescriptor: capture.writeEnd, flushThreshold: 1 << 20, maxBufferedBytes: 1000)
        let line = [UInt8](repeating: UInt8(ascii: "y"), count: 99) + [UInt8(ascii: "\n")]
        let thread = try #require(
            spawnThread {
                LogSink.beginBatchingOnCurrentThread()
                // Never flushed by this thread: only the threshold hands these to the writer.
                for _ in 0..<25 { thresholdSink.append(line: line) }
                for _ in 0..<25 { cappedSink.append(line: line) }  // 10 fit, 15 dropped
                cappedSink.flush()
                LogSink.endBatchingOnCurrentThread()
            }
        )
        pthread_join(thread, nil)
        #expect(cappedSink.flush(waitingUpTo: .seconds(10)))
        // The threshold was crossed twice (at 10 and 20 lines): at least 20 lines go out with no
        // flush from anyone. The writer takes what is buffered when it runs, so up to 25 may.
        #expect(capture.waitForBytes(10 * 100 + 20 * 100, timeout: 30))
        #expect(thresholdSink.flush(waitingUpTo: .seconds(10)))
        let lines = try splitLines(capture.finish())
        #expect(lines.count == 25 + 10)
        #expect(thresholdSink.droppedLines == 0)
        #expect(cappedSink.droppedLines == 15)
        #expect(cappedSink.droppedBytes == 1500)
    }

    @Test("append adds a missing newline so lines never run together")
    func missingNewline() throws {
        let capture = try PipeCapture()
        capture.sink.append(line: Array("abc".utf8))
        capture.sink.append(line: [])
        capture.sink.append(line: Array("def\n".utf8))
        #expect(capture.finish() == Array("abc\ndef\n".utf8))
    }
}

// MARK: - Helpers

private func event(
    _ level: Logger.Level,
    _ message: String,
    metadata: Logger.Metadata? = nil,
    error: (any Error)? = nil
) -> LogEvent {
    LogEvent(
        level: level,
        message: "\(message)",
        error: error,
        metadata: metadata,
        source: "test",
        file: #fileID,
        function: #function,
        line: #line
    )
}

/// Splits output into lines, requiring that it ends in a newline (no partial last line).
private func splitLines(_ bytes: [UInt8]) throws -> [[UInt8]] {
    if bytes.isEmpty { return [] }
    try #require(bytes.last == UInt8(ascii: "\n"), "output does not end in a newline")
    return bytes.dropLast().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
}

private func containsLineSeparator(_ bytes: [UInt8]) -> Bool {
    guard bytes.count >= 3 else { return false }
    for index in 0..<(bytes.count - 2)
    where bytes[index] == 0xE2 && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9) {
        return true
    }
    return false
}

private func isReadable(_ fd: Int32, timeoutMilliseconds: Int32 = 0) -> Bool {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&descriptor, 1, timeoutMilliseconds) == 1
}

/// Fills a pipe through a non-blocking write, leaving its descriptor blocking as it was.
/// Returns the bytes written: whole lines of `f`.
func fillPipe(_ fd: Int32) -> Int {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    defer { _ = fcntl(fd, F_SETFL, flags) }
    let line = [UInt8](repeating: UInt8(ascii: "f"), count: 99) + [UInt8(ascii: "\n")]
    var total = 0
    while true {
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written == line.count {
            total += written
            continue
        }
        // A partial line cannot happen: a pipe write of at most PIPE_BUF bytes is all or nothing.
        return total + max(0, written)
    }
}

/// The pipe's capacity (F_GETPIPE_SZ, 1032, is a macro the Glibc module does not import).
func pipeCapacity(_ fd: Int32) -> Int {
    let reported = Int(fcntl(fd, 1032))
    return reported > 0 ? reported : 65_536
}

/// Reads from `fd` until `expected` bytes came, the writer closed, or `timeout` seconds passed.
/// Returns the byte count.
func readAll(_ fd: Int32, until expected: Int, timeout: Int) -> Int {
    var received = 0
    var chunk = [UInt8](repeating: 0, count: 65_536)
    let deadline = time(nil) + timeout
    while received < expected && time(nil) < deadline {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 100) == 1 else { continue }
        let count = read(fd, &chunk, chunk.count)
        if count <= 0 { break }
        received += count
    }
    return received
}

/// Reads what is in the pipe now without blocking.
private func drain(_ fd: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while isReadable(fd) {
        let count = read(fd, &chunk, chunk.count)
        if count <= 0 { break }
        result += chunk[..<count]
    }
    return result
}

private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a real OS thread: unlike the test's own (cooperative pool) thread, it can be marked
/// as batching without the flag leaking into other tests.
private func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
        &thread,
        nil,
        { argument in
            guard let argument else { return nil }
            Unmanaged<ThreadBody>.fromOpaque(argument).takeRetainedValue().run()
            return nil
        },
        box
    )
    if result != 0 {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        return nil
    }
    return thread
}

private final class ByteBox: Sendable {
    let bytes = Mutex<[UInt8]>([])
}

/// A pipe whose read end a background thread drains, so writers never block on a full pipe.
private final class PipeCapture: Sendable {
    let readEnd: Int32
    let writeEnd: Int32
    let sink: LogSink
    private let received = ByteBox()
    private let reader: pthread_t

    init() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        readEnd = fds[0]
        writeEnd = fds[1]
        sink = LogSink(fileDescriptor: writeEnd)
        let readEnd = self.readEnd
        let received = self.received
        reader = try #require(
            spawnThread {
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = read(readEnd, &chunk, chunk.count)
                    if count < 0, errno == EINTR { continue }
                    if count <= 0 { break }
                    received.bytes.withLock { $0 += chunk[..<count] }
                }
            }
        )
    }

    /// Waits until at least `count` bytes came through, for up to `timeout` seconds.
    func waitForBytes(_ count: Int, timeout: Int) -> Bool {
        let deadline = time(nil) + timeout
        while time(nil) < deadline {
            if received.bytes.withLock({ $0.count }) >= count { return true }
            usleep(1000)
        }
        return false
    }

    /// Waits for the sink's writer, closes the write end, waits for the reader to see EOF, and
    /// returns everything written.
    func finish() -> [UInt8] {
        sink.flush(waitingUpTo: .seconds(10))
        close(writeEnd)
        pthread_join(reader, nil)
        close(readEnd)
        return received.bytes.withLock { $0 }
    }
}

extension LogSink {
    fileprivate static func monotonicNanoseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)
    }
}

// MARK: - Strict JSON parser

/// A small RFC 8259 parser that is stricter than most: it rejects duplicate object keys, raw
/// control characters in strings, invalid escapes, invalid UTF-8, and trailing bytes.
enum StrictJSON: Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([StrictJSON])
    case object([Member])

    struct Member: Equatable {
        var key: String
        var value: StrictJSON
        static func == (lhs: Member, rhs: Member) -> Bool {
            lhs.key.utf8.elementsEqual(rhs.key.utf8) && lhs.value == rhs.value
        }
    }

    struct SyntaxError: Error, CustomStringConvertible {
        var reason: String
        var offset: Int
        var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var keys: [String] {
        if case .object(let members) = self { return members.map(\.key) }
        return []
    }

    /// Looks up a key by its exact bytes (Swift's `==` on strings is canonical equivalence).
    subscript(key: String) -> StrictJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
    }

    subscript(index: Int) -> StrictJSON? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    static func parseObject(_ bytes: [UInt8]) throws -> StrictJSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        guard parser.peek() == UInt8(ascii: "{") else { throw parser.error("not an object") }
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.offset == bytes.count else { throw parser.error("trailing bytes") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var offset = 0

        func error(_ reason: String) -> SyntaxError { SyntaxError(reason: reason, offset: offset) }

        func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

        mutating func next() throws -> UInt8 {
            guard offset < bytes.count else { throw error("unexpected end") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func expect(_ byte: UInt8) throws {
            guard try next() == byte else { throw error("expected \(Character(UnicodeScalar(byte)))") }
        }

        mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { offset += 1 }
        }

        mutating func parseValue() throws -> StrictJSON {
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: "{"): return try parseObjectValue()
            case UInt8(ascii: "["): return try parseArray()
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return .number(try parseNumber())
            }
        }

        mutating func literal(_ word: String) throws {
            for byte in word.utf8 { try expect(byte) }
        }

        mutating func parseObjectValue() throws -> StrictJSON {
            try expect(UInt8(ascii: "{"))
            var members: [Member] = []
            var seen = Set<[UInt8]>()
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                offset += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                let key = try parseString()
                guard seen.insert(Array(key.utf8)).inserted else { throw error("duplicate key \(key)") }
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                members.append(Member(key: key, value: try parseValue()))
                skipWhitespace()
                switch try next() {
                case UInt8(ascii: ","): continue
                case UInt8(ascii: "}"): return .object(members)
                default: throw error("expected , or }")
                }
            }
        }

        mutating func parseArray() throws -> StrictJSON {
            try expect(UInt8(ascii: "["))
            var elements: [StrictJSON] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                offset += 1
                return .array(elements)
            }
            while true {
                elements.append(try parseValue())
                skipWhitespace()
                switch try next() {
                case UInt8(ascii: ","): continue
                case UInt8(ascii: "]"): return .array(elements)
                default: throw error("expected , or ]")
                }
            }
        }

        mutating func parseString() throws -> String {
            try expect(UInt8(ascii: "\""))
            var utf8: [UInt8] = []
            while true {
                let byte = try next()
                switch byte {
                case UInt8(ascii: "\""):
                    guard let string = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8") }
                    return string
                case UInt8(ascii: "\\"):
                    switch try next() {
                    case UInt8(ascii: "\""): utf8.append(0x22)
                    case UInt8(ascii: "\\"): utf8.append(0x5C)
                    case UInt8(ascii: "/"): utf8.append(0x2F)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try parseHex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            try expect(UInt8(ascii: "\\"))
                            try expect(UInt8(ascii: "u"))
                            let low = try parseHex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw error("bad \\u escape") }
                        utf8.append(contentsOf: String(Character(unicode)).utf8)
                    default:
                        throw error("bad escape")
                    }
                case 0x00..<0x20:
                    throw error("raw control byte in string")
                default:
                    utf8.append(byte)
                }
            }
        }

        mutating func parseHex4() throws -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = try next()
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw error("bad hex digit")
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }

        mutating func parseNumber() throws -> String {
            let start = offset
            func isDigit(_ byte: UInt8?) -> Bool {
                guard let byte else { return false }
                return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            }
            if peek() == UInt8(ascii: "-") { offset += 1 }
            if peek() == UInt8(ascii: "0") {
                offset += 1
            } else {
                guard isDigit(peek()) else { throw error("bad number") }
                while isDigit(peek()) { offset += 1 }
            }
            if peek() == UInt8(ascii: ".") {
                offset += 1
                guard isDigit(peek()) else { throw error("bad fraction") }
                while isDigit(peek()) { offset += 1 }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                offset += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { offset += 1 }
                guard isDigit(peek()) else { throw error("bad exponent") }
                while isDigit(peek()) { offset += 1 }
            }
            return String(decoding: bytes[start..<offset], as: UTF8.self)
        }
    }
}
