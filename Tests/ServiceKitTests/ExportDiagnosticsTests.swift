import Foundation
import Logging
import Testing
@testable import ServiceKit

/// What the OTel trait makes of swift-otel's diagnostics: lost spans counted, one warning per
/// outage. (The wording it keys on is swift-otel's; .ci/otel_check.py checks it against the
/// real library with the collector down.)
@Suite struct ExportDiagnosticsTests {
    func diagnostics() -> (Logger, CapturedLog, TestMetrics) {
        let log = CapturedLog()
        let metrics = TestMetrics()
        let handler = ExportDiagnostics(logger: log.logger("service"), factory: metrics)
        var otel = Logger(label: "otel") { _ in handler }
        otel.logLevel = .trace
        return (otel, log, metrics)
    }

    static func messages(_ log: CapturedLog) -> [String] {
        log.lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["msg"] as? String
        }
    }

    @Test func aFailingCollectorIsOneWarningAndEveryLostSpanIsCounted() {
        let (otel, log, metrics) = diagnostics()
        for _ in 0..<5 {
            otel.warning("Failed to export batch.", metadata: ["batch_id": "1", "batch_size": "7", "error": "connection refused"])
        }
        otel.warning("Spans were dropped this iteration because queue was full", metadata: ["dropped_count": "11", "queue_size": "2048"])
        #expect(metrics.value("tracing_spans_dropped_total") == Double(5 * 7 + 11))
        #expect(Self.messages(log) == ["span export failing: spans are dropped and counted in tracing_spans_dropped_total"])
        let warning = log.lines.first ?? ""
        #expect(warning.contains(#""level":"warning""#) && warning.contains("connection refused"))
    }

    @Test func aSuccessfulExportEndsTheOutageAndTheNextOneWarnsAgain() {
        let (otel, log, metrics) = diagnostics()
        otel.warning("Failed to export batch.", metadata: ["batch_size": "2"])
        otel.debug("Exported batch.", metadata: ["batch_size": "3"])
        otel.debug("Exported batch.", metadata: ["batch_size": "3"])
        otel.warning("Failed to export batch.", metadata: ["batch_size": "4"])
        #expect(metrics.value("tracing_spans_dropped_total") == 6)
        #expect(Self.messages(log) == [
            "span export failing: spans are dropped and counted in tracing_spans_dropped_total",
            "span export recovered",
            "span export failing: spans are dropped and counted in tracing_spans_dropped_total",
        ])
    }

    @Test func otherWarningsPassOnAndChatterDoesNot() {
        let (otel, log, metrics) = diagnostics()
        otel.debug("Consumed span from stream.")
        otel.info("Shutting down.")
        otel.error("Force flush failed.", metadata: ["error": "timeout"])
        #expect(Self.messages(log) == ["otel: Force flush failed."])
        #expect(metrics.value("tracing_spans_dropped_total") ?? 0 == 0)
    }
}
