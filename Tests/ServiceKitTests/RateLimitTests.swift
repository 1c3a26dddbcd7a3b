import Foundation
import Synchronization
import Testing
@testable import ServiceKit

/// RateLimit: a token bucket per key, 429 with Retry-After past it, probe routes exempt, and a
/// table bounded by its cap whatever the number of clients, evicting the fullest bucket first.
@Suite struct RateLimitTests {
    /// A clock the test moves by hand (monotonic nanoseconds).
    final class ManualClock: Sendable {
        private let nanoseconds = Atomic<UInt64>(1_000_000_000_000)
        var now: UInt64 { nanoseconds.load(ordering: .relaxed) }
        func advance(_ duration: Duration) {
            nanoseconds.add(UInt64(duration.components.seconds) * 1_000_000_000
                + UInt64(duration.components.attoseconds / 1_000_000_000), ordering: .relaxed)
        }
    }

    static let second: UInt64 = 1_000_000_000

    /// `/api/items` and `/health` behind `limit`.
    func router(_ limit: RateLimit) -> Router {
        var router = Router()
        router.use(limit)
        router.get("/api/items") { _ in .text("items") }
        router.get("/health") { _ in .text("ok") }
        return router
    }

    func limit(
        rate: Double = 1, burst: Int = 3, cap: Int = 100, exempt: Set<String> = RateLimit.probeRoutes,
        key: @escaping @Sendable (Request) -> String? = RateLimit.clientAddress, clock: ManualClock
    ) -> RateLimit {
        RateLimit(requestsPerSecond: rate, burst: burst, maxTrackedKeys: cap, exempt: exempt, key: key,
                  clock: { clock.now })
    }

    func from(_ host: String, _ path: String = "/api/items") -> Request {
        Request("GET", path, remoteAddress: SocketAddress(host: host, port: 40000))
    }

    /// The statuses of `count` requests from `host`.
    func statuses(_ router: Router, _ count: Int, from host: String, _ path: String = "/api/items") async -> [Int] {
        var statuses: [Int] = []
        for _ in 0..<count { statuses.append(await router.respond(to: from(host, path)).status) }
        return statuses
    }

    @Test func aBurstThenTheSteadyRatePerClient() async throws {
        let clock = ManualClock()
        let router = router(limit(rate: 1, burst: 3, clock: clock))
        #expect(await statuses(router, 4, from: "192.0.2.1") == [200, 200, 200, 429])
        #expect(await statuses(router, 3, from: "192.0.2.2") == [200, 200, 200], "another client has its own bucket")

        clock.advance(.seconds(1))
        #expect(await statuses(router, 2, from: "192.0.2.1") == [200, 429], "one token a second")
        clock.advance(.milliseconds(500))
        #expect(await statuses(router, 1, from: "192.0.2.1") == [429], "half a token is none")
        clock.advance(.seconds(60))
        #expect(await statuses(router, 4, from: "192.0.2.1") == [200, 200, 200, 429], "refilled up to burst only")
    }

    @Test func aRefusalIs429WithRetryAfterAndTheJSONBody() async throws {
        let clock = ManualClock()
        // One request every 10 s.
        let router = router(limit(rate: 0.1, burst: 1, clock: clock))
        #expect(await router.respond(to: from("192.0.2.1")).status == 200)
        let refused = await router.respond(to: from("192.0.2.1"))
        #expect(refused.status == 429)
        #expect(refused.headers["Retry-After"] == "10")
        #expect(refused.headers["Content-Type"] == "application/json")
        #expect(String(decoding: refused.body, as: UTF8.self) == #"{"error":"too many requests","status":429}"#)
        clock.advance(.milliseconds(2500))
        #expect(await router.respond(to: from("192.0.2.1")).headers["Retry-After"] == "8", "7.5 s, rounded up")
        clock.advance(.milliseconds(7500))
        #expect(await router.respond(to: from("192.0.2.1")).status == 200)
    }

    @Test(arguments: [
        (0, 1), (1, 1), (999_999_999, 1), (1_000_000_000, 1), (1_000_000_001, 2), (9_500_000_000, 10),
    ] as [(UInt64, UInt64)])
    func retryAfterIsWholeSecondsRoundedUpAtLeastOne(nanoseconds: UInt64, seconds: UInt64) {
        #expect(RateLimit.seconds(nanoseconds) == seconds)
    }

    @Test func aFastRateStillSaysAtLeastOneSecond() async throws {
        let clock = ManualClock()
        let router = router(limit(rate: 4, burst: 1, clock: clock))
        #expect(await statuses(router, 2, from: "192.0.2.1") == [200, 429])
        #expect(await router.respond(to: from("192.0.2.1")).headers["Retry-After"] == "1")
        clock.advance(.milliseconds(250))
        #expect(await statuses(router, 2, from: "192.0.2.1") == [200, 429])
    }

    @Test func probeRoutesAreExemptByDefaultAndOnlyThen() async throws {
        let clock = ManualClock()
        let router = router(limit(burst: 1, clock: clock))
        #expect(await statuses(router, 5, from: "192.0.2.1", "/health") == [200, 200, 200, 200, 200])
        #expect(await statuses(router, 2, from: "192.0.2.1") == [200, 429], "probes took no tokens")

        let strict = self.router(limit(burst: 1, exempt: [], clock: clock))
        #expect(await statuses(strict, 2, from: "192.0.2.1", "/health") == [200, 429])
    }

    @Test func aKeyOfTheForkersChoiceAndNilIsNotLimited() async throws {
        let clock = ManualClock()
        let router = router(limit(burst: 1, key: { $0.headers["x-api-key"] }, clock: clock))
        func call(_ key: String?, from host: String) async -> Int {
            var headers: HTTPHeaders = [:]
            if let key { headers.add(name: "X-Api-Key", value: key) }
            return await router.respond(
                to: Request("GET", "/api/items", headers: headers, remoteAddress: SocketAddress(host: host, port: 1))
            ).status
        }
        #expect(await call("alpha", from: "192.0.2.1") == 200)
        #expect(await call("alpha", from: "192.0.2.2") == 429, "the key, not the address, counts")
        #expect(await call("beta", from: "192.0.2.1") == 200)
        for _ in 0..<5 { #expect(await call(nil, from: "192.0.2.1") == 200) }
    }

    @Test(arguments: [
        ("192.0.2.7", "192.0.2.7" as String?),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:eeee:dddd:cccc", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::1", "0:0:0:0::/64"),
    ])
    func theDefaultKeyIsTheAddressOrTheIPv6Slash64(host: String, key: String?) {
        #expect(RateLimit.clientAddress(Request("GET", "/", remoteAddress: SocketAddress(host: host, port: 9))) == key)
    }

    @Test func noAddressIsNotLimited() {
        #expect(RateLimit.clientAddress(Request("GET", "/")) == nil)
    }

    static func buckets(rate: Double, burst: Int, cap: Int) -> Buckets {
        let interval = UInt64(1e9 / rate)
        return Buckets(interval: interval, tolerance: interval * UInt64(burst), capacity: cap)
    }

    /// A million distinct keys through a table of 10,000: the count never passes the cap, the
    /// structure stays consistent, and a client being limited before the flood still is after.
    /// (Seconds of CPU: on a thread of its own, not one of the cooperative pool's two.)
    @Test func aFloodOfKeysNeverGrowsTheTablePastItsCapNorFreesALimitedClient() async throws {
        let (heavyAtFirst, refused, largest, tracked, consistent, wait) = try await onOwnThread {
            // One request every 10 s, bursts of 5.
            var table = Self.buckets(rate: 0.1, burst: 5, cap: 10_000)
            var now: UInt64 = 1_000 * Self.second
            var heavyAtFirst: [Bool] = []
            for _ in 0..<6 { heavyAtFirst.append(table.take("heavy", now: now) == nil) }
            var (largest, refused) = (0, 0)
            for i in 0..<1_000_000 {
                now += 1_000  // a microsecond apart: the flood lasts a second
                if table.take("k\(i)", now: now) != nil { refused += 1 }
                largest = max(largest, table.count)
            }
            return (heavyAtFirst, refused, largest, table.count, table.isConsistent(), table.take("heavy", now: now))
        }
        #expect(heavyAtFirst == [true, true, true, true, true, false])
        #expect(refused == 0, "a new key has a full bucket")
        #expect(largest == 10_000)
        #expect(tracked == 10_000)
        #expect(consistent)
        // Its next token is 9 s away (50 s of debt at the flood's start, minus 1 s, minus the
        // 40 s a token may be ahead): it was not forgotten.
        #expect(wait != nil && wait! > 8 * Self.second && wait! <= 9 * Self.second)
    }

    @Test func evictionTakesTheFullestBucketFirst() {
        var table = Self.buckets(rate: 1, burst: 3, cap: 3)
        let now = 100 * Self.second
        for _ in 0..<3 { _ = table.take("a", now: now) }  // empty
        for _ in 0..<2 { _ = table.take("b", now: now) }  // one left
        _ = table.take("c", now: now)  // two left: the fullest
        #expect(table.take("d", now: now) == nil)
        #expect(table.count == 3)
        #expect(table.isConsistent())
        #expect(table.take("a", now: now) != nil, "a is still limited")
        #expect(table.take("b", now: now) == nil, "b keeps its last token")
        #expect(table.take("b", now: now) != nil)
        // c was evicted: it starts over with a full bucket (evicting d, now the fullest).
        for _ in 0..<3 { #expect(table.take("c", now: now) == nil) }
        #expect(table.take("a", now: now) != nil, "a, the emptiest, is never the one evicted")
    }

    @Test func bucketsThatRefilledAreDropped() {
        var table = Self.buckets(rate: 1, burst: 2, cap: 100)
        var now = 100 * Self.second
        for i in 0..<100 { _ = table.take("k\(i)", now: now) }
        for _ in 0..<2 { _ = table.take("busy", now: now) }
        #expect(table.count == 100)
        now += Self.second  // the single-request buckets are full again; busy's is not
        for i in 0..<30 { _ = table.take("fresh\(i)", now: now + UInt64(i)) }
        // Each call drops up to 4 full buckets: the 99 left after busy evicted one are gone
        // within 25 calls; busy and the 30 fresh keys remain.
        #expect(table.count == 31)
        #expect(table.isConsistent())
        #expect(table.take("busy", now: now) == nil, "busy kept its state: one token back")
        #expect(table.take("busy", now: now) != nil)
    }

    @Test func aTrackedKeyCostsAbout110Bytes() {
        var table = Self.buckets(rate: 1, burst: 1, cap: 10_000)
        for i in 0..<10_000 { _ = table.take("127.1.\(i / 250).\(i % 250)", now: 0) }
        let perKey = Double(table.storageBytes) / 10_000
        print("rate limiter storage per tracked key: \(perKey) bytes (\(table.storageBytes) for 10,000)")
        #expect(perKey < 160)
    }

    /// Through a real server, from 3,000 distinct source addresses (all of 127.0.0.0/8 is
    /// loopback on Linux): every request is answered, the table never holds more than its cap,
    /// and a client limited before the flood still is after it.
    @Test func endToEndThreeThousandClientAddressesAgainstACapOf500() async throws {
        // One request a minute, bursts of 2: nothing refills during the test.
        let limit = RateLimit(requestsPerSecond: 1.0 / 60, burst: 2, maxTrackedKeys: 500)
        try await withServer(router: router(limit)) { port, _ in
            // Blocking clients, on a thread of their own.
            let (before, answered, largest, after) = try await onOwnThread {
                let before = try (0..<3).map { _ in try Self.status(from: "127.0.0.1", port: port) }
                var answered = [Int: Int]()
                var largest = 0
                for i in 0..<3_000 {
                    let status = try Self.status(from: "127.1.\(i / 250).\(i % 250 + 1)", port: port)
                    answered[status, default: 0] += 1
                    largest = max(largest, limit.trackedKeys)
                }
                let after = try [
                    Self.status(from: "127.0.0.1", port: port), Self.status(from: "127.0.0.1", port: port, path: "/health"),
                ]
                return (before, answered, largest, after)
            }
            #expect(before == [200, 200, 429])
            #expect(answered == [200: 3_000])
            #expect(largest == 500)
            #expect(limit.trackedKeys == 500)
            #expect(after == [429, 200], "127.0.0.1 not forgiven by the flood; the probe exempt")
        }
    }

    /// One `GET path` with `Connection: close` from a socket bound to `source`; the status.
    static func status(from source: String, port: Int, path: String = "/api/items") throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestClient.Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func address(_ host: String, _ port: Int) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr(host)
            return address
        }
        func call(_ host: String, _ port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
            var address = address(host, port)
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard call(source, 0, { bind(fd, $0, $1) }) == 0 else {
            throw TestClient.Failure(description: "bind \(source): errno \(errno)")
        }
        guard call("127.0.0.1", port, { connect(fd, $0, $1) }) == 0 else {
            throw TestClient.Failure(description: "connect from \(source): errno \(errno)")
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            throw TestClient.Failure(description: "send: errno \(errno)")
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received.append(contentsOf: chunk[0..<n])
        }
        let statusLine = String(decoding: received.prefix(12), as: UTF8.self)
        guard statusLine.hasPrefix("HTTP/1.1 "), let status = Int(statusLine.dropFirst(9)) else {
            throw TestClient.Failure(description: "no response from \(source): \(statusLine.debugDescription)")
        }
        return status
    }
}
