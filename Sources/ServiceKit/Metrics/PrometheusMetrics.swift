// `/metrics`: everything reported through swift-metrics in this process, server, process and
// any library's own, in Prometheus' text exposition format (swift-prometheus as the backend).

import CoreMetrics
import Prometheus
import Synchronization

/// PrometheusMetrics owns the process's Prometheus registry and serves its scrapes.
final class PrometheusMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: DescribedPrometheusFactory
    let version: String
    let revision: String
    /// Made at the first scrape, with the build-info gauge: nothing of the backend runs (or
    /// is paged in) in a process that is never scraped.
    private let process = Mutex<ProcessMetrics?>(nil)
    /// The servers whose metrics a scrape brings up to date first.
    private let servers = Mutex<[HTTPServer]>([])

    /// The request-duration histogram's upper bounds: from 100 µs (this server answers a small
    /// request in tens of microseconds) to Prometheus' default top of 10 s.
    static let requestDurationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    static let buildInfoName = "service_build_info"

    /// The `# HELP` text of each metric this service defines.
    static let descriptions: [String: String] = [
        ServerMetrics.Name.requests: "HTTP requests answered, by method, route template and status class.",
        ServerMetrics.Name.requestDuration:
            "Time from a request's complete header section to its response written, by route template.",
        ServerMetrics.Name.requestsInFlight: "Requests whose handler is running or whose response is being written.",
        ServerMetrics.Name.connections: "Open client connections by state: active (a request under way), idle (keep-alive, waiting) or parked (idle, holding no task or buffers).",
        ServerMetrics.Name.connectionsAccepted: "Client connections accepted.",
        ServerMetrics.Name.connectionsRefused: "Client connections refused with a 503 at the connection cap.",
        ServerMetrics.Name.draining: "1 once a graceful shutdown has begun, else 0.",
        ServerMetrics.Name.receivedBytes: "Bytes read from client connections.",
        ServerMetrics.Name.sentBytes: "Bytes of responses written to client connections.",
        ProcessMetrics.Name.residentMemory: "Resident memory size in bytes.",
        ProcessMetrics.Name.virtualMemory: "Virtual memory size in bytes.",
        ProcessMetrics.Name.cpuSeconds: "Total user and system CPU time spent in seconds.",
        ProcessMetrics.Name.openFileDescriptors: "Number of open file descriptors.",
        ProcessMetrics.Name.maxFileDescriptors: "Maximum number of open file descriptors.",
        ProcessMetrics.Name.startTime: "Start time of the process since unix epoch in seconds.",
        ProcessMetrics.Name.droppedLogLines: "Log lines dropped because standard output was not read in time or failed.",
        buildInfoName: "Always 1; the labels are the version and source revision this binary was built from.",
    ]

    init(version: String, revision: String) {
        registry = PrometheusCollectorRegistry()
        factory = DescribedPrometheusFactory(
            registry: registry, descriptions: Self.descriptions,
            durationBuckets: [ServerMetrics.Name.requestDuration: Self.requestDurationBuckets])
        self.version = version
        self.revision = revision
    }

    /// Makes this registry the process's swift-metrics backend, so libraries that record
    /// metrics (a database client, say) appear in the same scrape. Once per process.
    func bootstrap() {
        MetricsSystem.bootstrap(factory)
    }

    /// Adds a server whose metrics each scrape collects first.
    func collect(from server: HTTPServer) {
        servers.withLock { $0.append(server) }
    }

    /// The scrape: every metric, current as of now.
    func scrape() async -> [UInt8] {
        for server in servers.withLock({ $0 }) { await server.collectMetrics() }
        process.withLock { process in
            if let process {
                process.collect()
            } else {
                process = ProcessMetrics(factory: factory)
                CoreMetrics.Gauge(
                    label: Self.buildInfoName, dimensions: [("version", version), ("revision", revision)],
                    factory: factory
                ).record(1)
            }
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        factory.histograms.emit(into: &buffer)
        return buffer
    }

    /// `GET /metrics`.
    var handler: Handler {
        { [self] _ in
            var response = Response(body: await scrape())
            response.headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            return response
        }
    }
}

/// A swift-metrics factory over swift-prometheus that gives this service's metrics their
/// `# HELP` text; other metrics go to ``PrometheusMetricsFactory`` as they are. Timers with
/// buckets of their own here (the request-duration histogram) are ``TimerHistogram``s that
/// this file renders, after the registry's output, in the same format.
///
/// (The registry insists that every registration of a name carries the same help text, so
/// the text for a name is decided here, in one place, rather than by whoever registers first.)
struct DescribedPrometheusFactory: MetricsFactory {
    let base: PrometheusMetricsFactory
    let descriptions: [String: String]
    let durationBuckets: [String: [Duration]]
    let histograms = TimerHistograms()

    var registry: PrometheusCollectorRegistry { base.registry }

    init(registry: PrometheusCollectorRegistry, descriptions: [String: String], durationBuckets: [String: [Duration]]) {
        base = PrometheusMetricsFactory(registry: registry)
        self.descriptions = descriptions
        self.durationBuckets = durationBuckets
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor? {
        descriptions[label].map { MetricNameDescriptor(metricName: label, unitName: "", helpText: $0) }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let descriptor = descriptor(label) else { return base.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let descriptor = descriptor(label) else {
            return base.makeFloatingPointCounter(label: label, dimensions: dimensions)
        }
        return registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard !aggregate, let descriptor = descriptor(label) else {
            return base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        return registry.makeGauge(descriptor: descriptor, labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let descriptor = descriptor(label) else { return base.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: descriptor, labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        if let buckets = durationBuckets[label] {
            return histograms.histogram(label, help: descriptions[label], labels: dimensions, buckets: buckets)
        }
        guard let descriptor = descriptor(label) else { return base.makeTimer(label: label, dimensions: dimensions) }
        return registry.makeDurationHistogram(
            descriptor: descriptor, labels: dimensions, buckets: base.defaultDurationHistogramBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        base.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? TimerHistogram {
            histograms.remove(histogram)
        } else {
            base.destroyTimer(handler)
        }
    }
}

/// A histogram of durations that costs little per observation: the bucket is found by comparing
/// integer nanoseconds, and one uncontended lock covers the update.
///
/// Why not swift-prometheus' own: its `Histogram<Duration>.record` cost about 1,000 instructions
/// per observation here (callgrind; every bucket compared as a generic `Duration` under its
/// lock), 6.7% of a whole keep-alive request, for the one metric recorded per request. This one
/// renders the same exposition text (cumulative `_bucket` lines with `le`, `+Inf`, `_sum`,
/// `_count`).
final class TimerHistogram: TimerHandler, Sendable {
    let name: String
    let labels: [(String, String)]
    /// Upper bounds, nanoseconds, increasing.
    let bounds: [Int64]
    /// The bounds as `le` label values, in seconds.
    let boundLabels: [String]
    private let state: Mutex<(counts: [Int], sum: Int64, count: Int)>

    init(name: String, labels: [(String, String)], buckets: [Duration]) {
        self.name = name
        self.labels = labels
        let sorted = Set(buckets.map(Self.nanoseconds)).sorted()
        bounds = sorted
        boundLabels = sorted.map { String(Double($0) / 1e9) }
        state = Mutex((Array(repeating: 0, count: sorted.count + 1), 0, 0))
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }

    func recordNanoseconds(_ duration: Int64) {
        var index = 0
        while index < bounds.count && duration > bounds[index] { index += 1 }
        state.withLock { state in
            state.counts[index] &+= 1
            state.sum &+= max(0, duration)
            state.count &+= 1
        }
    }

    func emit(into buffer: inout [UInt8]) {
        let (counts, sum, count) = state.withLock { $0 }
        var rendered = ""
        for (name, value) in labels {
            rendered += name + "=\"" + PrometheusEscaping.labelValue(value) + "\","
        }
        var cumulative = 0
        for (index, bound) in (boundLabels + ["+Inf"]).enumerated() {
            cumulative += counts[index]
            buffer.append(contentsOf: "\(name)_bucket{\(rendered)le=\"\(bound)\"} \(cumulative)\n".utf8)
        }
        let braces = labels.isEmpty ? "" : "{" + rendered.dropLast() + "}"
        buffer.append(contentsOf: "\(name)_sum\(braces) \(Double(sum) / 1e9)\n".utf8)
        buffer.append(contentsOf: "\(name)_count\(braces) \(count)\n".utf8)
    }
}

/// The ``TimerHistogram``s, by name and label set, rendered family by family.
final class TimerHistograms: Sendable {
    private let families = Mutex<[(name: String, help: String?, members: [TimerHistogram])]>([])

    /// The histogram for `name` and `labels`, made on first use.
    func histogram(_ name: String, help: String?, labels: [(String, String)], buckets: [Duration]) -> TimerHistogram {
        families.withLock { families in
            let key = labels.map { "\($0.0)=\($0.1)" }
            guard let index = families.firstIndex(where: { $0.name == name }) else {
                let made = TimerHistogram(name: name, labels: labels, buckets: buckets)
                families.append((name, help, [made]))
                return made
            }
            if let existing = families[index].members.first(where: { $0.labels.map { "\($0.0)=\($0.1)" } == key }) {
                return existing
            }
            let made = TimerHistogram(name: name, labels: labels, buckets: buckets)
            families[index].members.append(made)
            return made
        }
    }

    func remove(_ histogram: TimerHistogram) {
        families.withLock { families in
            for index in families.indices { families[index].members.removeAll { $0 === histogram } }
            families.removeAll { $0.members.isEmpty }
        }
    }

    func emit(into buffer: inout [UInt8]) {
        for family in families.withLock({ $0 }) {
            if let help = family.help {
                buffer.append(contentsOf: "# HELP \(family.name) \(PrometheusEscaping.help(help))\n".utf8)
            }
            buffer.append(contentsOf: "# TYPE \(family.name) histogram\n".utf8)
            for member in family.members { member.emit(into: &buffer) }
        }
    }
}

/// The text format's escapes: `\\`, `\"` and `\n` in label values; `\\` and `\n` in HELP.
enum PrometheusEscaping {
    static func labelValue(_ value: String) -> String {
        escape(value, quote: true)
    }

    static func help(_ text: String) -> String {
        escape(text, quote: false)
    }

    private static func escape(_ text: String, quote: Bool) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\n") || (quote && $0 == UInt8(ascii: "\"")) })
        else { return text }
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quote: out += "\\\""
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
