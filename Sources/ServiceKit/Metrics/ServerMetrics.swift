import CoreMetrics
import Synchronization

/// ServerMetrics is an ``HTTPServer``'s metrics, reported through swift-metrics, so whatever
/// backend the process bootstraps (Prometheus in the `service` executable) receives them
/// beside the metrics of every other library.
///
/// Recording costs the request path almost nothing: each event loop counts its requests,
/// durations and bytes in plain per-loop fields, and hands them to the metrics objects in
/// batches: when 256 durations are pending, at most a second after the last batch, and before
/// every scrape (``HTTPServer/collectMetrics()``). The gauges (connections by state, requests
/// in flight, draining) are read when a scrape collects.
///
/// Every label value comes from a bounded set: the method is one of ``methods`` or `_OTHER`,
/// the route is a registered template or `unmatched`, the status is its class. A flood of
/// requests for random paths adds no series.
public final class ServerMetrics: Sendable {
    /// The metric names, for a backend that wants to describe or configure them.
    public enum Name {
        /// Counter, labels `method`, `route`, `status_class`: requests answered.
        public static let requests = "http_server_requests_total"
        /// Timer (a histogram in Prometheus), label `route`: from the end of a request's header
        /// section to its response written.
        public static let requestDuration = "http_server_request_duration_seconds"
        /// Gauge: requests whose handler is running or whose response is being written.
        public static let requestsInFlight = "http_server_requests_in_flight"
        /// Gauge, label `state` (`active`, `idle`, `parked`): open client connections.
        public static let connections = "http_server_connections"
        /// Counter: client connections accepted.
        public static let connectionsAccepted = "http_server_connections_accepted_total"
        /// Counter: client connections refused with a 503 at the connection cap.
        public static let connectionsRefused = "http_server_connections_refused_total"
        /// Gauge: 1 from the moment a graceful shutdown begins, else 0.
        public static let draining = "http_server_draining"
        /// Counter: bytes read from client connections.
        public static let receivedBytes = "http_server_received_bytes_total"
        /// Counter: bytes of responses written to client connections.
        public static let sentBytes = "http_server_sent_bytes_total"

        public static let all = [
            requests, requestDuration, requestsInFlight, connections, connectionsAccepted, connectionsRefused,
            draining, receivedBytes, sentBytes,
        ]
    }

    /// The methods that get a `method` label of their own; any other is `_OTHER`, so a client
    /// cannot create series by inventing methods.
    public static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
    public static let otherMethod = "_OTHER"
    /// The `route` label of requests that matched no route (404s, and requests refused before
    /// their path could be read).
    public static let unmatchedRoute = "unmatched"
    static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]
    static let connectionStates = ["active", "idle", "parked"]
    static let methodCount = methods.count + 1

    /// `route` label values by route index: the router's templates, then `unmatched`.
    let routes: [String]
    let factory: any MetricsFactory

    /// The metrics objects other than the request counters.
    struct Handles: Sendable {
        let durations: [CoreMetrics.Timer]
        let receivedBytes: CoreMetrics.Counter
        let sentBytes: CoreMetrics.Counter
        let accepted: CoreMetrics.Counter
        let refused: CoreMetrics.Counter
        let connections: [Gauge]
        let inFlight: Gauge
        let draining: Gauge
    }

    /// Made at the first batch or scrape, not at startup: a process that serves nothing and is
    /// never scraped pages in none of the metrics backend's code (about 0.3 MiB of idle RSS).
    private let madeHandles = Mutex<Handles?>(nil)
    /// Request counters by ``LoopMetrics`` slot, made when a slot is first flushed: routes x
    /// methods x status classes is too many series to create up front.
    private let requestCounters = Mutex<[Int: CoreMetrics.Counter]>([:])
    /// The accept loop's totals already reported (they are atomics the loop keeps anyway).
    private let reportedConnections = Mutex<(accepted: Int, refused: Int)>((0, 0))

    /// - Parameters:
    ///   - factory: where the metrics go; the bootstrapped `MetricsSystem.factory` by default.
    ///   - routes: the router's templates (``Router/templates``).
    public init(factory: any MetricsFactory = MetricsSystem.factory, routes: [String]) {
        self.factory = factory
        self.routes = routes + [Self.unmatchedRoute]
    }

    /// The metrics objects, made on first use. Every series but the request counters exists
    /// from then on (the gauges at zero), so dashboards and rate() see them before traffic.
    var handles: Handles {
        madeHandles.withLock { made in
            if let made { return made }
            let handles = Handles(
                durations: routes.map {
                    CoreMetrics.Timer(label: Name.requestDuration, dimensions: [("route", $0)], factory: factory)
                },
                receivedBytes: CoreMetrics.Counter(label: Name.receivedBytes, factory: factory),
                sentBytes: CoreMetrics.Counter(label: Name.sentBytes, factory: factory),
                accepted: CoreMetrics.Counter(label: Name.connectionsAccepted, factory: factory),
                refused: CoreMetrics.Counter(label: Name.connectionsRefused, factory: factory),
                connections: Self.connectionStates.map {
                    Gauge(label: Name.connections, dimensions: [("state", $0)], factory: factory)
                },
                inFlight: Gauge(label: Name.requestsInFlight, factory: factory),
                draining: Gauge(label: Name.draining, factory: factory))
            for gauge in handles.connections { gauge.record(0) }
            handles.inFlight.record(0)
            handles.draining.record(0)
            made = handles
            return handles
        }
    }

    /// The slot of a request in ``LoopMetrics/requests``.
    @inline(__always)
    static func slot(route: Int, method: Int, status: Int) -> Int {
        let statusClass = status < 100 ? 0 : status >= 600 ? 4 : status / 100 - 1
        return (route &* methodCount &+ method) &* 5 &+ statusClass
    }

    /// The label index of a method: its place in ``methods``, or the last for any other.
    @inline(__always)
    static func methodIndex(_ method: String) -> Int {
        switch method {
        case "GET": 0
        case "HEAD": 1
        case "POST": 2
        case "PUT": 3
        case "DELETE": 4
        case "PATCH": 5
        case "OPTIONS": 6
        case "CONNECT": 7
        case "TRACE": 8
        default: 9
        }
    }

    /// The counter of one slot's requests, made on first use.
    func requestCounter(slot: Int) -> CoreMetrics.Counter {
        requestCounters.withLock { counters in
            if let counter = counters[slot] { return counter }
            let statusClass = slot % 5
            let method = (slot / 5) % Self.methodCount
            let route = slot / 5 / Self.methodCount
            let counter = CoreMetrics.Counter(
                label: Name.requests,
                dimensions: [
                    ("method", method < Self.methods.count ? Self.methods[method] : Self.otherMethod),
                    ("route", route < routes.count ? routes[route] : Self.unmatchedRoute),
                    ("status_class", Self.statusClasses[statusClass]),
                ],
                factory: factory)
            counters[slot] = counter
            return counter
        }
    }

    /// Reports the accept loop's running totals, as far as not reported yet.
    func report(acceptedTotal: Int, refusedTotal: Int) {
        let handles = handles
        reportedConnections.withLock { reported in
            if acceptedTotal > reported.accepted {
                handles.accepted.increment(by: Int64(acceptedTotal - reported.accepted))
                reported.accepted = acceptedTotal
            }
            if refusedTotal > reported.refused {
                handles.refused.increment(by: Int64(refusedTotal - reported.refused))
                reported.refused = refusedTotal
            }
        }
    }
}

/// One event loop's not-yet-reported counts (loop thread only).
struct LoopMetrics {
    /// Requests by ``ServerMetrics/slot(route:method:status:)``; empty when metrics are off.
    var requests: [Int]
    /// Request durations in nanoseconds with their route index, in the order answered.
    var durations: [(route: Int, nanoseconds: Int64)] = []
    var receivedBytes = 0
    var sentBytes = 0
    var lastFlush: UInt64 = 0

    /// How many durations make a batch worth handing over at once.
    static let batch = 256

    /// - Parameter routes: the number of route labels (templates plus `unmatched`), or 0 when
    ///   metrics are off.
    init(routes: Int) {
        requests = Array(repeating: 0, count: routes * ServerMetrics.methodCount * 5)
        if routes > 0 { durations.reserveCapacity(Self.batch * 2) }
    }

    @inline(__always)
    mutating func record(route: Int, method: String, status: Int, nanoseconds: UInt64) {
        let slot = ServerMetrics.slot(route: route, method: ServerMetrics.methodIndex(method), status: status)
        guard slot < requests.count else { return }
        requests[slot] &+= 1
        durations.append((route, Int64(truncatingIfNeeded: nanoseconds)))
    }

    /// Whether a batch is due: enough durations, or anything pending for a second.
    mutating func isFlushDue() -> Bool {
        if durations.count >= Self.batch { return true }
        guard !durations.isEmpty || receivedBytes != 0 || sentBytes != 0 else { return false }
        return EventLoop.now() &- lastFlush >= 1_000_000_000
    }

    /// Hands every pending count to `metrics` and starts over.
    mutating func flush(into metrics: ServerMetrics) {
        lastFlush = EventLoop.now()
        let handles = metrics.handles
        if !durations.isEmpty {
            for index in requests.indices where requests[index] != 0 {
                metrics.requestCounter(slot: index).increment(by: Int64(requests[index]))
                requests[index] = 0
            }
            for (route, nanoseconds) in durations where route < handles.durations.count {
                handles.durations[route].recordNanoseconds(nanoseconds)
            }
            durations.removeAll(keepingCapacity: true)
        }
        if receivedBytes != 0 {
            handles.receivedBytes.increment(by: Int64(receivedBytes))
            receivedBytes = 0
        }
        if sentBytes != 0 {
            handles.sentBytes.increment(by: Int64(sentBytes))
            sentBytes = 0
        }
    }
}
