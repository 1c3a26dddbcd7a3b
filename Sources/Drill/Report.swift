// The drill's outputs as text: the summary and timeline tables for a person, CSV for a
// spreadsheet, one JSON line for a test. All pure functions of a result, so tests can check them.

enum Report {
    // MARK: - Summary

    static func summaryText(_ result: DrillResult) -> String {
        let summary = result.summary
        let options = result.options
        var rows: [(String, String)] = [
            ("total requests", "\(summary.total)"),
            ("ok before signal", "\(summary.okBefore)"),
            ("ok after signal", "\(summary.okAfter)"),
            ("with Connection: close", "\(summary.okClose)"),
            ("unanswered", "\(summary.unanswered)"),
            ("truncated", "\(summary.truncated)"),
            ("timeout", "\(summary.timeout)"),
            ("refused", "\(summary.refused)"),
            ("error", "\(summary.error)"),
        ]
        // Reasons in descending count, so the dominant one is first.
        for (reason, count) in summary.errorReasons.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
            rows.append(("  " + reason, "\(count)"))
        }
        rows.append(("lost", "\(summary.lost)"))
        rows.append(("time to exit (ms)", result.exitMilliseconds.map { fixed($0, digits: 1) } ?? "n/a"))
        rows.append(("exit code", result.exit.code.map { "\($0)" } ?? "n/a"))
        rows.append(("connections", "\(options.connections) (\(result.connectionsOpened) opened)"))

        var text = "Shutdown drill: GET \(options.path) on port \(result.port), \(options.connections) connections, "
            + "SIGTERM after \(options.signalAfter)\n\n"
        let width = rows.map(\.0.count).max() ?? 0
        let valueWidth = rows.map(\.1.count).max() ?? 0
        for (label, value) in rows {
            text += "  " + padRight(label, width) + "  " + padLeft(value, valueWidth) + "\n"
        }
        if let note = result.exit.note {
            text += "  (service: \(note))\n"
        }
        text += "\n" + (summary.lost == 0 ? "no request lost\n" : "\(summary.lost) request(s) lost\n")
        return text
    }

    // MARK: - Timeline

    static let timelineColumns = ["ok", "ok_close", "unanswered", "truncated", "timeout", "refused", "error"]

    static func values(_ counts: BucketCounts) -> [Int] {
        [counts.ok, counts.okClose, counts.unanswered, counts.truncated, counts.timeout, counts.refused, counts.error]
    }

    /// The timeline from `secondsBefore` before the signal to the end, one row per bucket, with
    /// the signal's and the exit's buckets marked.
    static func timelineText(_ result: DrillResult, secondsBefore: Double = 1) -> String {
        let timeline = result.timeline
        let bucketMilliseconds = Double(timeline.bucketNanoseconds) / 1_000_000
        let exitIndex = result.exitMilliseconds.map {
            Timeline.index(of: Int64($0 * 1_000_000), signalAt: 0, bucket: timeline.bucketNanoseconds)
        }
        let digits = timeDigits(bucketNanoseconds: timeline.bucketNanoseconds)

        var text = "Timeline: \(GoDuration(nanoseconds: timeline.bucketNanoseconds)) buckets by completion time, "
            + "t = bucket start in s relative to SIGTERM; ok = kept alive, ok_close = with Connection: close\n\n"
        let headers = ["t (s)"] + timelineColumns
        let widths = headers.map { max($0.count, 6) }
        text += "  " + zip(headers, widths).map { padLeft($0, $1) }.joined(separator: "  ") + "\n"
        for index in timeline.indices(fromSecondsBeforeSignal: secondsBefore) {
            let seconds = Double(index) * bucketMilliseconds / 1000
            let cells = [fixed(seconds, digits: digits)] + values(timeline.counts(at: index)).map(String.init)
            var line = "  " + zip(cells, widths).map { padLeft($0, $1) }.joined(separator: "  ")
            var marks: [String] = []
            if index == 0 { marks.append("SIGTERM") }
            if index == exitIndex, let exitMilliseconds = result.exitMilliseconds {
                marks.append("exit at \(fixed(exitMilliseconds, digits: 1)) ms")
            }
            if !marks.isEmpty { line += "  <- " + marks.joined(separator: ", ") }
            text += line + "\n"
        }
        return text
    }

    /// Enough decimals to tell buckets apart: 1 for 100 ms buckets, 3 for 1 ms ones.
    static func timeDigits(bucketNanoseconds: Int64) -> Int {
        if bucketNanoseconds % 100_000_000 == 0 { return 1 }
        if bucketNanoseconds % 10_000_000 == 0 { return 2 }
        return 3
    }

    /// Every bucket as CSV: `t_ms,ok,ok_close,unanswered,truncated,timeout,refused,error`, where
    /// t_ms is the bucket's start relative to the signal.
    static func csv(_ timeline: Timeline) -> String {
        var text = "t_ms," + timelineColumns.joined(separator: ",") + "\n"
        for index in timeline.firstIndex...timeline.lastIndex {
            let milliseconds = timeline.startMilliseconds(of: index)
            let time = milliseconds == milliseconds.rounded() ? "\(Int64(milliseconds))" : fixed(milliseconds, digits: 3)
            text += ([time] + values(timeline.counts(at: index)).map(String.init)).joined(separator: ",") + "\n"
        }
        return text
    }

    // MARK: - Requests

    /// Every request as CSV, times in ms relative to the signal:
    /// `worker,connection,request,sent_ms,finished_ms,outcome` (request 0: a failed connect).
    static func recordsCSV(_ records: [RequestRecord]) -> String {
        var text = "worker,connection,request,sent_ms,finished_ms,outcome\n"
        for record in records {
            let outcome = record.outcomeName.contains(",") || record.outcomeName.contains("\"")
                ? "\"" + record.outcomeName.replacing("\"", with: "\"\"") + "\"" : record.outcomeName
            text += "\(record.worker),\(record.connection),\(record.request),"
                + fixed(Double(record.sent) / 1_000_000, digits: 3) + ","
                + fixed(Double(record.finished) / 1_000_000, digits: 3) + "," + outcome + "\n"
        }
        return text
    }

    /// The lost requests (up to `limit`), each with where it sat on its connection and when the
    /// previous response on that connection finished: the detail that tells a backlog reset
    /// (request 1 of a fresh connection) from a keep-alive race (a later request).
    /// `records` must be in worker order, times relative to the signal.
    static func lostText(_ records: [RequestRecord], limit: Int = 20) -> String {
        var lines: [String] = []
        var lost = 0
        var previous: RequestRecord?
        for record in records {
            defer { previous = record }
            guard record.outcome.isLost else { continue }
            lost += 1
            guard lines.count < limit else { continue }
            var line = "  worker " + padLeft("\(record.worker)", 3) + "  connection " + padLeft("\(record.connection)", 3)
                + "  request " + padLeft("\(record.request)", 6)
                + "  sent " + padLeft(fixed(Double(record.sent) / 1_000_000, digits: 2), 9) + " ms"
                + "  done " + padLeft(fixed(Double(record.finished) / 1_000_000, digits: 2), 9) + " ms  "
                + record.outcomeName
            if let previous, previous.worker == record.worker, previous.connection == record.connection, record.request > 1 {
                line += "  (previous response on this connection done at "
                    + fixed(Double(previous.finished) / 1_000_000, digits: 2) + " ms)"
            } else if record.request == 1 {
                line += "  (first request on a new connection)"
            }
            lines.append(line)
        }
        guard lost > 0 else { return "" }
        var text = "Lost requests (times in ms relative to SIGTERM"
        text += lost > lines.count ? "; first \(lines.count) of \(lost)):\n" : "):\n"
        return text + lines.joined(separator: "\n") + "\n"
    }

    // MARK: - JSON

    /// One line: total, ok_before, ok_after, ok_close, unanswered, truncated, timeout, refused,
    /// error, lost, exit_code (null if unknown), exit_ms (null if unknown), plus connections and
    /// error_reasons.
    static func json(_ result: DrillResult) -> String {
        let summary = result.summary
        var fields: [(String, String)] = [
            ("total", "\(summary.total)"),
            ("ok_before", "\(summary.okBefore)"),
            ("ok_after", "\(summary.okAfter)"),
            ("ok_close", "\(summary.okClose)"),
            ("unanswered", "\(summary.unanswered)"),
            ("truncated", "\(summary.truncated)"),
            ("timeout", "\(summary.timeout)"),
            ("refused", "\(summary.refused)"),
            ("error", "\(summary.error)"),
            ("lost", "\(summary.lost)"),
            ("exit_code", result.exit.code.map { "\($0)" } ?? "null"),
            ("exit_ms", result.exitMilliseconds.map { fixed($0, digits: 1) } ?? "null"),
            ("connections", "\(result.options.connections)"),
        ]
        let reasons = summary.errorReasons.sorted { $0.key < $1.key }
            .map { jsonString($0.key) + ":" + "\($0.value)" }
        fields.append(("error_reasons", "{" + reasons.joined(separator: ",") + "}"))
        return "{" + fields.map { jsonString($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// The service's own log lines from `secondsBefore` before the signal on, with their time
    /// relative to it: the service's account of its shutdown, beside the drill's.
    static func serviceLogText(_ result: DrillResult, secondsBefore: Double = 1) -> String {
        let lines = result.serviceLog.filter { $0.milliseconds >= -secondsBefore * 1000 }
        guard !lines.isEmpty else { return "" }
        var text = "Service log (non-access lines, ms relative to SIGTERM when the drill read them):\n"
        for line in lines {
            text += "  " + padLeft(fixed(line.milliseconds, digits: 1), 9) + "  " + line.text + "\n"
        }
        return text
    }
}

// MARK: - Formatting without Foundation

/// `value` rounded to `digits` decimals: fixed(12.345, digits: 1) == "12.3", fixed(-0.04, 1) == "0.0".
func fixed(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e17 else { return "\(value)" }
    let integer = Int64(scaled)
    let whole = integer / Int64(scale)
    let negative = value < 0 && integer != 0
    var text = (negative ? "-" : "") + "\(whole)"
    if digits > 0 {
        let fraction = String(integer % Int64(scale))
        text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
    return text
}

func padLeft(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

func padRight(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(0, width - text.count))
}
