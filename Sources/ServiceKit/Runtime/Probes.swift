/// The probe endpoints the runtime serves beside the application's routes.
enum Probes {
    static let healthBody: [UInt8] = Array(#"{"status":"ok"}"#.utf8)
    static let readyBody: [UInt8] = Array(#"{"status":"ready"}"#.utf8)
    static let drainingBody: [UInt8] = Array(#"{"status":"draining"}"#.utf8)

    /// Adds `GET /health` and `GET /ready` to `router`.
    static func add(to router: inout Router, readiness: Readiness) {
        // Liveness: answers as long as the process can serve at all, draining included.
        router.addProbe("GET", "/health") { _ in .json(raw: healthBody) }
        // Readiness: 503 from the moment a shutdown begins, so load balancers stop routing here.
        router.addProbe("GET", "/ready") { _ in
            readiness.isReady ? .json(raw: readyBody) : .json(raw: drainingBody, status: 503)
        }
    }
}
