/// Response is what a handler returns: a status, header fields and a body, whole in `body` or
/// written while it is sent (`stream`).
///
/// The server adds `Date`, `Content-Length` (or `Transfer-Encoding`), `Connection` and
/// `X-Request-ID` itself.
public struct Response: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// A body written while it is sent (``init(status:headers:contentLength:stream:)``); when
    /// set, `body` is not sent.
    public var stream: ResponseStream?

    public init(status: Int = 200, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with a UTF-8 text body.
    public static func text(_ text: String, status: Int = 200) -> Response {
        Response(status: status, headers: textHeaders, body: Array(text.utf8))
    }

    /// A response whose body is already-encoded JSON.
    public static func json(raw: [UInt8], status: Int = 200) -> Response {
        Response(status: status, headers: jsonHeaders, body: raw)
    }

    // Shared (copy-on-write) rather than built from a literal per response: a literal costs two
    // allocations (the variadic array and the converted one) on every request.
    private static let textHeaders: HTTPHeaders = ["Content-Type": "text/plain; charset=utf-8"]
    private static let jsonHeaders: HTTPHeaders = ["Content-Type": "application/json"]

    /// The answer to a thrown ``HTTPError``: its status, the JSON error body with its reason,
    /// and its header fields.
    public init(error: HTTPError) {
        self = .error(error.status, error.reason)
        for (name, value) in error.headers { headers.add(name: name, value: value) }
    }

    /// The answer to any error other than ``HTTPError``: a generic 500 that tells the client
    /// nothing of the cause (the log line has it, with the request ID the response carries).
    public static let internalServerError = Response.error(500, "internal server error")

    /// The small JSON error body every refusal uses: `{"error":"...","status":N}`.
    public static func error(_ status: Int, _ message: String) -> Response {
        var body = JSONLineWriter(capacity: message.utf8.count + 32)
        body.append("{\"error\":")
        body.appendString(message, maxBytes: 1024)
        body.append(",\"status\":")
        body.appendInteger(Int64(status))
        body.append("}")
        return .json(raw: body.take(), status: status)
    }
}
