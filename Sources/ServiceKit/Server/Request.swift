@_exported import HTTP1
import Logging
import W3CTraceContext

/// Request is what a handler sees: the parsed head, the whole body (bounded by
/// ``ServerConfiguration/maxBodyBytes``), the route's path parameters, the request ID and a
/// logger that carries it.
public struct Request: Sendable {
    public var head: HTTPRequestHead
    /// The body, after chunked decoding. Empty when the request had none, and for a route
    /// that streams its body (``bodyStream``).
    public var body: [UInt8]
    /// The body as it arrives, for a route registered with
    /// ``RequestBodyMode/streamed(maxBytes:)`` (empty when the request had none); nil for
    /// every other route.
    public var bodyStream: RequestBody?
    /// Values of the route's `:name` segments, percent-decoded.
    public var pathParameters: [String: String]
    /// The client's address, or nil if the socket could not tell.
    public var remoteAddress: SocketAddress?
    /// The `X-Request-ID` the client sent (if it was sane) or one the server made; echoed in
    /// the response and the access log.
    public var id: String
    /// The template of the route that matched (`/hello/:name`), set before middleware runs;
    /// nil for a request no route matched.
    public var route: String?
    /// The request's place in a distributed trace: the caller's trace continued from its
    /// `traceparent`, or a new one (see ``RequestTrace``).
    public var trace: RequestTrace
    /// The logger ``logger`` adds the request's fields to: the server's.
    public var baseLogger: Logger

    public init(
        head: HTTPRequestHead, body: [UInt8] = [], bodyStream: RequestBody? = nil, pathParameters: [String: String] = [:],
        remoteAddress: SocketAddress? = nil, id: String = "", route: String? = nil,
        trace: RequestTrace? = nil, logger: Logger = Request.defaultLogger
    ) {
        self.head = head
        self.body = body
        self.bodyStream = bodyStream
        self.pathParameters = pathParameters
        self.remoteAddress = remoteAddress
        self.id = id
        self.route = route
        if let trace {
            self.trace = trace
        } else {
            self.trace = RequestTrace.start(headers: head.headers)
        }
        baseLogger = logger
    }

    /// A request as a parser would produce it from `method target` (`/hello/Ada?greeting=Hi`)
    /// with these header fields and body: for tests, with ``Router/respond(to:)``. The body is
    /// framed with a `Content-Length`, and `id` is the request ID the server would assign.
    public init(
        _ method: String, _ target: String, headers: HTTPHeaders = [:], body: [UInt8] = [], id: String = "test-request",
        remoteAddress: SocketAddress? = nil, logger: Logger = Request.defaultLogger
    ) {
        let question = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = question.map { String(target[..<$0]) } ?? target
        let query = question.map { String(target[target.index(after: $0)...]) }
        var headers = headers
        if !body.isEmpty, headers["content-length"] == nil {
            headers.add(name: "Content-Length", value: String(body.count))
        }
        let head = HTTPRequestHead(
            method: method, target: target, path: path, query: query, version: .http1_1, headers: headers,
            framing: body.isEmpty ? .none : .contentLength(body.count), keepAlive: true, expectsContinue: false)
        self.init(head: head, body: body, remoteAddress: remoteAddress, id: id, logger: logger)
    }

    /// The logger requests get when none is given: label `request`, through the bootstrapped
    /// handler.
    public static let defaultLogger = Logger(label: "request")

    /// A logger whose lines carry this request's `request_id`, `route`, `trace_id` and
    /// `span_id`, through the same handler as the server's own lines. Made on each use: keep
    /// it in a local to log several lines.
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "request_id"] = .string(id)
        if let route { logger[metadataKey: "route"] = .string(route) }
        logger[metadataKey: "trace_id"] = .string(trace.traceID.description)
        logger[metadataKey: "span_id"] = .string(trace.spanID.description)
        return logger
    }

    /// The caller's `tracestate`, validated, to pass on with ``RequestTrace/traceparent`` on
    /// an outgoing call; nil when it sent none, or one that was malformed, longer than
    /// ``RequestTrace/maxTraceStateBytes`` or without a valid `traceparent`.
    public var tracestate: String? {
        RequestTrace.callerContext(head.headers, state: true)?.traceStateHeaderValue
    }

    public var method: String { head.method }
    /// The path, still percent-encoded.
    public var path: String { head.path }
    public var headers: HTTPHeaders { head.headers }

    /// The first value of query parameter `name`, percent-decoded (`+` as space); nil when the
    /// parameter is absent or its value has a malformed `%` escape. `?flag` gives "".
    public func query(_ name: String) -> String? {
        guard let query = head.query else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if PercentDecoding.decode(parts[0], plusAsSpace: true) == name {
                return parts.count > 1 ? PercentDecoding.decode(parts[1], plusAsSpace: true) : ""
            }
        }
        return nil
    }

    /// The value of path parameter `name` (a `:name` segment of the route).
    public func parameter(_ name: String) -> String? { pathParameters[name] }
}

enum PercentDecoding {
    /// Decodes `%XX` escapes; nil for a malformed escape. Invalid UTF-8 becomes U+FFFD.
    static func decode(_ text: Substring, plusAsSpace: Bool = false) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) || (plusAsSpace && text.utf8.contains(UInt8(ascii: "+"))) else {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hex), let low = iterator.next().flatMap(hex) else { return nil }
                bytes.append(high << 4 | low)
            } else if plusAsSpace && byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
