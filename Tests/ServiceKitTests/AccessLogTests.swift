import Logging
import Synchronization
import Testing
import W3CTraceContext
@testable import ServiceKit

@Suite struct AccessLogTests {
    /// Drops the time field so two lines written a moment apart compare equal.
    func withoutTime(_ line: String) -> String {
        guard let start = line.range(of: #""time":""#), let end = line[start.upperBound...].firstIndex(of: "\"") else { return line }
        return line.replacingCharacters(in: start.lowerBound...end, with: "")
    }

    /// IDs whose bytes run up from `seed`, so every hex digit pair appears somewhere.
    static func traceID(_ seed: UInt8) -> TraceID {
        var id = TraceID.null
        withUnsafeMutableBytes(of: &id) { for i in $0.indices { $0[i] = seed &+ UInt8(i) &* 17 } }
        return id
    }

    static func spanID(_ seed: UInt8) -> SpanID {
        var id = SpanID.null
        withUnsafeMutableBytes(of: &id) { for i in $0.indices { $0[i] = seed &+ UInt8(i) &* 31 } }
        return id
    }

    static let entries = [
        AccessLogEntry(method: "GET", path: "/health", status: 200, bytes: 15, durationMicroseconds: 244,
                       remote: "127.0.0.1", requestID: "a10e8e31c35213af", traceID: Self.traceID(0x00), spanID: Self.spanID(0x00),
                       userAgent: "curl/7.88.1"),
        AccessLogEntry(method: "POST", path: "/a\"b\\c\r\n{\"forged\":1}", status: 413, bytes: 0, durationMicroseconds: 1_000,
                       remote: "::1", requestID: "x", traceID: Self.traceID(0x0f), spanID: Self.spanID(0x0f),
                       userAgent: "evil\u{0}\u{1b}[31m\u{2028}é🙂"),
        AccessLogEntry(method: "DELETE", path: String(repeating: "p", count: 5000), status: 500, bytes: 123_456_789,
                       durationMicroseconds: 12_345_678, remote: "-", requestID: "-", traceID: Self.traceID(0xf0), spanID: Self.spanID(0xf0),
                       userAgent: "-"),
        AccessLogEntry(method: "GET", path: "/", status: 204, bytes: 0, durationMicroseconds: 1_050,
                       remote: "10.0.0.1", requestID: "r", traceID: Self.traceID(0xff), spanID: Self.spanID(0xff),
                       userAgent: "ua"),
        AccessLogEntry(method: "GET", path: "/", status: 204, bytes: 0, durationMicroseconds: 7_005,
                       remote: "10.0.0.1", requestID: "r", traceID: Self.traceID(0x5a), spanID: Self.spanID(0x5a),
                       userAgent: "ua"),
    ]

    @Test(arguments: entries)
    func directPathWritesTheSameBytesAsTheLogHandler(entry: AccessLogEntry) throws {
        let log = CapturedLog()
        let logger = log.logger("access")
        let accessLog = AccessLog(logger: logger)
        #expect(accessLog.direct != nil)
        var buffer: [UInt8] = []
        accessLog.log(entry, buffer: &buffer)
        logger.info("request", metadata: AccessLog.metadata(entry))
        let lines = log.lines
        #expect(lines.count == 2)
        #expect(withoutTime(lines[0]) == withoutTime(lines[1]))
    }

    @Test func aLoopBatchHoldsItsLinesUntilHandedOverThenWritesThemInOrder() throws {
        let log = CapturedLog()
        let accessLog = AccessLog(logger: log.logger("access"))
        var batch = LogBatch()
        for entry in Self.entries { accessLog.log(entry, into: &batch) }
        #expect(batch.lines == Self.entries.count)
        log.sink.flush()
        #expect(log.lines.isEmpty, "lines left the loop's batch before the hand-over")
        accessLog.handOver(&batch)
        #expect(batch.lines == 0 && batch.bytes.isEmpty)
        log.sink.flush()
        let lines = log.lines
        try #require(lines.count == Self.entries.count)
        // The same bytes as one line at a time, in the order logged.
        for (line, entry) in zip(lines, Self.entries) {
            let single = CapturedLog()
            var scratch: [UInt8] = []
            AccessLog(logger: single.logger("access")).log(entry, buffer: &scratch)
            single.sink.flush()
            #expect(withoutTime(line) == withoutTime(try #require(single.lines.first)))
        }
    }

    @Test func aFullBatchIsHandedOverWithoutWaitingForTheLoop() {
        let log = CapturedLog()
        let accessLog = AccessLog(logger: log.logger("access"))
        var batch = LogBatch()
        var logged = 0
        while batch.lines == logged {  // until a hand-over empties it
            accessLog.log(Self.entries[2], into: &batch)  // about 5 KB a line
            logged += 1
        }
        #expect(logged * 5000 >= AccessLog.batchBytes)
        #expect(batch.lines == 0)
        log.sink.flush()
        #expect(log.lines.count == logged)
    }

    @Test func aBatchThatCannotBeWrittenIsCountedLineByLine() {
        let sink = LogSink(fileDescriptor: -1)
        let accessLog = AccessLog(logger: Logger(label: "access") { JSONLogHandler(label: $0, sink: sink) })
        var batch = LogBatch()
        for entry in Self.entries { accessLog.log(entry, into: &batch) }
        accessLog.handOver(&batch)
        sink.flush(waitingUpTo: .seconds(10))
        #expect(sink.droppedLines == Self.entries.count)
    }

    @Test func otherHandlersGetEachLineThroughLoggerAtOnceNotInTheBatch() throws {
        let recorded = Recorder()
        let accessLog = AccessLog(logger: Logger(label: "access") { _ in recorded })
        var batch = LogBatch()
        accessLog.log(Self.entries[0], into: &batch)
        #expect(batch.lines == 0 && batch.bytes.isEmpty)
        let metadata = try #require(recorded.events.withLock { $0.first })
        #expect(metadata["path"] == "/health")
    }

    @Test func otherHandlersGetTheFieldsThroughLogger() throws {
        let recorded = Recorder()
        let logger = Logger(label: "access") { _ in recorded }
        let accessLog = AccessLog(logger: logger)
        #expect(accessLog.direct == nil)
        var buffer: [UInt8] = []
        accessLog.log(Self.entries[0], buffer: &buffer)
        let metadata = try #require(recorded.events.withLock { $0.first })
        #expect(metadata["path"] == "/health")
        #expect(metadata["status"]?.description == "200")
        #expect(metadata["request_id"] == "a10e8e31c35213af")
    }

    @Test func levelAboveInfoSilencesTheDirectPath() {
        let log = CapturedLog()
        let sink = log.sink
        let logger = Logger(label: "access") { JSONLogHandler(label: $0, sink: sink, logLevel: .warning) }
        var buffer: [UInt8] = []
        AccessLog(logger: logger).log(Self.entries[0], buffer: &buffer)
        #expect(log.lines.isEmpty)
    }
}

/// A LogHandler that keeps the metadata of each event.
final class Recorder: LogHandler, @unchecked Sendable {
    let events = Mutex<[Logger.Metadata]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        events.withLock { $0.append(event.metadata ?? [:]) }
    }
}
