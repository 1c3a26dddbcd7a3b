// `/metrics`: everything reported through swift-metrics in this process, server, process and
// any library's own, in Prometheus' text exposition format (swift-prometheus as the backend).

import CoreMetrics
import Prometheus
import ServiceKit
import Synchronization

/// AppMetrics owns the process's Prometheus registry and serves its scrapes.
final class AppMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: DescribedPrometheusFactory
    let process: ProcessMetrics
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
        buildInfoName: "Always 1; the labels are the version and source revision this binary was built from.",
    ]

    init(version: String = BuildInfo.version, revision: String = BuildInfo.revision) {
        registry = PrometheusCollectorRegistry()
        factory = DescribedPrometheusFactory(
            registry: registry, descriptions: Self.descriptions,
            durationBuckets: [ServerMetrics.Name.requestDuration: Self.requestDurationBuckets])
        process = ProcessMetrics(factory: factory)
        CoreMetrics.Gauge(label: Self.buildInfoName, dimensions: [("version", version), ("revision", revision)], factory: factory)
            .record(1)
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
        process.collect()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
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
/// `# HELP` text and the request-duration histogram its buckets; other metrics go to
/// ``PrometheusMetricsFactory`` as they are.
///
/// (The registry insists that every registration of a name carries the same help text, so
/// the text for a name is decided here, in one place, rather than by whoever registers first.)
struct DescribedPrometheusFactory: MetricsFactory {
    let base: PrometheusMetricsFactory
    let descriptions: [String: String]
    let durationBuckets: [String: [Duration]]

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
        guard let descriptor = descriptor(label) else { return base.makeTimer(label: label, dimensions: dimensions) }
        let buckets = durationBuckets[label] ?? base.defaultDurationHistogramBuckets
        return registry.makeDurationHistogram(descriptor: descriptor, labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        base.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}
