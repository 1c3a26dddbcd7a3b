import CoreMetrics
import Logging
import Synchronization

/// ExportDiagnostics takes swift-otel's own log lines: it counts the spans the exporter could
/// not deliver (`tracing_spans_dropped_total`: batches whose export failed, and spans the full
/// queue turned away) and turns a failing collector into one warning, until an export
/// succeeds again; other diagnostics pass on at their level (debug ones dropped).
///
/// swift-otel offers no API for these counts; its diagnostics carry them (`batch_size` on a
/// failed export, `dropped_count` when the queue was full), and a test pins the wording.
final class ExportDiagnostics: LogHandler, @unchecked Sendable {
    private let logger: Logger
    private let dropped: Counter
    private let failing = Atomic<Bool>(false)

    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    init(logger: Logger, factory: any MetricsFactory = MetricsSystem.factory) {
        self.logger = logger
        dropped = Counter(label: "tracing_spans_dropped_total", dimensions: [], factory: factory)
    }

    func log(event: LogEvent) {
        let text = event.message.description
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        if text.hasPrefix("Failed to export batch") {
            let count = Int(all["batch_size"]?.description ?? "") ?? 0
            dropped.increment(by: count)
            if !failing.exchange(true, ordering: .relaxed) {
                logger.warning("span export failing: spans are dropped and counted in tracing_spans_dropped_total", metadata: [
                    "error": all["error"] ?? .string("-"), "dropped": .stringConvertible(count),
                ])
            }
        } else if text.hasPrefix("Spans were dropped") {
            dropped.increment(by: Int(all["dropped_count"]?.description ?? "") ?? 0)
        } else if text.hasPrefix("Exported batch") {
            if failing.exchange(false, ordering: .relaxed) { logger.info("span export recovered") }
        } else if event.level >= .warning {
            logger.log(level: event.level, "otel: \(text)", metadata: all)
        }
    }
}
