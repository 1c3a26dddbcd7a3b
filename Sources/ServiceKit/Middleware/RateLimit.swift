import Synchronization

/// RateLimit limits each client to a steady rate of requests with bursts, a token bucket per
/// key: `router.group("/api", middleware: [RateLimit(requestsPerSecond: 10, burst: 20)]) { ... }`.
///
/// Each key (by default the client's address, see ``clientAddress(_:)``) starts with `burst`
/// tokens and regains `requestsPerSecond` of them a second, up to `burst`; a request takes one.
/// A request that finds none is refused with `429`, the JSON error body and `Retry-After`:
/// the whole seconds (at least 1) until a token is back. Refused requests take nothing.
/// Requests whose key is nil, and requests to a route in `exempt` (the health, readiness and
/// metrics probes by default, so an orchestrator is never throttled) are not limited.
///
/// Memory is bounded by `maxTrackedKeys`, whatever the number of clients: a key is tracked
/// only while its bucket is short of full (a full bucket is the same as no entry). When a new
/// key finds the table full, the entry evicted is the one closest to full; evicting it
/// forgives what it was short, and it is short by least of all. A flood of fresh keys (one
/// request each, one token short) therefore never evicts a client that is being limited: to
/// have such a key forgotten, each of `maxTrackedKeys` other keys must first be brought
/// further below full than it, which takes more requests than the limit lets them make. Each
/// tracked key costs about 110 bytes, plus the key itself when it is longer than 15 bytes.
///
/// One value is one budget: copies share their table, so the same `RateLimit` applied to two
/// groups limits them together; make another for a separate budget. Safe from every event loop
/// at once (one lock, held for a dictionary lookup and a heap update of O(log n)).
public struct RateLimit: Middleware {
    /// The probe routes the runtime registers: never limited unless `exempt` says otherwise.
    public static let probeRoutes: Set<String> = ["/health", "/ready", "/metrics"]

    /// Route templates (``Request/route``) whose requests are not limited.
    public let exempt: Set<String>
    let key: @Sendable (Request) -> String?
    let table: Table
    let clock: @Sendable () -> UInt64

    /// - Parameters:
    ///   - requestsPerSecond: the steady rate each key may keep up; positive (0.5 is one
    ///     request every two seconds).
    ///   - burst: how many requests a key may make at once after being idle; at least 1.
    ///   - maxTrackedKeys: the most keys tracked at once; at least 1.
    ///   - exempt: route templates never limited.
    ///   - key: what requests are counted by; nil for a request that is not limited. By
    ///     default ``clientAddress(_:)``; behind a proxy, a key from the header it sets (which
    ///     only that proxy may be trusted to set).
    public init(
        requestsPerSecond: Double, burst: Int, maxTrackedKeys: Int = 10_000, exempt: Set<String> = probeRoutes,
        key: @escaping @Sendable (Request) -> String? = clientAddress
    ) {
        self.init(requestsPerSecond: requestsPerSecond, burst: burst, maxTrackedKeys: maxTrackedKeys, exempt: exempt,
                  key: key, clock: { EventLoop.now() })
    }

    /// With `clock` (monotonic nanoseconds) in place of the system's: for tests.
    init(
        requestsPerSecond: Double, burst: Int, maxTrackedKeys: Int, exempt: Set<String> = probeRoutes,
        key: @escaping @Sendable (Request) -> String? = clientAddress, clock: @escaping @Sendable () -> UInt64
    ) {
        precondition(requestsPerSecond > 0 && requestsPerSecond.isFinite, "requestsPerSecond must be positive")
        precondition(burst >= 1, "burst must be at least 1")
        precondition(maxTrackedKeys >= 1, "maxTrackedKeys must be at least 1")
        let interval = max(1, min(Double(UInt64.max / 4), 1e9 / requestsPerSecond))
        let (tolerance, overflow) = UInt64(interval).multipliedReportingOverflow(by: UInt64(burst))
        precondition(!overflow && tolerance < UInt64.max / 2, "burst / requestsPerSecond is too long a time")
        table = Table(Buckets(interval: UInt64(interval), tolerance: tolerance, capacity: maxTrackedKeys))
        self.exempt = exempt
        self.key = key
        self.clock = clock
    }

    /// How many keys are tracked now (never more than `maxTrackedKeys`).
    public var trackedKeys: Int { table.state.withLock { $0.count } }

    public func handle(_ request: Request, next: Handler) async throws -> Response {
        if let route = request.route, exempt.contains(route) { return try await next(request) }
        guard let key = key(request) else { return try await next(request) }
        if let wait = table.take(key, now: clock()) {
            throw HTTPError(status: 429, reason: "too many requests", headers: ["Retry-After": String(Self.seconds(wait))])
        }
        return try await next(request)
    }

    /// `Retry-After` for a wait of `nanoseconds`: whole seconds rounded up, at least 1.
    static func seconds(_ nanoseconds: UInt64) -> UInt64 {
        max(1, nanoseconds / 1_000_000_000 + (nanoseconds % 1_000_000_000 == 0 ? 0 : 1))
    }

    /// The default key: the client's IP address (`192.0.2.7`); for IPv6 its /64 network
    /// (`2001:db8:1:2::/64`), as one host commonly holds a whole /64, and an IPv4-mapped
    /// address (`::ffff:192.0.2.7`) as the IPv4 address. Nil when the address is unknown.
    public static func clientAddress(_ request: Request) -> String? {
        guard let address = request.remoteAddress else { return nil }
        guard case .v6(var v6) = address.storage else { return address.host }
        let bytes = withUnsafeBytes(of: &v6.sin6_addr) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }

    /// The buckets behind a lock, shared by the copies of one ``RateLimit``.
    final class Table: Sendable {
        let state: Mutex<Buckets>

        init(_ buckets: Buckets) { state = Mutex(buckets) }

        /// Takes a token for `key` at `now`: nil when allowed, else the nanoseconds until one
        /// is back.
        func take(_ key: String, now: UInt64) -> UInt64? {
            state.withLock { $0.take(key, now: now) }
        }
    }
}

/// Token buckets by key, bounded in number, kept as the generic cell rate algorithm keeps
/// them: one time per key, its theoretical arrival time (`tat`), the instant its bucket is
/// full again. A request at `now` is allowed when `max(tat, now) + interval` is no more than
/// `tolerance` (burst × interval) ahead of `now`, and then moves `tat` there.
///
/// Entries sit in a min-heap by `tat`, so the fullest bucket is always at the top: dropped
/// once full (a few per call, so no call does unbounded work) and evicted first when the
/// table is full. The dictionary maps a key to its slot; the heap holds slot numbers and
/// each slot its heap position, so reordering the heap touches arrays, never the dictionary.
struct Buckets {
    struct Slot {
        var key: String
        var tat: UInt64
        var heapIndex: Int
    }

    /// Nanoseconds per token.
    let interval: UInt64
    /// How far ahead of now a `tat` may be: `burst` tokens' worth.
    let tolerance: UInt64
    /// The most keys tracked.
    let capacity: Int
    private(set) var slots: [Slot] = []
    private var heap: [Int] = []
    private var slotByKey: [String: Int] = [:]

    init(interval: UInt64, tolerance: UInt64, capacity: Int) {
        self.interval = interval
        self.tolerance = tolerance
        self.capacity = capacity
    }

    var count: Int { slots.count }

    /// Takes a token for `key` at `now` (monotonic nanoseconds): nil when allowed, else the
    /// nanoseconds until a token is back.
    mutating func take(_ key: String, now: UInt64) -> UInt64? {
        dropFull(now: now, atMost: 4)
        if let slot = slotByKey[key] {
            let next = max(slots[slot].tat, now) + interval
            if next - now > tolerance { return next - now - tolerance }
            slots[slot].tat = next
            siftDown(slots[slot].heapIndex)
            return nil
        }
        // A new key has a full bucket, and burst is at least 1.
        if slots.count >= capacity { remove(heapIndex: 0) }
        let slot = slots.count
        slots.append(Slot(key: key, tat: now + interval, heapIndex: heap.count))
        heap.append(slot)
        slotByKey[key] = slot
        siftUp(heap.count - 1)
        return nil
    }

    /// Removes up to `limit` entries whose buckets are full again at `now`.
    private mutating func dropFull(now: UInt64, atMost limit: Int) {
        var dropped = 0
        while dropped < limit, let top = heap.first, slots[top].tat <= now {
            remove(heapIndex: 0)
            dropped += 1
        }
    }

    private mutating func remove(heapIndex position: Int) {
        let slot = heap[position]
        let last = heap.removeLast()
        if position < heap.count {
            heap[position] = last
            slots[last].heapIndex = position
            siftDown(position)
            siftUp(slots[last].heapIndex)
        }
        // Keep the slots dense: the last one moves into the freed place.
        slotByKey[slots[slot].key] = nil
        let lastSlot = slots.count - 1
        if slot != lastSlot {
            slots[slot] = slots[lastSlot]
            slotByKey[slots[slot].key] = slot
            heap[slots[slot].heapIndex] = slot
        }
        slots.removeLast()
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard slots[heap[child]].tat < slots[heap[parent]].tat else { return }
            swap(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            var smallest = parent
            let left = 2 * parent + 1
            if left < heap.count && slots[heap[left]].tat < slots[heap[smallest]].tat { smallest = left }
            if left + 1 < heap.count && slots[heap[left + 1]].tat < slots[heap[smallest]].tat { smallest = left + 1 }
            if smallest == parent { return }
            swap(parent, smallest)
            parent = smallest
        }
    }

    private mutating func swap(_ i: Int, _ j: Int) {
        heap.swapAt(i, j)
        slots[heap[i]].heapIndex = i
        slots[heap[j]].heapIndex = j
    }

    /// Checks the heap's order and the three structures' agreement: for tests.
    func isConsistent() -> Bool {
        guard heap.count == slots.count, slotByKey.count == slots.count else { return false }
        for (position, slot) in heap.enumerated() {
            guard slots[slot].heapIndex == position, slotByKey[slots[slot].key] == slot else { return false }
            if position > 0 && slots[heap[(position - 1) / 2]].tat > slots[slot].tat { return false }
        }
        return true
    }

    /// The bytes the table's storage occupies now, keys' out-of-line storage aside.
    var storageBytes: Int {
        // A native dictionary keeps its load factor under 3/4, in a power-of-two bucket count.
        var buckets = 1
        while buckets * 3 < slotByKey.capacity * 4 { buckets *= 2 }
        return slots.capacity * MemoryLayout<Slot>.stride + heap.capacity * MemoryLayout<Int>.stride
            + buckets * (MemoryLayout<String>.stride + MemoryLayout<Int>.stride) + buckets / 8
    }
}
