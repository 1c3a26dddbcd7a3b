/// HTTPVersion is the protocol version of a request line. Only 1.0 and 1.1 are served.
public struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// BodyFraming says how the body of a request is delimited (RFC 9112 §6.3).
public enum BodyFraming: Sendable, Equatable {
    /// No body: neither Content-Length nor Transfer-Encoding.
    case none
    /// Exactly this many bytes follow the header section.
    case contentLength(Int)
    /// The body is in chunked transfer coding.
    case chunked
}

/// HTTPRequestHead is a parsed request line and header section, with its framing decided.
public struct HTTPRequestHead: Sendable, Equatable {
    /// The method token, case-sensitive as sent (RFC 9110 §9.1): `GET`, `POST`, ...
    public var method: String
    /// The request-target exactly as sent: origin-form, absolute-form, authority-form or `*`.
    public var target: String
    /// The path of the target, still percent-encoded, always starting with `/` for origin-
    /// and absolute-form targets.
    public var path: String
    /// The query of the target without the `?`, still percent-encoded; nil when absent.
    public var query: String?
    public var version: HTTPVersion
    /// Header fields in order, names lowercased.
    public var headers: HTTPHeaders
    public var framing: BodyFraming
    /// Whether the client lets the connection stay open after this exchange: the 1.1 default
    /// unless `Connection: close`; opt-in with `Connection: keep-alive` in 1.0.
    public var keepAlive: Bool
    /// Whether the client sent `Expect: 100-continue` and waits for a 100 before its body.
    public var expectsContinue: Bool

    public init(
        method: String, target: String, path: String, query: String?, version: HTTPVersion,
        headers: HTTPHeaders, framing: BodyFraming, keepAlive: Bool, expectsContinue: Bool
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.framing = framing
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
    }
}
