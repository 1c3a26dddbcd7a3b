import Synchronization
import Tracing
import W3CTraceContext
@testable import ServiceKit

/// A tracer for tests that propagates as swift-otel does (W3C `traceparent`/`tracestate`)
/// and records the spans that end. It keeps each span's W3C context under
/// `InstrumentationContext.traceContext`, where the server reads the IDs for its log lines, or
/// (`privateKey`) under a key of its own, as swift-otel does, so the server must ask it to
/// inject them.
final class W3CTestTracer: Tracer, Sendable {
    let privateKey: Bool

    init(privateKey: Bool = false) { self.privateKey = privateKey }

    private func read(_ context: InstrumentationContext) -> TraceContext? {
        privateKey ? context[PrivateKey.self] : context.traceContext
    }

    private func write(_ value: TraceContext, into context: inout InstrumentationContext) {
        if privateKey { context[PrivateKey.self] = value } else { context.traceContext = value }
    }

    private enum PrivateKey: InstrumentationContextKey { typealias Value = TraceContext }

    struct Finished: Sendable {
        var name: String
        var kind: SpanKind
        var context: TraceContext
        var parentSpanID: SpanID?
        var attributes: SpanAttributes
        var status: SpanStatus?
        var endedAt: ContinuousClock.Instant
    }

    private let ended = Mutex<[Finished]>([])
    private let started = Atomic<Int>(0)

    var finished: [Finished] { ended.withLock { $0 } }
    var startedCount: Int { started.load(ordering: .relaxed) }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> TestSpan {
        started.add(1, ordering: .relaxed)
        var context = context()
        let parent = read(context)
        var random = SystemRandomNumberGenerator()
        let own = TraceContext(
            traceID: parent?.traceID ?? TraceID.random(using: &random), spanID: SpanID.random(using: &random),
            flags: parent?.flags ?? .sampled, state: parent?.state ?? TraceState())
        write(own, into: &context)
        return TestSpan(name: operationName, kind: kind, context: context, own: own, parentSpanID: parent?.spanID) { span in
            self.ended.withLock { $0.append(span) }
        }
    }

    func activeSpan(identifiedBy context: InstrumentationContext) -> TestSpan? { nil }

    func forceFlush() {}

    func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let traceparent = extractor.extract(key: "traceparent", from: carrier),
              let caller = try? TraceContext(
                traceParentHeaderValue: traceparent, traceStateHeaderValue: extractor.extract(key: "tracestate", from: carrier))
        else { return }
        write(caller, into: &context)
    }

    func inject<Carrier, Inject: Injector>(
        _ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let own = read(context) else { return }
        injector.inject(own.traceParentHeaderValue, forKey: "traceparent", into: &carrier)
    }
}

final class TestSpan: Span {
    let context: InstrumentationContext
    private let kind: SpanKind
    private let own: TraceContext
    private let parentSpanID: SpanID?
    private let onEnd: @Sendable (W3CTestTracer.Finished) -> Void
    private let state: Mutex<(name: String, attributes: SpanAttributes, status: SpanStatus?, ended: Bool)>

    init(
        name: String, kind: SpanKind, context: InstrumentationContext, own: TraceContext, parentSpanID: SpanID?,
        onEnd: @escaping @Sendable (W3CTestTracer.Finished) -> Void
    ) {
        self.context = context
        self.kind = kind
        self.own = own
        self.parentSpanID = parentSpanID
        self.onEnd = onEnd
        state = Mutex((name, SpanAttributes(), nil, false))
    }

    var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    var isRecording: Bool { true }

    func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }
    func addEvent(_ event: SpanEvent) {}
    func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {}
    func addLink(_ link: SpanLink) {}

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let finished: W3CTestTracer.Finished? = state.withLock { state in
            // A span ended twice would be a server bug; record both so a test sees it.
            state.ended = true
            return W3CTestTracer.Finished(
                name: state.name, kind: kind, context: own, parentSpanID: parentSpanID, attributes: state.attributes,
                status: state.status, endedAt: .now)
        }
        if let finished { onEnd(finished) }
    }
}
