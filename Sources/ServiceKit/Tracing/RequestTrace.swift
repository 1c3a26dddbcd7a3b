import HTTP1
import W3CTraceContext

/// RequestTrace is one request's place in a distributed trace (W3C Trace Context): the trace
/// it belongs to, the span the server opened for it, and the caller's span.
///
/// Every request has one. With an incoming `traceparent` the trace continues the caller's
/// (its trace ID and sampled flag, its `tracestate` passed on); a missing or malformed header
/// starts a new trace, never a `400`. The IDs are in the access-log line and in every line
/// written through ``Request/logger``, as `trace_id` and `span_id`, so logs join traces in any
/// backend even when nothing records spans.
///
/// When a tracer is bootstrapped (see ``ServerTracing``), the IDs are its span's.
public struct RequestTrace: Sendable, Hashable {
    public var traceID: TraceID
    /// The server span for this request: the parent of any call made on its behalf.
    public var spanID: SpanID
    /// The caller's span, from its `traceparent`; nil for a trace this request started.
    public var parentSpanID: SpanID?
    public var flags: TraceFlags
    /// The caller's `tracestate`, passed on unchanged; empty when it sent none or one that
    /// was malformed or longer than ``maxTraceStateBytes``.
    public var state: TraceState

    public init(traceID: TraceID, spanID: SpanID, parentSpanID: SpanID? = nil, flags: TraceFlags = [], state: TraceState = TraceState()) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.flags = flags
        self.state = state
    }

    /// The `traceparent` value for an outgoing call made on behalf of this request: the same
    /// trace, with this request's span as the parent.
    public var traceparent: String {
        TraceContext(traceID: traceID, spanID: spanID, flags: flags, state: state).traceParentHeaderValue
    }

    /// The `tracestate` value to send with ``traceparent``; nil when there is none.
    public var tracestate: String? {
        TraceContext(traceID: traceID, spanID: spanID, flags: flags, state: state).traceStateHeaderValue
    }

    /// The longest `tracestate` taken, in bytes. W3C asks for at least 512 to be propagated;
    /// a longer one is dropped (the trace continues without it) rather than parsed: the
    /// parser's cost grows with the square of a list member's length.
    public static let maxTraceStateBytes = 512

    /// The trace for a request with these header fields: the caller's, continued, or a new one.
    /// `random` makes the span ID (and the trace ID of a new trace).
    ///
    /// A new trace is not sampled: nothing recorded it (W3C: "the caller did not record
    /// trace data"). More than one `traceparent` field is malformed; several `tracestate`
    /// fields are one comma-separated list (RFC 9110 §5.3).
    static func start(headers: HTTPHeaders, random: inout some RandomNumberGenerator) -> RequestTrace {
        let spanID = SpanID.random(using: &random)
        guard let caller = callerContext(headers) else {
            return RequestTrace(traceID: TraceID.random(using: &random), spanID: spanID)
        }
        return RequestTrace(
            traceID: caller.traceID, spanID: spanID, parentSpanID: caller.spanID, flags: caller.flags, state: caller.state)
    }

    /// The caller's trace context from `traceparent` and `tracestate`, or nil when it sent no
    /// valid `traceparent`. A malformed `tracestate` costs only the state.
    static func callerContext(_ headers: HTTPHeaders) -> TraceContext? {
        var traceparent: String?
        var tracestate: String?
        var parents = 0
        for (name, value) in headers {
            if HTTPHeaders.equalsIgnoringCase(name, "traceparent") {
                parents += 1
                traceparent = value
            } else if HTTPHeaders.equalsIgnoringCase(name, "tracestate") {
                tracestate = tracestate.map { $0 + "," + value } ?? value
            }
        }
        guard parents == 1, let traceparent, var context = try? TraceContext(traceParentHeaderValue: traceparent) else {
            return nil
        }
        if let tracestate, !tracestate.isEmpty, tracestate.utf8.count <= maxTraceStateBytes,
           let withState = try? TraceContext(traceParentHeaderValue: traceparent, traceStateHeaderValue: tracestate) {
            context.state = withState.state
        }
        return context
    }
}

extension ByteWriter {
    /// Writes `bytes` as lowercase hex digits, the W3C form of trace and span IDs.
    mutating func writeHex(_ bytes: UnsafeRawBufferPointer) {
        write(byteCount: bytes.count * 2) { out in
            for (i, byte) in bytes.enumerated() {
                out[2 * i] = Self.hexDigit(byte >> 4)
                out[2 * i + 1] = Self.hexDigit(byte & 0x0F)
            }
        }
    }
}
