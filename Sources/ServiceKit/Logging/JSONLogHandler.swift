import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// JSONLogHandler writes each log event as one JSON object on one line:
///
///     {"time":"2026-11-26T17:37:48.123Z","level":"info","msg":"...","logger":"label","key":"value"}
///
/// The fixed fields come first; metadata follows, sorted by key so that output is stable.
/// Metadata merges the handler's own, then the metadata provider's, then the call's, the later
/// winning. A metadata key equal to a fixed field is written as `meta.<key>` (with more `meta.`
/// prefixes if that name is taken too), so no key ever appears twice.
///
/// Every string (message, label, keys, values) is escaped so that no input can end the line or
/// the string early: `"` and `\`, all bytes below 0x20, DEL, and U+2028/U+2029 are escaped.
/// The message, the label and string values longer than `maxValueBytes` UTF-8 bytes are cut at
/// a character boundary and end in `…`, so one value cannot blow up a line. Keys are not cut:
/// cutting could make two keys equal.
///
/// The line is built byte by byte in one array, without Foundation or string interpolation,
/// because it runs once per HTTP request for the access log.
public struct JSONLogHandler: LogHandler {
    /// The logger's label, written as the `logger` field.
    public let label: String
    /// Where lines go.
    public let sink: LogSink
    /// The longest string value, in UTF-8 bytes including the `…` of a cut value. At least 3.
    public let maxValueBytes: Int
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// `,"logger":"<label>"`, escaped once here instead of on every line.
    let loggerField: [UInt8]

    public init(
        label: String,
        sink: LogSink = .standardOutput,
        logLevel: Logger.Level = .info,
        maxValueBytes: Int = 4096,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.sink = sink
        self.logLevel = logLevel
        self.maxValueBytes = max(3, maxValueBytes)
        self.metadataProvider = metadataProvider
        var field = JSONLineWriter(capacity: label.utf8.count + 16)
        field.append(",\"logger\":")
        field.appendString(label, maxBytes: self.maxValueBytes)
        self.loggerField = field.bytes
    }

    /// Bootstraps the process-wide `LoggingSystem` with this handler. Like
    /// `LoggingSystem.bootstrap`, it may be called only once per process.
    ///
    /// Lines the sink had to drop (a reader that stalled) are reported with one `warning` line
    /// once output flows again, `"msg":"log lines dropped"` with `dropped_lines` and
    /// `dropped_bytes` since the last such line.
    public static func bootstrap(
        sink: LogSink = .standardOutput,
        logLevel: Logger.Level = .info,
        maxValueBytes: Int = 4096,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        LoggingSystem.bootstrap(
            { label, provider in
                JSONLogHandler(
                    label: label,
                    sink: sink,
                    logLevel: logLevel,
                    maxValueBytes: maxValueBytes,
                    metadataProvider: provider
                )
            },
            metadataProvider: metadataProvider
        )
        let reporter = JSONLogHandler(label: "log", sink: sink, logLevel: .warning, maxValueBytes: maxValueBytes)
        sink.onDrops { lines, bytes in
            reporter.log(event: LogEvent(
                level: .warning, message: "log lines dropped: standard output was not read in time",
                metadata: ["dropped_lines": .stringConvertible(lines), "dropped_bytes": .stringConvertible(bytes)],
                source: "ServiceKit", file: #fileID, function: #function, line: #line))
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Logger checks the level already; checking again keeps direct callers honest for the
        // price of one comparison.
        guard event.level >= logLevel else { return }
        sink.append(line: render(event))
    }

    /// The complete line for `event`, trailing newline included.
    func render(_ event: LogEvent) -> [UInt8] {
        let message = event.message.description
        let fields = mergedMetadata(for: event)

        var line = JSONLineWriter(
            capacity: 80 + loggerField.count + min(message.utf8.count, maxValueBytes) + fields.count * 48
        )
        line.append("{\"time\":\"")
        line.appendCurrentTime()
        line.append("\",\"level\":\"")
        line.append(JSONLogHandler.name(of: event.level))
        line.append("\",\"msg\":")
        line.appendString(message, maxBytes: maxValueBytes)
        line.append(loggerField)
        if !fields.isEmpty {
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                line.append(",")
                line.appendString(key, maxBytes: Int.max)
                line.append(":")
                line.appendValue(value, maxBytes: maxValueBytes)
            }
        }
        line.append("}\n")
        return line.bytes
    }

    /// Handler metadata, then the provider's, then the call's (later wins), plus the event's
    /// error, with keys that would collide with the fixed fields renamed.
    private func mergedMetadata(for event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let call = event.metadata, !call.isEmpty {
            if merged.isEmpty {
                merged = call
            } else {
                merged.merge(call) { _, new in new }
            }
        }
        if let error = event.error, merged["error"] == nil {
            merged["error"] = .string(String(describing: error))
        }
        // One pass of cheap small-string compares; hashing the four names on every line showed
        // up in profiles, and a collision is rare.
        if merged.keys.contains(where: JSONLogHandler.isFixedField) {
            for reserved in JSONLogHandler.fixedFields {
                guard let value = merged.removeValue(forKey: reserved) else { continue }
                var renamed = "meta." + reserved
                while merged[renamed] != nil {
                    renamed = "meta." + renamed
                }
                merged[renamed] = value
            }
        }
        return merged
    }

    private static let fixedFields = ["time", "level", "msg", "logger"]

    private static func isFixedField(_ key: String) -> Bool {
        key == "time" || key == "level" || key == "msg" || key == "logger"
    }

    private static func name(of level: Logger.Level) -> StaticString {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info: "info"
        case .notice: "notice"
        case .warning: "warning"
        case .error: "error"
        case .critical: "critical"
        }
    }

    /// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
    ///
    /// Howard Hinnant's `civil_from_days`. It replaces `gmtime_r`, which in glibc takes the
    /// process-wide timezone lock on every call, even for UTC: a contention point when every
    /// event loop logs every request.
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0 = March
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}

/// Builds one JSON line as raw UTF-8 bytes.
struct JSONLineWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Writes into `buffer`'s storage (emptied first), so a caller that logs often can reuse
    /// one allocation; take it back with ``take()``.
    init(reusing buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        bytes = []
        swap(&bytes, &buffer)
    }

    mutating func take() -> [UInt8] {
        var result: [UInt8] = []
        swap(&result, &bytes)
        return result
    }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    // MARK: Values

    mutating func appendValue(_ value: Logger.MetadataValue, maxBytes: Int) {
        switch value {
        case .string(let string):
            appendString(string, maxBytes: maxBytes)
        case .stringConvertible(let convertible):
            appendConvertible(convertible, maxBytes: maxBytes)
        case .dictionary(let dictionary):
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for (key, nested) in dictionary.sorted(by: { $0.key < $1.key }) {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                appendString(key, maxBytes: Int.max)
                bytes.append(UInt8(ascii: ":"))
                appendValue(nested, maxBytes: maxBytes)
            }
            bytes.append(UInt8(ascii: "}"))
        case .array(let array):
            bytes.append(UInt8(ascii: "["))
            var first = true
            for element in array {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                appendValue(element, maxBytes: maxBytes)
            }
            bytes.append(UInt8(ascii: "]"))
        }
    }

    /// Numbers and booleans stay typed so log queries can compare them; anything else, and
    /// non-finite floating point (which JSON cannot express), becomes its description.
    private mutating func appendConvertible(_ value: any CustomStringConvertible & Sendable, maxBytes: Int) {
        switch value {
        case let v as Int: appendInteger(Int64(v))
        case let v as Bool: v ? append("true") : append("false")
        case let v as Double: appendFloatingPoint(v.isFinite, v.description, maxBytes: maxBytes)
        case let v as Int64: appendInteger(v)
        case let v as UInt64: appendUnsigned(v)
        case let v as UInt: appendUnsigned(UInt64(v))
        case let v as Int32: appendInteger(Int64(v))
        case let v as UInt32: appendUnsigned(UInt64(v))
        case let v as Int16: appendInteger(Int64(v))
        case let v as UInt16: appendUnsigned(UInt64(v))
        case let v as Int8: appendInteger(Int64(v))
        case let v as UInt8: appendUnsigned(UInt64(v))
        case let v as Float: appendFloatingPoint(v.isFinite, v.description, maxBytes: maxBytes)
        default: appendString(value.description, maxBytes: maxBytes)
        }
    }

    /// Swift's shortest round-trip description ("1.5", "1e-05", "-0.0") is valid JSON for
    /// finite values; the character check is a guard against that ever changing.
    private mutating func appendFloatingPoint(_ isFinite: Bool, _ description: String, maxBytes: Int) {
        let isJSONNumber = isFinite && description.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
        }
        if isJSONNumber {
            bytes.append(contentsOf: description.utf8)
        } else {
            appendString(description, maxBytes: maxBytes)
        }
    }

    mutating func appendInteger(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendUnsigned(value.magnitude)
    }

    mutating func appendUnsigned(_ value: UInt64) {
        bytes.appendBytes(atMost: 20) { $0.writeDecimal(value) }
    }

    // MARK: Strings

    /// Appends `string` as a quoted, escaped JSON string, cut to `maxBytes` UTF-8 bytes (the
    /// `…` included) at a character boundary if it is longer.
    mutating func appendString(_ string: String, maxBytes: Int) {
        bytes.appendBytes(atMost: ByteWriter.jsonStringBound(string, maxBytes: maxBytes)) {
            $0.writeJSONString(string, maxBytes: maxBytes)
        }
    }

    /// The UTF-8 length of the longest prefix of whole characters (grapheme clusters) that fits
    /// in `budget` bytes, so a cut never splits a scalar, an emoji sequence or a combining mark.
    static func characterBoundary(in string: String, atMost budget: Int) -> Int {
        guard budget > 0 else { return 0 }
        let utf8 = string.utf8
        var end = 0
        var index = string.startIndex
        while index < string.endIndex {
            let next = string.index(after: index)
            let offset = utf8.distance(from: utf8.startIndex, to: next)
            if offset > budget { break }
            end = offset
            index = next
        }
        return end
    }

    // MARK: Time

    /// Appends the current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339).
    mutating func appendCurrentTime() {
        bytes.appendBytes(atMost: ByteWriter.maxTimeBytes) { $0.writeCurrentTime() }
    }

    mutating func appendTime(seconds: Int, milliseconds: Int) {
        bytes.appendBytes(atMost: ByteWriter.maxTimeBytes) { $0.writeTime(seconds: seconds, milliseconds: milliseconds) }
    }
}

/// The date and time of the last second a line was written in, as ``ByteWriter`` writes them
/// (`YYYY-MM-DDTHH:MM:SS.`); `second` is the Unix time they stand for.
struct TimePrefix {
    typealias Bytes = (UInt64, UInt64, UInt32)
    var second = Int.min
    var bytes: Bytes = (0, 0, 0)
}

/// The JSON pieces of a log line, written into reserved space (see ``ByteWriter``): the access
/// log writes its whole line in one reservation, ``JSONLineWriter`` one piece at a time.
extension ByteWriter {
    /// The most bytes ``writeJSONString(_:maxBytes:)`` writes for `string`: every byte may
    /// become a six-byte `\u00XX`, plus the quotes and a `…`.
    static func jsonStringBound(_ string: String, maxBytes: Int) -> Int {
        min(string.utf8.count, maxBytes) * 6 + 5
    }

    /// `string` as a quoted, escaped JSON string, cut to `maxBytes` UTF-8 bytes (the `…`
    /// included) at a character boundary if it is longer.
    mutating func writeJSONString(_ string: String, maxBytes: Int) {
        write(UInt8(ascii: "\""))
        if string.utf8.count <= maxBytes {
            string.withUTF8Bytes { writeEscaped($0) }
        } else {
            let cut = JSONLineWriter.characterBoundary(in: string, atMost: maxBytes - 3)
            string.withUTF8Bytes { writeEscaped(UnsafeBufferPointer(rebasing: $0[..<cut])) }
            write("…")
        }
        write(UInt8(ascii: "\""))
    }

    /// Escapes UTF-8 bytes for the inside of a JSON string. The input is valid UTF-8 (it
    /// comes from a `String`), so only ASCII bytes and the U+2028/U+2029 sequences (E2 80 A8/A9)
    /// need looking at.
    ///
    /// Eight bytes at a time while a word is plain printable ASCII with no `"` or backslash, copied
    /// with one store: the five strings of an access-log line took about 780 instructions
    /// byte by byte.
    mutating func writeEscaped(_ input: UnsafeBufferPointer<UInt8>) {
        guard let start = input.baseAddress else { return }
        let raw = UnsafeRawPointer(start)
        let count = input.count
        var index = 0
        while index < count {
            var end = count  // bytes before `end` go one at a time
            if index &+ 8 <= count {
                let word = ByteWords.load(raw, at: index)
                let special = ByteWords.anyBelow(0x20, in: word) | ByteWords.anyEqual(0x22, in: word)
                    | ByteWords.anyEqual(0x5C, in: word) | ByteWords.anyEqual(0x7F, in: word) | ByteWords.anyHigh(word)
                if special == 0 {
                    write(byteCount: 8) { UnsafeMutableRawPointer($0).storeBytes(of: word, as: UInt64.self) }
                    index &+= 8
                    continue
                }
                end = index &+ 8
            }
            while index < end {
                let byte = input[index]
                if byte < 0x80, !Self.needsEscape(byte) {
                    write(byte)
                    index &+= 1
                } else {
                    index = writeEscapedByte(input, at: index)
                }
            }
        }
    }

    /// Whether an ASCII byte must be escaped in a JSON string: the controls, `"`, backslash,
    /// and DEL. As masks (bit b of the first for byte b, of the second for byte 64 + b), which
    /// costs a few instructions and no memory access.
    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        let mask: UInt64 = byte < 64 ? 0x0000_0004_FFFF_FFFF : 0x8000_0000_1000_0000
        return (mask >> UInt64(byte & 63)) & 1 != 0
    }

    /// Writes the byte at `index` of `input`, escaped if it must be, and returns the index
    /// after what it consumed (three bytes for U+2028/U+2029).
    private mutating func writeEscapedByte(_ input: UnsafeBufferPointer<UInt8>, at index: Int) -> Int {
        let byte = input[index]
        if byte >= 0x20, byte != 0x22, byte != 0x5C, byte != 0x7F, byte != 0xE2 {
            write(byte)
            return index &+ 1
        }
        switch byte {
        case 0xE2:
            // U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR are legal inside JSON
            // strings, but some consumers (JavaScript, log viewers) treat them as line ends.
            guard index &+ 2 < input.count, input[index &+ 1] == 0x80, input[index &+ 2] & 0xFE == 0xA8 else {
                write(byte)
                return index &+ 1
            }
            write("\\u202")
            write(input[index &+ 2] == 0xA8 ? UInt8(ascii: "8") : UInt8(ascii: "9"))
            return index &+ 3
        case 0x22: write("\\\"")
        case 0x5C: write("\\\\")
        case 0x0A: write("\\n")
        case 0x0D: write("\\r")
        case 0x09: write("\\t")
        case 0x08: write("\\b")
        case 0x0C: write("\\f")
        default:
            write("\\u00")
            write(ByteWriter.hexDigit(byte >> 4))
            write(ByteWriter.hexDigit(byte & 0x0F))
        }
        return index &+ 1
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// A signed integer in decimal.
    mutating func writeInteger(_ value: Int64) {
        if value < 0 { write(UInt8(ascii: "-")) }
        writeDecimal(value.magnitude)
    }

    /// The most bytes ``writeTime(seconds:milliseconds:)`` writes.
    static let maxTimeBytes = 48

    /// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339).
    mutating func writeCurrentTime() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        writeTime(seconds: Int(now.tv_sec), milliseconds: Int(now.tv_nsec) / 1_000_000)
    }

    /// ``writeCurrentTime()`` for a writer of many lines: lines within the second of the one
    /// before copy its date and time from `cache` instead of doing the calendar arithmetic
    /// (about 270 instructions a line).
    mutating func writeCurrentTime(cache: inout TimePrefix) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let seconds = Int(now.tv_sec)
        let milliseconds = Int(now.tv_nsec) / 1_000_000
        if seconds != cache.second {
            guard let bytes = Self.timePrefix(seconds: seconds) else {
                writeTime(seconds: seconds, milliseconds: milliseconds)
                return
            }
            cache = TimePrefix(second: seconds, bytes: bytes)
        }
        writeTime(prefix: cache.bytes, milliseconds: milliseconds)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a Unix time (years past 9999 get more digits).
    mutating func writeTime(seconds: Int, milliseconds: Int) {
        if (0..<1000).contains(milliseconds), let prefix = Self.timePrefix(seconds: seconds) {
            writeTime(prefix: prefix, milliseconds: milliseconds)
            return
        }
        let (date, secondOfDay) = Self.civilTime(seconds: seconds)
        writePadded(date.year, width: 4)
        write(UInt8(ascii: "-"))
        writePadded(date.month, width: 2)
        write(UInt8(ascii: "-"))
        writePadded(date.day, width: 2)
        write(UInt8(ascii: "T"))
        writePadded(secondOfDay / 3600, width: 2)
        write(UInt8(ascii: ":"))
        writePadded(secondOfDay / 60 % 60, width: 2)
        write(UInt8(ascii: ":"))
        writePadded(secondOfDay % 60, width: 2)
        write(UInt8(ascii: "."))
        writePadded(milliseconds, width: 3)
        write(UInt8(ascii: "Z"))
    }

    /// The 20 bytes before `.mmmZ` and the milliseconds (below 1000) after them.
    private mutating func writeTime(prefix: TimePrefix.Bytes, milliseconds: Int) {
        write(byteCount: 24) { out in
            withUnsafeBytes(of: prefix) { UnsafeMutableRawBufferPointer(start: out, count: 20).copyMemory(from: $0) }
            out[20] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: milliseconds / 100)
            out[21] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: milliseconds / 10 % 10)
            out[22] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: milliseconds % 10)
            out[23] = UInt8(ascii: "Z")
        }
    }

    /// The civil date of a Unix time and the second within its day.
    private static func civilTime(seconds: Int) -> (date: (year: Int, month: Int, day: Int), secondOfDay: Int) {
        // Floor division, so times before 1970 land on the right day.
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            days -= 1
            secondOfDay += 86_400
        }
        let date = JSONLogHandler.civil(fromDays: days)
        return ((date.year, date.month, date.day), secondOfDay)
    }

    /// `YYYY-MM-DDTHH:MM:SS.` for a Unix time, every field at its fixed place; nil for a year
    /// outside 1000-9999, which the general path writes.
    static func timePrefix(seconds: Int) -> TimePrefix.Bytes? {
        let (date, secondOfDay) = civilTime(seconds: seconds)
        guard (1000...9999).contains(date.year) else { return nil }
        var prefix: TimePrefix.Bytes = (0, 0, 0)
        withUnsafeMutableBytes(of: &prefix) { out in
            func two(_ value: Int, at offset: Int) {
                out[offset] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
                out[offset + 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
            }
            two(date.year / 100, at: 0)
            two(date.year % 100, at: 2)
            out[4] = UInt8(ascii: "-")
            two(date.month, at: 5)
            out[7] = UInt8(ascii: "-")
            two(date.day, at: 8)
            out[10] = UInt8(ascii: "T")
            two(secondOfDay / 3600, at: 11)
            out[13] = UInt8(ascii: ":")
            two(secondOfDay / 60 % 60, at: 14)
            out[16] = UInt8(ascii: ":")
            two(secondOfDay % 60, at: 17)
            out[19] = UInt8(ascii: ".")
        }
        return prefix
    }

    /// A non-negative number with leading zeros to `width` digits (more if it needs them).
    private mutating func writePadded(_ value: Int, width: Int) {
        let value = UInt64(max(0, value))
        var digits = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        for _ in digits..<max(digits, width) { write(UInt8(ascii: "0")) }
        writeDecimal(value)
    }

    /// Microseconds as milliseconds with up to three decimals, the way Swift prints the
    /// `Double` `microseconds / 1000` (`0.244`, `1.5`, `2.0`).
    mutating func writeMilliseconds(microseconds: UInt64) {
        writeDecimal(microseconds / 1000)
        write(UInt8(ascii: "."))
        var fraction = microseconds % 1000
        if fraction == 0 {
            write(UInt8(ascii: "0"))
            return
        }
        var digits = 3
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        if digits == 3 && fraction < 100 { write(fraction < 10 ? "00" : "0") }
        if digits == 2 && fraction < 10 { write(UInt8(ascii: "0")) }
        writeDecimal(fraction)
    }
}
