/// HTTPError is a request refused with a status and a short reason: by the parser and the
/// server's limits (400, 408, 413, 414, 417, 431, 501, 505), or by a handler or middleware,
/// which may throw any 4xx or 5xx status (422 for a body that decodes but does not validate,
/// 429 with `Retry-After`, 401 with `WWW-Authenticate`).
///
/// The reason goes into the JSON error body and the log, so it never echoes client bytes.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The response status.
    public var status: Int
    /// A short English reason, safe to show to the client.
    public var reason: String
    /// Header fields the refusal adds to its response: `Allow` on a 405, `Retry-After` on a
    /// 429 or 503.
    public var headers: HTTPHeaders

    public init(status: Int, reason: String, headers: HTTPHeaders = [:]) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    public var description: String { "\(status) \(reason)" }

    public static func badRequest(_ reason: String) -> HTTPError { HTTPError(status: 400, reason: reason) }
    public static let payloadTooLarge = HTTPError(status: 413, reason: "request body too large")
    public static let uriTooLong = HTTPError(status: 414, reason: "request line too long")
    public static let headerFieldsTooLarge = HTTPError(status: 431, reason: "request header section too large")
    public static let expectationFailed = HTTPError(status: 417, reason: "unsupported expectation")
    public static let unsupportedTransferCoding = HTTPError(status: 501, reason: "unsupported transfer-coding")
    public static let versionNotSupported = HTTPError(status: 505, reason: "HTTP version not supported")
}
