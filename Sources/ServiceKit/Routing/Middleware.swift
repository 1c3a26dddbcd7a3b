/// Middleware wraps the handlers of the routes it is applied to: it sees each request after
/// routing (``Request/route`` is the matched template), and either answers it itself or calls
/// `next` (the rest of the chain, ending in the route's handler) and may change what comes back.
///
/// What a middleware throws is answered exactly as a handler's error: an ``HTTPError`` becomes
/// its status, JSON body and header fields; anything else a logged 500.
///
/// Apply one to a whole router or group with ``Router/use(_:)-(any Middleware)``, or to one
/// route with the `middleware:` argument of ``Router/on(_:_:accessLog:middleware:_:)``. The chain
/// is composed when the route is registered, so a route without middleware runs its handler
/// directly, at no cost per request.
public protocol Middleware: Sendable {
    /// Answers `request`, calling `next` to pass it on.
    func handle(_ request: Request, next: Handler) async throws -> Response
}

/// A middleware written as a closure: `router.use { request, next in ... }`.
public struct MiddlewareFunction: Middleware {
    let body: @Sendable (Request, Handler) async throws -> Response

    public init(_ body: @escaping @Sendable (Request, Handler) async throws -> Response) {
        self.body = body
    }

    public func handle(_ request: Request, next: Handler) async throws -> Response {
        try await body(request, next)
    }
}

extension Router {
    /// `handler` wrapped in `middleware`, the first outermost.
    static func compose(_ middleware: [any Middleware], _ handler: @escaping Handler) -> Handler {
        var composed = handler
        for layer in middleware.reversed() {
            let next = composed
            composed = { request in try await layer.handle(request, next: next) }
        }
        return composed
    }
}
