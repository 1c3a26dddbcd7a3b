import Logging

extension Router {
    /// What a request runs: the route's handler (its middleware included), or the refusal
    /// that stands in for one.
    public struct Resolved: Sendable {
        /// Answers the request; throws what is answered as an error.
        public var handler: Handler
        /// The route's `:name` values, percent-decoded.
        public var parameters: [String: String]
        /// The route the path matched, for metrics and logs; nil for a 404.
        public var route: RouteInfo?
        /// For a handler registered with ``RequestBodyMode/streamed(maxBytes:)``, its limit:
        /// the server then hands it the body as it arrives. Nil for a buffered body.
        public var streamedBodyLimit: Int?
    }

    /// How the server, and ``respond(to:)``, dispatch a request: the matched route's handler;
    /// for a path that matches with another method, a 405 with `Allow` (through the path's
    /// middleware); for `OPTIONS *`, a 200 with no body (a question about the server, RFC 9110
    /// §9.3.7, answered as Go's server answers it); for anything else a 404.
    public func resolve(method: String, path: String) -> Resolved {
        switch lookup(method: method, path: path) {
        case .found(let boxed, let parameters, let route):
            return Resolved(
                handler: boxed.handler, parameters: parameters, route: route, streamedBodyLimit: boxed.streamedBodyLimit)
        case .methodNotAllowed(let allow, let route, let middleware):
            let refusal = HTTPError(
                status: 405, reason: "method not allowed", headers: ["Allow": allow.joined(separator: ", ")])
            let handler: Handler = { _ in throw refusal }
            return Resolved(
                handler: middleware.isEmpty ? handler : Self.compose(middleware, handler), parameters: [:],
                route: route)
        case .notFound where method == "OPTIONS" && path == "*":
            return Resolved(handler: Self.serverOptions, parameters: [:], route: nil)
        case .notFound:
            return Resolved(handler: Self.notFound, parameters: [:], route: nil)
        }
    }

    private static let serverOptions: Handler = { _ in Response(status: 200) }
    private static let notFoundError = HTTPError(status: 404, reason: "not found")
    private static let notFound: Handler = { _ in throw notFoundError }

    /// Answers `request` in process, exactly as the server's dispatch does: route match,
    /// middleware, `404`, `405` with `Allow`, a thrown ``HTTPError`` as its response, any other
    /// error as the generic `500` (logged as the server logs it). The response carries
    /// `X-Request-ID` when the request has an ID, and a `HEAD` response no body, as on the wire;
    /// a route that streams its body reads the request's `body` through ``Request/bodyStream``;
    /// the server adds `Date`, `Content-Length` and `Connection` when it writes one.
    ///
    /// For tests: a route test needs no socket.
    public func respond(to request: Request) async -> Response {
        var request = request
        let resolved = resolve(method: request.method, path: request.path)
        request.pathParameters = resolved.parameters
        request.route = resolved.route?.template
        if let limit = resolved.streamedBodyLimit, request.bodyStream == nil {
            // A streamed route reads `body` as the server would hand it over.
            request.bodyStream = RequestBody(bytes: request.body, limit: limit)
            request.body = []
        }
        var response: Response
        do {
            response = try await resolved.handler(request)
        } catch {
            response = Self.answer(
                to: error, method: request.method, path: request.path, requestID: request.id, logger: request.baseLogger)
        }
        if !request.id.isEmpty { response.headers.add(name: "X-Request-ID", value: request.id) }
        if request.method == "HEAD" {
            response.body = []
            response.stream = nil
        }
        return response
    }

    /// The response to what a handler (or a streamed body before it sent anything) threw: an
    /// ``HTTPError``'s own, else the generic 500, logged by ``logFailure(_:method:path:requestID:to:)``.
    static func answer(to error: any Error, method: String, path: String, requestID: String, logger: Logger) -> Response {
        if let error = error as? HTTPError { return Response(error: error) }
        logFailure(error, method: method, path: path, requestID: requestID, to: logger)
        return .internalServerError
    }

    /// The error line for a handler that threw something other than an ``HTTPError``. Takes the
    /// request's fields rather than the request, so the server can hand its request to the
    /// handler without keeping a copy for this rare line.
    static func logFailure(_ error: any Error, method: String, path: String, requestID: String, to logger: Logger) {
        logger.error("handler failed", metadata: [
            "error": "\(String(describing: error))", "method": "\(method)", "path": "\(path)",
            "request_id": "\(requestID)",
        ])
    }
}
