import Tracing
import CServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// LoopState is an ``HTTPServer``'s per-event-loop data: the loop's connections, its cached
/// `Date` value and its request-ID generator. Only code running on that loop touches it, so
/// none of it needs a lock.
final class LoopState: @unchecked Sendable {
    let loop: EventLoop
    @exclusivity(unchecked) var connections: [Int32: Connection] = [:]
    /// Set once the listener has closed: every response from then on says `Connection: close`.
    @exclusivity(unchecked) var draining = false
    /// During a drain, when connections that are idle (no request under way) are closed.
    @exclusivity(unchecked) var lingerDeadline: UInt64 = .max
    /// This loop's access-log lines, handed to the sink at the end of each loop iteration.
    @exclusivity(unchecked) var logBatch = LogBatch()
    /// Sleeps of streamed responses (``ResponseWriter/sleep(for:)``) that the drain ends early.
    @exclusivity(unchecked) var shutdownSleepers = Set<UInt64>()
    /// Connections parked on this loop now.
    @exclusivity(unchecked) var parked = 0
    /// Connections parked and closed on this loop since the heap was last trimmed, the most
    /// connections it held since then, and when that was.
    @exclusivity(unchecked) var parksSinceTrim = 0
    @exclusivity(unchecked) var closesSinceTrim = 0
    @exclusivity(unchecked) var peakSinceTrim = 0
    @exclusivity(unchecked) var lastTrim: UInt64 = 0
    @exclusivity(unchecked) private var dateSecond = -1
    @exclusivity(unchecked) private var dateBytes: [UInt8] = []
    @exclusivity(unchecked) private var random: SplitMix64
    /// The port the server listens on (a span's `server.port`); set before the loop serves.
    @exclusivity(unchecked) var serverPort = 0

    /// This loop's request counts, durations and bytes not yet handed to the server's metrics.
    @exclusivity(unchecked) var metrics: LoopMetrics

    /// - Parameter routeLabels: the number of metrics route labels, 0 when metrics are off.
    init(loop: EventLoop, routeLabels: Int = 0) {
        self.loop = loop
        metrics = LoopMetrics(routes: routeLabels)
        var system = SystemRandomNumberGenerator()
        random = SplitMix64(seed: system.next())
    }

    /// Gives the memory of finished tasks, buffers and TLS sessions back to the system (loop
    /// thread only), when enough of it was freed: after 64 parks, or after 64 closes that left
    /// the loop holding at least 64 connections fewer than its peak since the last trim. At most
    /// once a second, or every 100 ms after 1,024 of them (12 to 50 MiB freed). A trim that is
    /// due but too soon asks the loop to wake up for it (``EventLoop/wakeUp(by:)``), so the
    /// memory of the last clients to leave is returned too. Returns the microseconds the trim
    /// took, or nil when none was made.
    ///
    /// glibc keeps freed memory in its arenas, and live connections' records sit between the
    /// freed blocks, so without this RSS stays at its peak: 10,000 parked connections measured
    /// 62 MiB before a trim and 24 MiB after (idle server: 16 MiB), and 2,000 TLS connections
    /// that came and went leave 95 MiB behind. A trim took 1.5 to 6 ms with 10,000
    /// connections. Steady keep-alive load parks and closes nothing, and connection cycling
    /// (conncycle's 8 clients) never holds 64 connections fewer than its peak, so neither pays
    /// for a trim.
    func trimHeapIfDue() -> UInt64? {
        let closes = peakSinceTrim - connections.count >= Self.trimAfter ? closesSinceTrim : 0
        let freed = parksSinceTrim + closes
        guard freed >= Self.trimAfter else { return nil }
        let now = EventLoop.now()
        let interval: UInt64 = freed >= 1024 ? 100_000_000 : 1_000_000_000
        guard now &- lastTrim >= interval else {
            loop.wakeUp(by: lastTrim &+ interval)
            return nil
        }
        parksSinceTrim = 0
        closesSinceTrim = 0
        peakSinceTrim = connections.count
        _ = csystem_release_free_heap()
        lastTrim = EventLoop.now()
        return (lastTrim &- now) / 1000
    }

    /// Parks or closes (below the peak) that make a trim due.
    static let trimAfter = 64

    /// The IMF-fixdate for the current second (RFC 9110 §5.6.7), formatted once per second.
    var date: [UInt8] {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &spec)
        if spec.tv_sec != dateSecond {
            dateSecond = spec.tv_sec
            dateBytes = HTTPDate.format(seconds: spec.tv_sec)
        }
        return dateBytes
    }

    /// A new request ID: a 64-bit value from a per-loop generator seeded from the system's
    /// random source (a getrandom call per request would be a syscall per request), as 13
    /// characters of lowercase Crockford base32 (`0-9a-z` without `i l o u`).
    ///
    /// 13 characters hold all 64 bits and stay within Swift's 15-byte inline string, so making
    /// one allocates nothing; the 16 hex digits used before cost a heap allocation per request.
    func newRequestID() -> String {
        Self.requestID(random.next())
    }

    /// The trace of a request with these header fields: its caller's, or a new one (loop
    /// thread only).
    func newTrace(_ headers: HTTPHeaders) -> RequestTrace {
        RequestTrace.start(headers: headers, random: &random)
    }

    static func requestID(_ value: UInt64) -> String {
        let digits: StaticString = "0123456789abcdefghjkmnpqrstvwxyz"
        return String(unsafeUninitializedCapacity: 13) { out in
            // The first character carries the top 4 bits, each of the other 12 five bits.
            for i in 0..<13 {
                out[i] = digits.utf8Start[Int((value >> UInt64(60 - 5 * i)) & (i == 0 ? 0xF : 0x1F))]
            }
            return 13
        }
    }
}

/// Connection is the server's record of one client connection, shared between its task and
/// its loop's table (for the drain). Loop thread only.
final class Connection: @unchecked Sendable {
    /// Go's ConnState, less `new` (a plain connection is active from accept, a TLS one idle
    /// until its first bytes) and `closed` (it is then removed from the table).
    enum Phase { case active, idle }

    /// The server span of the request being served, when a tracer records one. Kept here
    /// rather than in a local of the connection's task: a 40-byte optional existential kept
    /// across its awaits cost about 170 instructions a request even when nil (callgrind).
    var span: (any Span)?

    /// `https` for a TLS connection, `http` for a plain one (a span's `url.scheme`).
    var scheme: String {
        #if TLS
        tls != nil ? "https" : "http"
        #else
        "http"
        #endif
    }

    /// The request whose handler is running or whose response is being written, for the log
    /// line if the drain deadline cuts it.
    struct InFlight {
        var method: String
        var path: String
        var requestID: String
    }

    let socket: Socket
    let remote: SocketAddress?
    /// The client's address as the access log writes it, formatted once per connection.
    let remoteHost: String
    @exclusivity(unchecked) var phase: Phase = .active
    /// The task serving the connection; nil while it is parked (idle with no task).
    @exclusivity(unchecked) var task: Task<Void, Never>?
    @exclusivity(unchecked) var inFlight: InFlight?
    /// Set when the drain deadline closes the connection: its task stops at the next wait.
    @exclusivity(unchecked) var forceClosed = false
    /// Set while a handler runs with no further request buffered: a hang-up then means the
    /// client has gone, and cancels the handler (``HTTPServer/clientHungUp(_:on:)``).
    @exclusivity(unchecked) var watchesHangup = false
    /// Set when the client closed or reset the connection while its request's handler ran.
    @exclusivity(unchecked) var clientGone = false
    /// Whether a request has been answered on it (the first one's header timer runs from accept).
    @exclusivity(unchecked) var answeredOne = false
    /// When the connection's current wait for a request ends (monotonic nanoseconds): kept
    /// here so that a task resuming a parked connection keeps its timer rather than restarting it.
    @exclusivity(unchecked) var deadline: UInt64 = .max

    #if TLS
    /// The TLS session, when the server serves HTTPS: nil until the connection's first bytes.
    @exclusivity(unchecked) var tls: TLSSession?
    /// What the connection's code reads and writes.
    var stream: ByteStream { ByteStream(socket: socket, tls: tls) }
    #else
    var stream: ByteStream { ByteStream(socket: socket) }
    #endif

    /// Which metrics gauge the connection counts under now.
    var metricsState: Int {
        task == nil ? 2 : phase == .idle ? 1 : 0
    }

    init(socket: Socket, remote: SocketAddress?) {
        self.socket = socket
        self.remote = remote
        remoteHost = remote?.host ?? "-"
    }
}

enum HTTPDate {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT`
    static func format(seconds: Int) -> [UInt8] {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        out.append(contentsOf: days[Int(parts.tm_wday) % 7].utf8)
        out.append(contentsOf: ", ".utf8)
        two(Int(parts.tm_mday), &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: months[Int(parts.tm_mon) % 12].utf8)
        out.append(UInt8(ascii: " "))
        HTTPResponseSerializer.appendDecimal(Int(parts.tm_year) + 1900, to: &out)
        out.append(UInt8(ascii: " "))
        two(Int(parts.tm_hour), &out)
        out.append(UInt8(ascii: ":"))
        two(Int(parts.tm_min), &out)
        out.append(UInt8(ascii: ":"))
        two(Int(parts.tm_sec), &out)
        out.append(contentsOf: " GMT".utf8)
        return out
    }

    private static func two(_ value: Int, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "0") + UInt8(value / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}
