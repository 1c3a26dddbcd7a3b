#if OTel
import CoreMetrics
import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// Span export over OTLP/HTTP through swift-otel: the `OTel` package trait.
///
/// Configured by OpenTelemetry's standard variables, read by swift-otel
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, default `http://localhost:4318`; `OTEL_SERVICE_NAME`;
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, default `parentbased_always_on`;
/// `OTEL_RESOURCE_ATTRIBUTES`; `OTEL_BSP_*` for the batching; `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none` turn it off). Only traces: logs stay JSON on stdout and metrics
/// stay Prometheus.
///
/// A request never waits for the collector: a finished span is queued (at most
/// `OTEL_BSP_MAX_QUEUE_SIZE`, 2,048) and sent in batches by a task of its own. When the
/// collector cannot take them, spans are dropped and counted in `tracing_spans_dropped_total`,
/// with one warning until an export succeeds again. At shutdown the queue is flushed after
/// the server has drained, before the process exits: at most the export timeout (2 s here,
/// `OTEL_EXPORTER_OTLP_TIMEOUT`) when the collector is unreachable.
enum OTelExport {
    /// Bootstraps swift-otel's tracer as the process's tracer and returns the service that
    /// exports its spans (to run in the service group, after the server), or nil when the
    /// variables turn tracing off.
    static func bootstrap(serviceName: String, environment: [String: String], logger: Logger) throws -> (any Service)? {
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        // The trait builds OTLP/HTTP only (no gRPC): protobuf over HTTP unless the variables say JSON.
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // An export waits at most 2 s (OTEL_EXPORTER_OTLP_TIMEOUT overrides; OpenTelemetry's
        // default is 10 s): with the collector unreachable, AsyncHTTPClient retries the
        // connection until then, and the flush at shutdown would hold the exit that long
        // (measured: 9.1 s from SIGTERM to exit with the default, the collector's port closed).
        configuration.traces.otlpExporter.timeout = .seconds(2)
        let diagnostics = ExportDiagnostics(logger: logger)
        configuration.diagnosticLogger = .custom(Logger(label: "otel") { _ in diagnostics })
        configuration.diagnosticLogLevel = .debug
        guard tracingEnabled(configuration, environment: environment) else { return nil }
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        return service
    }

    /// Whether the environment leaves traces on (swift-otel throws when asked to make a
    /// tracing backend with them off).
    static func tracingEnabled(_ configuration: OTel.Configuration, environment: [String: String]) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        if environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "none" { return false }
        return configuration.traces.enabled
    }
}

#endif
