/// Handler answers one request. It may suspend (await a database, a timer) without holding up
/// other connections. A thrown ``HTTPError`` becomes that status with a JSON body; any other
/// thrown error becomes a 500 and an error log line.
public typealias Handler = @Sendable (Request) async throws -> Response

/// What the server knows of a matched route.
/// How a route's handler gets the request body.
public enum RequestBodyMode: Sendable, Equatable {
    /// Whole, in ``Request/body``, before the handler runs; at most the server's
    /// `maxBodyBytes` (`--max-body-bytes`).
    case buffered
    /// As it arrives, through ``Request/bodyStream``, at most `maxBytes` in all (an upload
    /// route may allow a gigabyte). A client that sent `Expect: 100-continue` is told to go
    /// on when the handler first reads.
    case streamed(maxBytes: Int)
}

public struct RouteInfo: Sendable, Equatable {
    /// `/users/:id`: the route as registered, for logs and metrics labels.
    public let template: String
    /// Its position in ``Router/templates``.
    public let index: Int
    /// Whether its requests get an access-log line.
    public internal(set) var accessLog: Bool
    /// Whether its requests get a server span when a tracer is bootstrapped (``ServerTracing``).
    public internal(set) var traced: Bool = true
}

/// Router maps a method and a path to a handler.
///
/// Paths are literal segments or `:name` parameters (`/users/:id`). A request path matches a
/// route exactly: literal segments byte for byte (still percent-encoded), each parameter one
/// non-empty segment. So `/health/`, `//health`, `/health//` and `/h%65alth` are not `/health`,
/// and `/users/` is not `/users/:id`: they are 404s, never another route's answer, so a front
/// proxy's rule for an exact path (nginx's `location = /metrics`) cannot be bypassed by a
/// spelling it does not match. A path that matches no route is a 404; a path that matches with
/// another method is a 405 with `Allow`. `HEAD` is served by the `GET` handler (the server
/// drops the body) unless a `HEAD` route exists.
///
/// Middleware (``use(_:)-(any Middleware)``, ``group(_:middleware:_:)``, a route's `middleware:`)
/// wraps the routes registered after it, within its group. A 405 runs through the middleware
/// of its path's first registration, so CORS can answer a preflight `OPTIONS` and auth can
/// refuse before the method is judged; a 404 runs none.
public struct Router: Sendable {
    /// A path's handlers. A class, and immutable: a request looks its route up in place, where
    /// a struct of four fields was copied out of the table (about 170 instructions a request,
    /// callgrind); registering makes a new one, so copies of a ``Router`` stay independent.
    final class Route: Sendable {
        let segments: [Segment]
        let info: RouteInfo
        /// Handlers by method, in registration order. A short list searched in place rather
        /// than a dictionary: a route has a handful of methods, and hashing the method cost
        /// about 200 instructions per request. Boxed in a struct: a function type stored
        /// directly in a collection is kept at the generic abstraction, and taking it out
        /// allocated a reabstraction thunk on every request.
        let handlers: [(method: String, boxed: BoxedHandler)]
        /// The middleware a 405 for this path runs through.
        let refusalMiddleware: [any Middleware]

        init(
            segments: [Segment], info: RouteInfo, handlers: [(method: String, boxed: BoxedHandler)],
            refusalMiddleware: [any Middleware]
        ) {
            self.segments = segments
            self.info = info
            self.handlers = handlers
            self.refusalMiddleware = refusalMiddleware
        }

        convenience init(segments: [Segment], index: Int, accessLog: Bool, middleware: [any Middleware]) {
            let info = RouteInfo(template: Router.template(segments), index: index, accessLog: accessLog, traced: true)
            self.init(segments: segments, info: info, handlers: [], refusalMiddleware: middleware)
        }

        func handler(for method: String) -> BoxedHandler? {
            for entry in handlers where entry.method == method { return entry.boxed }
            return nil
        }

        /// This route with `boxed` registered for `method` (replacing an earlier handler for
        /// it), and `accessLog` and `traced` for all its methods.
        func setting(_ method: String, _ boxed: BoxedHandler, accessLog: Bool, traced: Bool) -> Route {
            var handlers = handlers
            if let index = handlers.firstIndex(where: { $0.method == method }) {
                handlers[index].boxed = boxed
            } else {
                handlers.append((method, boxed))
            }
            var info = info
            info.accessLog = accessLog
            info.traced = traced
            return Route(segments: segments, info: info, handlers: handlers, refusalMiddleware: refusalMiddleware)
        }
    }

    struct BoxedHandler: Sendable {
        let handler: Handler
        /// The most body bytes a streamed body may have (``RequestBodyMode/streamed(maxBytes:)``),
        /// or nil for a buffered body.
        let streamedBodyLimit: Int?
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    /// Routes without parameters, by exact path: one dictionary lookup for the common case.
    var exact: [String: Route] = [:]
    var parameterized: [Route] = []
    /// Every route's template, in registration order (a route's ``RouteInfo/index``): the
    /// bounded set of `route` label values metrics use.
    public private(set) var templates: [String] = []
    /// The middleware wrapped around routes registered from now on, outermost first.
    var middleware: [any Middleware] = []
    /// What ``group(_:middleware:_:)`` puts before the paths registered inside it.
    var prefix = ""

    public init() {}

    /// Wraps every route registered after this call (in this group, if inside one) in
    /// `middleware`, inside the middleware already in force.
    public mutating func use(_ middleware: any Middleware) {
        self.middleware.append(middleware)
    }

    /// ``use(_:)-(any Middleware)`` for a closure: `router.use { request, next in ... }`.
    public mutating func use(_ body: @escaping @Sendable (Request, Handler) async throws -> Response) {
        use(MiddlewareFunction(body))
    }

    /// Registers the routes `build` adds under `prefix` (`/api`: its `/items` is served at
    /// `/api/items`, its `/` at `/api`), wrapped in `middleware` and in what `build` itself
    /// `use`s; neither reaches routes outside the group.
    public mutating func group(
        _ prefix: String, middleware: [any Middleware] = [], _ build: (inout Router) throws -> Void
    ) rethrows {
        precondition(prefix.utf8.first == UInt8(ascii: "/"), "a group prefix starts with /: \(prefix)")
        let (outerPrefix, outerMiddleware) = (self.prefix, self.middleware)
        defer { (self.prefix, self.middleware) = (outerPrefix, outerMiddleware) }
        self.prefix = outerPrefix + (prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix)
        self.middleware += middleware
        try build(&self)
    }

    /// Adds `handler` for `method` on `path`, which starts with `/`. Registering the same
    /// method and path twice replaces the earlier handler.
    ///
    /// - Parameter accessLog: whether requests to this path get an access-log line (the
    ///   server's `accessLog` setting still turns all of them off). For endpoints polled so
    ///   often that their lines would drown the rest, such as `/metrics`. The last
    ///   registration on a path decides, for all of its methods.
    /// - Parameter traced: whether its requests get a server span when a tracer is
    ///   bootstrapped (``ServerTracing``); the probes are registered without. Their trace IDs
    ///   still reach the logs. The last registration on a path decides, as for `accessLog`.
    /// - Parameter middleware: wrapped around this route's handler, inside the router's and
    ///   the group's.
    /// - Parameter body: how the handler gets the request body: whole in ``Request/body``
    ///   (the default, bounded by the server's `maxBodyBytes`), or as it arrives through
    ///   ``Request/bodyStream`` with a limit of its own.
    public mutating func on(
        _ method: String, _ path: String, accessLog: Bool = true, traced: Bool = true, middleware: [any Middleware] = [],
        body: RequestBodyMode = .buffered, _ handler: @escaping Handler
    ) {
        precondition(path.utf8.first == UInt8(ascii: "/"), "a route path starts with /: \(path)")
        let fullPath = prefix.isEmpty ? path : path == "/" ? prefix : prefix + path
        let segments = (Self.split(fullPath) ?? []).map { part -> Segment in
            part.hasPrefix(":") && part.count > 1 ? .parameter(String(part.dropFirst())) : .literal(String(part))
        }
        let chain = self.middleware + middleware
        let limit: Int?
        switch body {
        case .buffered: limit = nil
        case .streamed(let maxBytes): limit = max(maxBytes, 0)
        }
        let boxed = BoxedHandler(handler: chain.isEmpty ? handler : Self.compose(chain, handler), streamedBodyLimit: limit)
        if segments.allSatisfy({ if case .literal = $0 { true } else { false } }) {
            let key = Self.template(segments)
            let route = exact[key] ?? newRoute(segments, accessLog: accessLog)
            exact[key] = route.setting(method, boxed, accessLog: accessLog, traced: traced)
        } else if let index = parameterized.firstIndex(where: { $0.segments == segments }) {
            parameterized[index] = parameterized[index].setting(method, boxed, accessLog: accessLog, traced: traced)
        } else {
            parameterized.append(
                newRoute(segments, accessLog: accessLog).setting(method, boxed, accessLog: accessLog, traced: traced))
        }
    }

    private mutating func newRoute(_ segments: [Segment], accessLog: Bool) -> Route {
        let route = Route(segments: segments, index: templates.count, accessLog: accessLog, middleware: self.middleware)
        templates.append(route.info.template)
        return route
    }

    public mutating func get(
        _ path: String, accessLog: Bool = true, middleware: [any Middleware] = [], _ handler: @escaping Handler
    ) {
        on("GET", path, accessLog: accessLog, middleware: middleware, handler)
    }
    public mutating func post(
        _ path: String, accessLog: Bool = true, middleware: [any Middleware] = [], body: RequestBodyMode = .buffered,
        _ handler: @escaping Handler
    ) {
        on("POST", path, accessLog: accessLog, middleware: middleware, body: body, handler)
    }
    public mutating func put(
        _ path: String, accessLog: Bool = true, middleware: [any Middleware] = [], body: RequestBodyMode = .buffered,
        _ handler: @escaping Handler
    ) {
        on("PUT", path, accessLog: accessLog, middleware: middleware, body: body, handler)
    }
    public mutating func delete(
        _ path: String, accessLog: Bool = true, middleware: [any Middleware] = [], _ handler: @escaping Handler
    ) {
        on("DELETE", path, accessLog: accessLog, middleware: middleware, handler)
    }

    public mutating func patch(
        _ path: String, accessLog: Bool = true, middleware: [any Middleware] = [], body: RequestBodyMode = .buffered,
        _ handler: @escaping Handler
    ) {
        on("PATCH", path, accessLog: accessLog, middleware: middleware, body: body, handler)
    }

    /// The outcome of looking up a request.
    public enum Match: Sendable {
        case found(Handler, parameters: [String: String], route: RouteInfo)
        case notFound
        /// The path matches `route`, but not with this method.
        case methodNotAllowed(allow: [String], route: RouteInfo, middleware: [any Middleware])
    }

    /// Finds the handler for `method` and `path` (percent-encoded, as in the request), matched
    /// exactly (see ``Router``).
    public func match(method: String, path: String) -> Match {
        switch lookup(method: method, path: path) {
        case .found(let boxed, let parameters, let route): .found(boxed.handler, parameters: parameters, route: route)
        case .notFound: .notFound
        case .methodNotAllowed(let allow, let route, let middleware):
            .methodNotAllowed(allow: allow, route: route, middleware: middleware)
        }
    }

    /// ``Match``, with the registration's options beside the handler.
    enum Lookup {
        case found(BoxedHandler, parameters: [String: String], route: RouteInfo)
        case notFound
        case methodNotAllowed(allow: [String], route: RouteInfo, middleware: [any Middleware])
    }

    func lookup(method: String, path: String) -> Lookup {
        if let route = exact[path] {
            return select(route, method: method, parameters: [:])
        }
        guard let parts = Self.split(path) else { return .notFound }
        for route in parameterized where route.segments.count == parts.count {
            var parameters: [String: String] = [:]
            var matched = true
            for (segment, part) in zip(route.segments, parts) {
                switch segment {
                case .literal(let literal):
                    if literal != part { matched = false }
                case .parameter(let name):
                    guard !part.isEmpty, let value = PercentDecoding.decode(part) else { matched = false; break }
                    parameters[name] = value
                }
                if !matched { break }
            }
            if matched { return select(route, method: method, parameters: parameters) }
        }
        return .notFound
    }

    @inline(__always)
    private func select(_ route: Route, method: String, parameters: [String: String]) -> Lookup {
        if let boxed = route.handler(for: method) {
            return .found(boxed, parameters: parameters, route: route.info)
        }
        if method == "HEAD", let boxed = route.handler(for: "GET") {
            return .found(boxed, parameters: parameters, route: route.info)
        }
        var allow = Set(route.handlers.map(\.method))
        if allow.contains("GET") { allow.insert("HEAD") }
        return .methodNotAllowed(allow: allow.sorted(), route: route.info, middleware: route.refusalMiddleware)
    }

    /// `/users/:id`
    static func template(_ segments: [Segment]) -> String {
        "/" + segments.map {
            switch $0 {
            case .literal(let s): return s
            case .parameter(let name): return ":" + name
            }
        }.joined(separator: "/")
    }

    /// What lies between the slashes of a path, empty segments included: `/a//b/` is `a`, an
    /// empty segment, `b` and another, and `/` is one empty segment, so ``template(_:)`` gives
    /// the path back. Nil for a path without a leading `/` (`*`, an authority).
    static func split(_ path: String) -> [Substring]? {
        guard path.utf8.first == UInt8(ascii: "/") else { return nil }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
    }
}
