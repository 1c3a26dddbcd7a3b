/// ServerSentEvent is one event of a `text/event-stream` (the HTML Living Standard's
/// "Server-sent events", §9.2), as ``ResponseWriter/send(_:)`` writes it.
public struct ServerSentEvent: Sendable, Equatable {
    /// The event's data. Each line (split at CR, LF or CRLF) goes out as a `data:` line of its
    /// own; the client joins them with LF.
    public var data: String
    /// The event type (`event:`); nil for the default, `message`.
    public var event: String?
    /// The event ID (`id:`), which the client sends back as `Last-Event-ID` when it reconnects.
    public var id: String?
    /// How long the client waits before reconnecting (`retry:`), in milliseconds.
    public var retryMilliseconds: Int?

    public init(data: String, event: String? = nil, id: String? = nil, retryMilliseconds: Int? = nil) {
        self.data = data
        self.event = event
        self.id = id
        self.retryMilliseconds = retryMilliseconds
    }

    /// The event on the wire, ending with the blank line that dispatches it. A line break in
    /// `event` or `id` would end the field early and start another, so each becomes a space;
    /// so does a NUL in `id`, which makes clients ignore the field.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.utf8.count + 32)
        if let event { Self.append(field: "event", Self.singleLine(event, nul: false), to: &out) }
        if let id { Self.append(field: "id", Self.singleLine(id, nul: true), to: &out) }
        if let retryMilliseconds { Self.append(field: "retry", Array(String(max(retryMilliseconds, 0)).utf8), to: &out) }
        for line in Self.lines(data) { Self.append(field: "data", line, to: &out) }
        out.append(Self.lf)
        return out
    }

    /// A comment (`: text`), which clients ignore: a heartbeat that keeps proxies and load
    /// balancers from closing an idle stream. Line breaks in `text` start further comment lines.
    public static func comment(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for line in lines(text) {
            out.append(UInt8(ascii: ":"))
            if !line.isEmpty { out.append(UInt8(ascii: " ")) }
            out.append(contentsOf: line)
            out.append(lf)
        }
        out.append(lf)
        return out
    }

    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")

    private static func append(field: StaticString, _ value: [UInt8], to out: inout [UInt8]) {
        field.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: ":"))
        // A value that starts with a space would lose it: the parser drops one after the colon.
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: value)
        out.append(lf)
    }

    /// The lines of `text`, split at CRLF, CR or LF; one empty line for empty text.
    private static func lines(_ text: String) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var previousCR = false
        for byte in text.utf8 {
            if byte == lf && previousCR {
                previousCR = false
                continue
            }
            previousCR = byte == cr
            if byte == cr || byte == lf {
                lines.append(current)
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(byte)
            }
        }
        lines.append(current)
        return lines
    }

    private static func singleLine(_ text: String, nul: Bool) -> [UInt8] {
        text.utf8.map { $0 == cr || $0 == lf || (nul && $0 == 0) ? UInt8(ascii: " ") : $0 }
    }
}

extension ResponseWriter {
    /// Writes one event of a `text/event-stream`.
    public func send(_ event: ServerSentEvent) async throws {
        try await write(event.encoded)
    }

    /// Writes a comment line, a heartbeat the client ignores (``ServerSentEvent/comment(_:)``).
    public func sendComment(_ text: String = "") async throws {
        try await write(ServerSentEvent.comment(text))
    }
}

extension Response {
    /// A `text/event-stream` response (Server-Sent Events): `events` writes the events with
    /// ``ResponseWriter/send(_:)``. The head goes out at once, so the client sees the stream
    /// open before the first event. `Cache-Control: no-store` keeps caches from holding it.
    ///
    /// A stream that lives long should end when the server shuts down: check
    /// ``ResponseWriter/isShuttingDown``, or wait with ``ResponseWriter/sleep(for:)``, which
    /// returns false as soon as the shutdown begins.
    public static func eventStream(
        status: Int = 200, headers: HTTPHeaders = [:],
        _ events: @escaping @Sendable (ResponseWriter) async throws -> Void
    ) -> Response {
        var fields = eventStreamHeaders
        for (name, value) in headers { fields.add(name: name, value: value) }
        return Response(status: status, headers: fields) { writer in
            try await writer.flush()
            try await events(writer)
        }
    }

    private static let eventStreamHeaders: HTTPHeaders = [
        "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
    ]
}
