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
///
/// A value type whose fields live in one shared, copy-on-write box. The server copies a head
/// several times per request (out of the parser's result, into the ``Request``, for the log):
/// with the fields stored inline, each copy would retain and release four strings and an array,
/// about 1,600 instructions per keep-alive request in all (measured); boxed, a copy is one
/// retain. Making the box is one allocation, which costs less than that.
public struct HTTPRequestHead: Sendable, Equatable {
    /// The fields. Mutated only through ``unique()``, so never while shared.
    final class Storage: @unchecked Sendable {
        var method: String
        var target: String
        var path: String
        var query: String?
        var version: HTTPVersion
        var headers: HTTPHeaders
        var framing: BodyFraming
        var keepAlive: Bool
        var expectsContinue: Bool

        init(
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

        func copy() -> Storage {
            Storage(method: method, target: target, path: path, query: query, version: version,
                    headers: headers, framing: framing, keepAlive: keepAlive, expectsContinue: expectsContinue)
        }
    }

    private var storage: Storage

    /// The box, copied first if another head shares it.
    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    /// The method token, case-sensitive as sent (RFC 9110 §9.1): `GET`, `POST`, ...
    public var method: String {
        get { storage.method }
        set { unique().method = newValue }
    }
    /// The request-target exactly as sent: origin-form, absolute-form, authority-form or `*`.
    public var target: String {
        get { storage.target }
        set { unique().target = newValue }
    }
    /// The path of the target, still percent-encoded, always starting with `/` for origin-
    /// and absolute-form targets.
    public var path: String {
        get { storage.path }
        set { unique().path = newValue }
    }
    /// The query of the target without the `?`, still percent-encoded; nil when absent.
    public var query: String? {
        get { storage.query }
        set { unique().query = newValue }
    }
    public var version: HTTPVersion {
        get { storage.version }
        set { unique().version = newValue }
    }
    /// Header fields in order, names lowercased.
    public var headers: HTTPHeaders {
        get { storage.headers }
        set { unique().headers = newValue }
    }
    public var framing: BodyFraming {
        get { storage.framing }
        set { unique().framing = newValue }
    }
    /// Whether the client lets the connection stay open after this exchange: the 1.1 default
    /// unless `Connection: close`; opt-in with `Connection: keep-alive` in 1.0.
    public var keepAlive: Bool {
        get { storage.keepAlive }
        set { unique().keepAlive = newValue }
    }
    /// Whether the client sent `Expect: 100-continue` and waits for a 100 before its body.
    public var expectsContinue: Bool {
        get { storage.expectsContinue }
        set { unique().expectsContinue = newValue }
    }

    public init(
        method: String, target: String, path: String, query: String?, version: HTTPVersion,
        headers: HTTPHeaders, framing: BodyFraming, keepAlive: Bool, expectsContinue: Bool
    ) {
        storage = Storage(method: method, target: target, path: path, query: query, version: version,
                          headers: headers, framing: framing, keepAlive: keepAlive, expectsContinue: expectsContinue)
    }

    public static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        if lhs.storage === rhs.storage { return true }
        let a = lhs.storage, b = rhs.storage
        return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query
            && a.version == b.version && a.headers == b.headers && a.framing == b.framing
            && a.keepAlive == b.keepAlive && a.expectsContinue == b.expectsContinue
    }
}
