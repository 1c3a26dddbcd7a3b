extension Router {
    /// Registers a probe route (`/health`, `/ready`, `/metrics`): the runtime's own endpoints,
    /// which skip the application's middleware, so authentication or rate limits meant for the
    /// application never fail a liveness check or a scrape; nor are they traced: a span per
    /// probe every few seconds would drown the application's.
    mutating func addProbe(_ method: String, _ path: String, accessLog: Bool = true, _ handler: @escaping Handler) {
        let (outerPrefix, outerMiddleware) = (prefix, middleware)
        defer { (prefix, middleware) = (outerPrefix, outerMiddleware) }
        (prefix, middleware) = ("", [])
        on(method, path, accessLog: accessLog, traced: false, handler)
    }
}
