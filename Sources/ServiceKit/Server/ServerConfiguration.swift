/// ServerConfiguration holds the listener address, limits and timeouts of an ``HTTPServer``.
///
/// The names follow Go's `net/http.Server`. Every value has a production default; a zero
/// timeout means "no timeout" only where the property says so.
public struct ServerConfiguration: Sendable, Equatable {
    /// The address to listen on: an IPv4 or IPv6 literal. Default `0.0.0.0` (all IPv4).
    public var host: String = "0.0.0.0"
    /// The TCP port. `0` binds an ephemeral port; ``HTTPServer/localAddress`` tells which.
    public var port: Int = 8080
    /// ReadHeaderTimeout bounds the time from the first byte of a request (or from accept, for
    /// the first request) until its header section is complete. It defeats slowloris clients.
    /// Default 10 seconds.
    public var readHeaderTimeout: Duration = .seconds(10)
    /// ReadTimeout bounds reading a whole request body once the header section is in. Zero means
    /// no timeout. Default 60 seconds.
    public var readTimeout: Duration = .seconds(60)
    /// IdleTimeout is how long a keep-alive connection may wait for its next request. Zero means
    /// no timeout. Default 120 seconds.
    public var idleTimeout: Duration = .seconds(120)
    /// WriteTimeout bounds writing one response to a client that does not read. Zero means no
    /// timeout. Default 60 seconds.
    public var writeTimeout: Duration = .seconds(60)
    /// MaxHeaderBytes caps the request line plus header section. Default 16 KiB.
    public var maxHeaderBytes: Int = 16 * 1024
    /// MaxBodyBytes caps a request body, counted after chunked decoding. Default 1 MiB.
    public var maxBodyBytes: Int = 1024 * 1024
    /// MaxConnections caps open client connections. Past it, new connections get a 503 and are
    /// closed. Default 10,000.
    public var maxConnections: Int = 10_000
    /// The number of event loops (threads). `0` means one per CPU core.
    public var eventLoops: Int = 0
    /// ShutdownDelay is how long, after a graceful shutdown begins, the server keeps accepting
    /// and serving as usual while readiness already answers 503, so load balancers stop routing
    /// to it before its listener closes. Default zero (none).
    public var shutdownDelay: Duration = .zero
    /// DrainTimeout bounds the drain, counted from the moment the listener closes: connections
    /// still open then are closed and their handlers cancelled. Default 25 seconds. The process
    /// is gone by `shutdownDelay + drainTimeout` plus one second.
    public var drainTimeout: Duration = .seconds(25)
    /// DrainLinger is how long, during a drain, a keep-alive connection that was idle when the
    /// listener closed is kept open for one more request (answered with `Connection: close`),
    /// so a client that was just sending it is not cut off. Zero closes idle connections at
    /// once, as Go's `Shutdown` does. Default 1 second.
    public var drainLinger: Duration = .seconds(1)
    /// Whether each request is logged (one JSON line at info level). Default true.
    public var accessLog: Bool = true

    public init() {}
}
