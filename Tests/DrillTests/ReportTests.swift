// The outputs: CSV header and rows, the JSON line's keys and values, the text tables, and an
// SVG that is well-formed, complete and escaped.

import FoundationEssentials
import Testing
@testable import Drill

private let ms: Int64 = 1_000_000

/// A small result: two buckets before the signal, the signal's, and one after it.
private func sampleResult(path: String = "/health", lost: Bool = false, exitCode: Int32? = 0) -> DrillResult {
    var records = [
        RequestRecord(sent: -150 * ms, finished: -140 * ms, outcome: .ok(close: false), worker: 0, connection: 1, request: 1),
        RequestRecord(sent: -60 * ms, finished: -50 * ms, outcome: .ok(close: false), worker: 0, connection: 1, request: 2),
        RequestRecord(sent: -55 * ms, finished: -45 * ms, outcome: .ok(close: false), worker: 1, connection: 1, request: 1),
        RequestRecord(sent: 2 * ms, finished: 5 * ms, outcome: .ok(close: true), worker: 0, connection: 1, request: 3),
        RequestRecord(sent: 120 * ms, finished: 120 * ms, outcome: .refused, worker: 0, connection: 2, request: 0),
    ]
    if lost {
        records.append(RequestRecord(sent: 10 * ms, finished: 12 * ms, outcome: .unanswered, worker: 1, connection: 2, request: 1,
                                     peerClose: .reset))
        records.append(RequestRecord(sent: 11 * ms, finished: 13 * ms, outcome: .error("status 502"), worker: 1, connection: 3, request: 1))
    }
    var options = DrillOptions(target: .process(port: 8080, pid: 1))
    options.path = path
    options.connections = 2
    return DrillResult(
        options: options,
        port: 8080,
        summary: Summary(records: records, signalAt: 0),
        timeline: Timeline(records: records, signalAt: 0, bucketNanoseconds: 100 * ms),
        exit: ServiceExit(code: exitCode, exitedAt: exitCode == nil ? nil : 130 * ms, note: nil),
        exitMilliseconds: exitCode == nil ? nil : 130,
        connectionsOpened: 3,
        serviceLog: [],
        records: records
    )
}

@Suite struct CSVTests {
    @Test func headerAndOneRowPerBucket() {
        let csv = Report.csv(sampleResult().timeline)
        let lines = csv.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "t_ms,ok,ok_close,unanswered,truncated,timeout,refused,error")
        #expect(Array(lines.dropFirst()) == [
            "-200,1,0,0,0,0,0,0",
            "-100,2,0,0,0,0,0,0",
            "0,0,1,0,0,0,0,0",
            "100,0,0,0,0,0,1,0",
            "",
        ])
    }

    @Test func recordsCSVQuotesReasonsWithCommas() {
        let records = [RequestRecord(sent: 1_500_000, finished: 2_000_000, outcome: .error("bad, \"odd\""), worker: 3, connection: 1, request: 2)]
        #expect(Report.recordsCSV(records) == "worker,connection,request,sent_ms,finished_ms,outcome\n3,1,2,1.500,2.000,\"error: bad, \"\"odd\"\"\"\n")
    }
}

@Suite struct JSONTests {
    struct Line: Decodable {
        var total: Int
        var ok_before: Int
        var ok_after: Int
        var ok_close: Int
        var unanswered: Int
        var truncated: Int
        var timeout: Int
        var refused: Int
        var error: Int
        var lost: Int
        var exit_code: Int?
        var exit_ms: Double?
        var error_reasons: [String: Int]
    }

    @Test func oneLineWithEveryKey() throws {
        let text = Report.json(sampleResult(lost: true))
        #expect(!text.contains("\n"))
        let line = try JSONDecoder().decode(Line.self, from: Data(text.utf8))
        #expect(line.total == 7)
        #expect(line.ok_before == 3)
        #expect(line.ok_after == 1)
        #expect(line.ok_close == 1)
        #expect(line.unanswered == 1)
        #expect(line.refused == 1)
        #expect(line.error == 1)
        #expect(line.lost == 2)
        #expect(line.exit_code == 0)
        #expect(line.exit_ms == 130)
        #expect(line.error_reasons == ["status 502": 1])
    }

    @Test func unknownExitIsNull() {
        let text = Report.json(sampleResult(exitCode: nil))
        #expect(text.contains(#""exit_code":null"#))
        #expect(text.contains(#""exit_ms":null"#))
    }

    @Test func stringsAreEscaped() {
        #expect(Report.jsonString("a\"b\\c\nd\u{1}") == #""a\"b\\c\nd\u0001""#)
    }
}

@Suite struct TextReportTests {
    @Test func summaryNamesEveryCountAndTheExit() {
        let text = Report.summaryText(sampleResult(lost: true))
        for label in ["total requests", "ok before signal", "ok after signal", "with Connection: close", "unanswered",
                      "truncated", "timeout", "refused", "error", "status 502", "lost", "time to exit (ms)", "exit code",
                      "connections"] {
            #expect(text.contains(label), "missing \(label)")
        }
        #expect(text.contains("130.0"))
        #expect(text.contains("2 request(s) lost"))
    }

    @Test func timelineMarksTheSignalAndTheExit() {
        let text = Report.timelineText(sampleResult())
        let rows = text.split(separator: "\n")
        #expect(rows.contains { $0.contains("0.0") && $0.contains("<- SIGTERM") })
        #expect(rows.contains { $0.contains("0.1") && $0.contains("exit at 130.0 ms") })
        #expect(rows.contains { $0.hasPrefix("    -0.2") })
    }

    @Test func lostRequestsAreListedWithTheirConnection() {
        let text = Report.lostText(sampleResult(lost: true).records)
        #expect(text.contains("unanswered (ECONNRESET)  (first request on a new connection)"))
        #expect(text.contains("error: status 502"))
        #expect(Report.lostText(sampleResult().records).isEmpty)
    }

    @Test func fixedRounds() {
        #expect(fixed(12.345, digits: 1) == "12.3")
        #expect(fixed(-0.25, digits: 1) == "-0.3")
        #expect(fixed(-0.04, digits: 1) == "0.0")
        #expect(fixed(7, digits: 0) == "7")
        #expect(fixed(0.5, digits: 3) == "0.500")
    }
}

@Suite struct SVGTests {
    @Test func isACompleteWellFormedDocumentWithTheLegend() throws {
        let svg = SVGChart.render(sampleResult(lost: true))
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.trimmingSuffix(while: \.isWhitespace).hasSuffix("</svg>"))
        for label in ["ok (kept alive)", "ok, Connection: close", "unanswered", "truncated", "timeout", "error", "refused",
                      "SIGTERM", "exit (130 ms)", "time relative to SIGTERM (s)", "requests per 100ms bucket"] {
            #expect(svg.contains(">\(SVGChart.escape(label))<"), "missing \(label)")
        }
        try expectWellFormed(svg)
    }

    @Test func escapesTextFromTheCommandLine() throws {
        let svg = SVGChart.render(sampleResult(path: "/a?x=1&y=<2>\"'"))
        #expect(svg.contains("/a?x=1&amp;y=&lt;2&gt;&quot;&apos;"))
        #expect(!svg.contains("y=<2>"))
        try expectWellFormed(svg)
    }

    @Test func markersFlagBucketsWithFailures() {
        let svg = SVGChart.render(sampleResult(lost: true))
        // The unanswered and the 502 share the signal's bucket: one marker labelled 2.
        #expect(svg.contains("font-weight=\"bold\">2</text>"))
        #expect(!SVGChart.render(sampleResult()).contains("<path"))
    }

    @Test func yAxisReachesThePeak() {
        #expect(SVGChart.yAxis(peak: 0) == (1, 1))
        #expect(SVGChart.yAxis(peak: 7) == (2, 4))
        #expect(SVGChart.yAxis(peak: 2146) == (500, 5))
        #expect(SVGChart.yAxis(peak: 20_000) == (5000, 4))
    }

    /// Checks XML well-formedness as far as this generator's output needs: every element closes
    /// in order, attribute values are quoted, and every `&` starts an entity.
    private func expectWellFormed(_ svg: String) throws {
        var stack: [Substring] = []
        var rest = Substring(svg)
        while let open = rest.firstIndex(of: "<") {
            let text = rest[..<open]
            try checkEntities(text)
            guard let close = rest[open...].firstIndex(of: ">") else {
                Issue.record("unterminated tag")
                return
            }
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("/") {
                let name = tag.dropFirst()
                #expect(stack.popLast() == name, "</\(name)> closes the wrong element")
                continue
            }
            let name = tag.prefix { !$0.isWhitespace && $0 != "/" }
            #expect(!name.isEmpty)
            try checkEntities(tag)
            #expect(tag.filter { $0 == "\"" }.count % 2 == 0, "unbalanced quotes in <\(tag)>")
            if !tag.hasSuffix("/") {
                stack.append(name)
            }
        }
        #expect(stack.isEmpty, "unclosed: \(stack)")
    }

    private func checkEntities(_ text: Substring) throws {
        var rest = text
        while let amp = rest.firstIndex(of: "&") {
            let after = rest[amp...]
            #expect(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains { after.hasPrefix($0) }, "bare & in \(text)")
            rest = rest[rest.index(after: amp)...]
        }
    }
}

private extension String {
    func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var end = endIndex
        while end > startIndex, predicate(self[index(before: end)]) {
            end = index(before: end)
        }
        return self[..<end]
    }
}
