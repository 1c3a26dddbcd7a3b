import HTTP1
import Tracing
import W3CTraceContext

/// ServerTracing is how the server records spans: a tracer (swift-distributed-tracing's API,
/// so any backend: swift-otel, an in-memory tracer in tests) and how to read the W3C IDs of
/// that tracer's spans, for the log lines.
///
/// Without one (the default) the server still propagates: each request has a ``RequestTrace``
/// continued from its `traceparent` or started fresh, its IDs in the logs, at the cost of a
/// header scan and a random span ID; nothing is recorded.
///
/// With one, each request of a traced route (every route but the probes, unless registered
/// with `traced: false`) gets a server span:
/// - named by its route template, `GET /hello/:name` (never the raw path: span names must
///   stay a small set), or by the method alone when no route matched;
/// - its parent extracted from the request's header fields by the tracer (W3C `traceparent`
///   for swift-otel);
/// - with OpenTelemetry's HTTP server attributes: `http.request.method`, `http.route`,
///   `http.response.status_code`, `url.path`, `url.scheme`, `server.port`, `client.address`,
///   `network.protocol.version`; a `5xx` marks it as an error;
/// - ended when the response's last byte is written, a stream's included.
///
/// The handler runs with the span's context as `InstrumentationContext.current` (the
/// `ServiceContext` of older releases): `withSpan("query") { ... }` in a handler makes a child
/// span, and `InstrumentationSystem.tracer.inject(.current ?? .topLevel, into: &headers, using:
/// HTTPHeadersInjector())` puts `traceparent` on an outgoing request.
public struct ServerTracing: Sendable {
    public let tracer: any Tracer
    /// Reads the W3C trace context of a span the tracer started from the span's context, for
    /// the log lines; nil for the default (see ``init(tracer:spanContext:)``).
    let spanContextReader: (@Sendable (InstrumentationContext) -> TraceContext?)?

    /// - Parameter spanContext: how to read the W3C trace context of a span `tracer` started
    ///   from the span's context. By default: what the context holds as
    ///   `InstrumentationContext.traceContext`, or else what `tracer` injects as `traceparent`
    ///   for it, which any tracer that propagates W3C context gives (swift-otel does). When
    ///   neither says, the request's own ``RequestTrace`` is logged.
    public init(tracer: any Tracer, spanContext: (@Sendable (InstrumentationContext) -> TraceContext?)? = nil) {
        self.tracer = tracer
        spanContextReader = spanContext
    }

    /// The bootstrapped tracer (`InstrumentationSystem.bootstrap`), or nil when none was: the
    /// default no-op tracer records nothing, so the server does not call it at all.
    public static func bootstrapped() -> ServerTracing? {
        let tracer = InstrumentationSystem.tracer
        if tracer is NoOpTracer { return nil }
        return ServerTracing(tracer: tracer)
    }

    /// The W3C trace context of the span whose context is `context` (see ``init(tracer:spanContext:)``).
    func spanContext(_ context: InstrumentationContext) -> TraceContext? {
        if let spanContextReader { return spanContextReader(context) }
        if let own = context.traceContext { return own }
        var injected = HTTPHeaders()
        tracer.inject(context, into: &injected, using: HTTPHeadersInjector())
        guard let traceparent = injected["traceparent"] else { return nil }
        return try? TraceContext(traceParentHeaderValue: traceparent)
    }

    /// Starts the server span for a request (see the type's description).
    func startSpan(
        head: HTTPRequestHead, route: String?, remote: SocketAddress?, scheme: String, serverPort: Int
    ) -> any Span {
        var parent = InstrumentationContext.topLevel
        tracer.extract(head.headers, into: &parent, using: HTTPHeadersExtractor())
        let span = tracer.startSpan(route.map { "\(head.method) \($0)" } ?? head.method, context: parent, ofKind: .server)
        var attributes = SpanAttributes()
        attributes["http.request.method"] = head.method
        if let route { attributes["http.route"] = route }
        attributes["url.path"] = head.path
        attributes["url.scheme"] = scheme
        attributes["server.port"] = serverPort
        if let host = remote?.host { attributes["client.address"] = host }
        attributes["network.protocol.version"] = head.version == .http1_0 ? "1.0" : "1.1"
        span.attributes.merge(attributes)
        return span
    }

    /// Records the outcome on `span` and ends it.
    static func end(_ span: any Span, status: Int) {
        span.attributes["http.response.status_code"] = status
        if status >= 500 {
            // OpenTelemetry's HTTP conventions: a server span is an error for 5xx, not 4xx.
            span.attributes["error.type"] = String(status)
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
    }
}

extension InstrumentationContext {
    /// A span's W3C trace context, for a tracer that keeps one here: what
    /// ``ServerTracing/bootstrapped(spanContext:)`` reads by default to put a span's IDs in
    /// the log lines.
    public var traceContext: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }
}

private enum TraceContextKey: InstrumentationContextKey {
    typealias Value = TraceContext
    static var nameOverride: String? { "w3c-trace-context" }
}

/// Reads a request's header fields for `Instrument.extract` (case-insensitive, first value).
public struct HTTPHeadersExtractor: Extractor {
    public init() {}
    public func extract(key: String, from carrier: HTTPHeaders) -> String? { carrier[key] }
}

/// Writes header fields for `Instrument.inject`, replacing any field of the same name: for an
/// outgoing request made on a request's behalf.
public struct HTTPHeadersInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.remove(name: key)
        carrier.add(name: key, value: value)
    }
}
