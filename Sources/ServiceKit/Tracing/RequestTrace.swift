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
///
/// Plain values only, so copying a request costs no reference counting; the caller's
/// `tracestate` is read from the header fields when asked for (``Request/tracestate``).
public struct RequestTrace: Sendable, Hashable {
    public var traceID: TraceID
    /// The server span for this request: the parent of any call made on its behalf.
    public var spanID: SpanID
    /// The caller's span, from its `traceparent`; nil for a trace this request started.
    public var parentSpanID: SpanID?
    public var flags: TraceFlags

    public init(traceID: TraceID, spanID: SpanID, parentSpanID: SpanID? = nil, flags: TraceFlags = []) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.flags = flags
    }

    /// The `traceparent` value for an outgoing call made on behalf of this request: the same
    /// trace, with this request's span as the parent. Send ``Request/tracestate`` with it.
    public var traceparent: String {
        TraceContext(traceID: traceID, spanID: spanID, flags: flags, state: TraceState()).traceParentHeaderValue
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
    static func start(headers: HTTPHeaders, random: inout SplitMix64) -> RequestTrace {
        let spanID = SpanID(random.next())
        guard let caller = callerContext(headers) else {
            return RequestTrace(traceID: TraceID(random.next(), random.next()), spanID: spanID)
        }
        return RequestTrace(traceID: caller.traceID, spanID: spanID, parentSpanID: caller.spanID, flags: caller.flags)
    }

    /// ``start(headers:random:)`` with the system's generator, for requests made outside a server.
    static func start(headers: HTTPHeaders) -> RequestTrace {
        var system = SystemRandomNumberGenerator()
        var random = SplitMix64(seed: system.next())
        return start(headers: headers, random: &random)
    }

    /// The caller's trace context from `traceparent`, or nil when it sent no valid one; with
    /// `state`, its `tracestate` too (empty when malformed or too long).
    static func callerContext(_ headers: HTTPHeaders, state: Bool = false) -> TraceContext? {
        // One lookup for the common case, a request without trace context.
        guard let traceparent = headers["traceparent"] else { return nil }
        guard headers.values(for: "traceparent").count == 1,
              var context = try? TraceContext(traceParentHeaderValue: traceparent)
        else { return nil }
        guard state else { return context }
        let tracestate = headers.values(for: "tracestate").joined(separator: ",")
        if !tracestate.isEmpty, tracestate.utf8.count <= maxTraceStateBytes,
           let withState = try? TraceContext(traceParentHeaderValue: traceparent, traceStateHeaderValue: tracestate) {
            context.state = withState.state
        }
        return context
    }
}

extension TraceID {
    /// The ID whose bytes are `high` then `low`, big-endian (as `TraceID.random` lays them).
    init(_ high: UInt64, _ low: UInt64) {
        self = .null
        withUnsafeMutableBytes(of: &self) { bytes in
            bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
    }

    /// The 16 bytes as two big-endian integers.
    var words: (UInt64, UInt64) {
        withUnsafeBytes(of: self) {
            (UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }
}

extension SpanID {
    init(_ value: UInt64) {
        self = .null
        withUnsafeMutableBytes(of: &self) { $0.storeBytes(of: value.bigEndian, as: UInt64.self) }
    }

    var word: UInt64 { withUnsafeBytes(of: self) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) } }
}

extension ByteWriter {
    /// Writes `value`'s 16 hex digits, most significant first, lowercase: the W3C form of a
    /// span ID, and half a trace ID.
    ///
    /// Eight bytes at a time in a register rather than a digit at a time: 48 digits per log
    /// line a digit at a time cost about 550 instructions (callgrind).
    mutating func writeHex(_ value: UInt64) {
        write(byteCount: 16) { out in
            UnsafeMutableRawPointer(out).storeBytes(of: Self.hexDigits(UInt32(truncatingIfNeeded: value >> 32)), as: UInt64.self)
            (UnsafeMutableRawPointer(out) + 8).storeBytes(of: Self.hexDigits(UInt32(truncatingIfNeeded: value)), as: UInt64.self)
        }
    }

    /// The 8 ASCII hex digits of `value`, the first in the lowest byte (little-endian memory
    /// order, so storing the result writes them in reading order).
    @inline(__always)
    static func hexDigits(_ value: UInt32) -> UInt64 {
        // Byte i of x is the i-th byte of `value` from the most significant, in a 16-bit lane.
        var x = UInt64(value.byteSwapped)
        x = (x | x << 16) & 0x0000_FFFF_0000_FFFF
        x = (x | x << 8) & 0x00FF_00FF_00FF_00FF
        // Each byte now one nibble, high before low: the digits' order.
        let nibbles = (x >> 4) & 0x000F_000F_000F_000F | (x & 0x000F_000F_000F_000F) << 8
        // '0' + n, and 39 more ('a' - '0' - 10) where n > 9.
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return (nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 39).littleEndian
    }
}
