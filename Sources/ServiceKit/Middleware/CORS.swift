/// CORS lets browsers call the routes it wraps from pages of other origins (the Fetch
/// standard's CORS protocol): `router.use(CORS(allowedOrigins: .only(["https://app.example"])))`.
///
/// - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
///   here, `204` with no body, without calling `next`. When the origin, the requested method
///   and every requested header are allowed, it carries `Access-Control-Allow-Origin`,
///   `-Allow-Methods`, `-Allow-Headers` (when any are configured), `-Allow-Credentials` and
///   `-Max-Age` (when configured); otherwise none of them, and the browser stops there.
///   Applied with ``Router/use(_:)-(any Middleware)`` or a group, it also answers preflights
///   for paths that have no `OPTIONS` route (they reach it through the path's 405).
/// - Any other request runs as usual. From an allowed origin, its response, or its
///   ``HTTPError`` refusal, gets `Access-Control-Allow-Origin` (the origin itself, or `*` when
///   any origin is allowed without credentials), `Access-Control-Allow-Credentials` and
///   `Access-Control-Expose-Headers` as configured. From another origin, or with no `Origin`,
///   it gets none: the browser, not the server, withholds the response from the page.
/// - `Vary: Origin` is added whenever the answer depends on the origin (always, except for
///   any origin without credentials), so a shared cache does not serve one origin's answer
///   to another; a preflight varies on its request headers as well.
///
/// A 500 for an error other than ``HTTPError`` goes out without CORS headers (the page sees
/// a CORS failure; the log line has the cause). Origins are compared ASCII case-insensitively,
/// methods exactly (they are case-sensitive), header names case-insensitively. An empty
/// origin list allows no origin.
public struct CORS: Middleware {
    /// The origins (`scheme://host[:port]`, as browsers send them) whose pages may read the
    /// responses.
    public enum Origins: Sendable, Equatable {
        /// Every origin. With credentials the origin is echoed, as `*` does not allow them:
        /// any site may then make credentialed calls as the user, so keep that for APIs with
        /// no ambient authority (cookies) to abuse.
        case any
        /// These origins only.
        case only([String])
    }

    public let allowedOrigins: Origins
    /// The methods a preflight may ask for; sent in `Access-Control-Allow-Methods`.
    public let allowedMethods: [String]
    /// The request header fields a preflight may ask for; sent in
    /// `Access-Control-Allow-Headers`. CORS-safelisted fields (`Accept`, `Accept-Language`,
    /// `Content-Language`, and `Content-Type` with a form or text value) need no listing.
    public let allowedHeaders: [String]
    /// The response header fields, beyond the safelisted ones, the page may read
    /// (`Access-Control-Expose-Headers`); none when empty.
    public let exposedHeaders: [String]
    /// Whether the page may send and read cookies and HTTP authentication
    /// (`Access-Control-Allow-Credentials: true`).
    public let allowCredentials: Bool
    /// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`, in whole
    /// seconds, rounded down); nil sends none, and browsers then keep it for 5 seconds.
    public let maxAge: Duration?

    private let originSet: Set<String>
    private let headerSet: Set<String>
    private let preflightFields: HTTPHeaders
    private let responseFields: HTTPHeaders

    public init(
        allowedOrigins: Origins, allowedMethods: [String] = ["GET", "HEAD", "POST"],
        allowedHeaders: [String] = ["Content-Type"], exposedHeaders: [String] = [], allowCredentials: Bool = false,
        maxAge: Duration? = nil
    ) {
        self.allowedOrigins = allowedOrigins
        self.allowedMethods = allowedMethods
        self.allowedHeaders = allowedHeaders
        self.exposedHeaders = exposedHeaders
        self.allowCredentials = allowCredentials
        self.maxAge = maxAge
        if case .only(let origins) = allowedOrigins {
            originSet = Set(origins.map { $0.lowercased() })
        } else {
            originSet = []
        }
        headerSet = Set(allowedHeaders.map { $0.lowercased() })

        var response = HTTPHeaders()
        if allowCredentials { response.add(name: "Access-Control-Allow-Credentials", value: "true") }
        if !exposedHeaders.isEmpty {
            response.add(name: "Access-Control-Expose-Headers", value: exposedHeaders.joined(separator: ", "))
        }
        responseFields = response

        var preflight = HTTPHeaders()
        if allowCredentials { preflight.add(name: "Access-Control-Allow-Credentials", value: "true") }
        preflight.add(name: "Access-Control-Allow-Methods", value: allowedMethods.joined(separator: ", "))
        if !allowedHeaders.isEmpty {
            preflight.add(name: "Access-Control-Allow-Headers", value: allowedHeaders.joined(separator: ", "))
        }
        if let maxAge {
            preflight.add(name: "Access-Control-Max-Age", value: String(max(0, maxAge.components.seconds)))
        }
        preflightFields = preflight
    }

    /// Whether the answer depends on the request's `Origin`.
    private var variesByOrigin: Bool { allowedOrigins != .any || allowCredentials }

    /// The `Access-Control-Allow-Origin` value for `origin`; nil when it is not allowed.
    func allowOrigin(for origin: String) -> String? {
        switch allowedOrigins {
        case .any: return allowCredentials ? origin : "*"
        case .only: return originSet.contains(origin.lowercased()) ? origin : nil
        }
    }

    public func handle(_ request: Request, next: Handler) async throws -> Response {
        let origin = request.headers["origin"]
        if request.method == "OPTIONS", let origin,
            let method = request.headers["access-control-request-method"]
        {
            return preflight(origin: origin, method: method, headers: request.headers["access-control-request-headers"])
        }
        let allowed = origin.flatMap(allowOrigin(for:))
        do {
            var response = try await next(request)
            decorate(&response.headers, allowOrigin: allowed)
            return response
        } catch var error as HTTPError {
            decorate(&error.headers, allowOrigin: allowed)
            throw error
        }
    }

    private func decorate(_ headers: inout HTTPHeaders, allowOrigin: String?) {
        if variesByOrigin { headers.add(name: "Vary", value: "Origin") }
        guard let allowOrigin else { return }
        headers.add(name: "Access-Control-Allow-Origin", value: allowOrigin)
        for (name, value) in responseFields { headers.add(name: name, value: value) }
    }

    private func preflight(origin: String, method: String, headers requested: String?) -> Response {
        var response = Response(status: 204)
        response.headers.add(name: "Vary", value: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        let headersAllowed = (requested ?? "").split(separator: ",").allSatisfy { name in
            let trimmed = name.trimmingASCIISpaces()
            return trimmed.isEmpty || headerSet.contains(trimmed.lowercased())
        }
        guard let allowOrigin = allowOrigin(for: origin), allowedMethods.contains(method), headersAllowed else {
            return response
        }
        response.headers.add(name: "Access-Control-Allow-Origin", value: allowOrigin)
        for (name, value) in preflightFields { response.headers.add(name: name, value: value) }
        return response
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    fileprivate func trimmingASCIISpaces() -> Substring {
        let isSpace = { (c: Character) in c == " " || c == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
