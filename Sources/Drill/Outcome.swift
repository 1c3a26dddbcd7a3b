// What happened to each request, and the two views the report gives of it: totals (the
// summary) and a timeline in buckets around the signal.

/// The fate of one request (or of one connection attempt, for `refused` and connect failures).
enum Outcome: Hashable, Sendable {
    /// A complete 2xx response; `close` if it carried `Connection: close`.
    case ok(close: Bool)
    /// The connection closed (EOF or reset) before any byte of the response.
    case unanswered
    /// Some response bytes, then EOF or reset before the response was complete.
    case truncated
    /// No complete response within the request timeout.
    case timeout
    /// Connect got ECONNREFUSED after the signal: the listener is closed.
    case refused
    /// Anything else: a non-2xx status, an unframeable response, a socket error, a refused
    /// connect before the signal. The reason groups the summary's error counts.
    case error(String)

    /// Judges a read: a whole response is `ok` only with a 2xx status.
    init(_ result: ReadResult) {
        switch result {
        case .response(let response):
            self = (200..<300).contains(response.status) ? .ok(close: response.close) : .error("status \(response.status)")
        case .unanswered: self = .unanswered
        case .truncated: self = .truncated
        case .timeout: self = .timeout
        case .failed(let reason): self = .error(reason)
        }
    }

    /// Only a kept-alive success leaves the connection usable; after anything else the worker
    /// closes it and reconnects, as a real client would.
    var keepsConnection: Bool { self == .ok(close: false) }

    /// Lost requests are the ones a client would have to retry: everything but ok and refused
    /// (a refused connect after the signal never carried a request).
    var isLost: Bool {
        switch self {
        case .ok, .refused: false
        case .unanswered, .truncated, .timeout, .error: true
        }
    }
}

/// One request: when it was sent, when its outcome was known (CLOCK_MONOTONIC nanoseconds), and
/// the outcome. For a connect failure both times are the connect attempt's.
struct RequestRecord: Equatable, Sendable {
    var sent: Int64
    var finished: Int64
    var outcome: Outcome
    /// Which worker (0-based), which of its connections (1-based) and which request on that
    /// connection (1-based; 0 for a connect that failed). A lost request that was the first on a
    /// fresh connection points at the accept path; a later one at keep-alive handling.
    var worker: Int32 = 0
    var connection: Int32 = 0
    var request: Int32 = 0
    /// For unanswered and truncated: whether the server closed (EOF) or reset the connection.
    var peerClose: PeerClose?

    init(sent: Int64, finished: Int64, outcome: Outcome, worker: Int32 = 0, connection: Int32 = 0,
         request: Int32 = 0, peerClose: PeerClose? = nil) {
        self.sent = sent
        self.finished = finished
        self.outcome = outcome
        self.worker = worker
        self.connection = connection
        self.request = request
        self.peerClose = peerClose
    }

    /// A short name for the outcome, as the records CSV writes it.
    var outcomeName: String {
        switch outcome {
        case .ok(close: false): "ok"
        case .ok(close: true): "ok_close"
        case .unanswered: "unanswered" + (peerClose.map { " (\($0.rawValue))" } ?? "")
        case .truncated: "truncated" + (peerClose.map { " (\($0.rawValue))" } ?? "")
        case .timeout: "timeout"
        case .refused: "refused"
        case .error(let reason): "error: " + reason
        }
    }
}

/// The totals. Every record lands in exactly one of ok_before, ok_after, unanswered, truncated,
/// timeout, refused and error, so they add up to `total`; `okClose` is a subset of the two ok
/// counts.
struct Summary: Equatable, Sendable {
    var total = 0
    /// 2xx responses to requests sent before the signal.
    var okBefore = 0
    /// 2xx responses to requests sent at or after the signal.
    var okAfter = 0
    /// 2xx responses that carried `Connection: close`.
    var okClose = 0
    var unanswered = 0
    var truncated = 0
    var timeout = 0
    var refused = 0
    var error = 0
    /// Error counts by reason ("status 503", "bad response: ...", "connect: EMFILE", ...).
    var errorReasons: [String: Int] = [:]

    var ok: Int { okBefore + okAfter }
    /// Requests a client would have had to retry.
    var lost: Int { unanswered + truncated + timeout + error }

    init() {}

    /// Counts `records`; a request belongs to "before" if it was sent strictly before
    /// `signalAt`.
    init(records: some Sequence<RequestRecord>, signalAt: Int64) {
        for record in records {
            add(record, signalAt: signalAt)
        }
    }

    mutating func add(_ record: RequestRecord, signalAt: Int64) {
        total += 1
        switch record.outcome {
        case .ok(let close):
            if record.sent < signalAt { okBefore += 1 } else { okAfter += 1 }
            if close { okClose += 1 }
        case .unanswered: unanswered += 1
        case .truncated: truncated += 1
        case .timeout: timeout += 1
        case .refused: refused += 1
        case .error(let reason):
            error += 1
            errorReasons[reason, default: 0] += 1
        }
    }
}

/// Counts in one timeline bucket. Unlike the summary, `ok` here counts only responses that kept
/// the connection alive and `okClose` those with `Connection: close`, so that the classes are
/// disjoint and stack in the chart; `ok + okClose` is every 2xx.
struct BucketCounts: Equatable, Sendable {
    var ok = 0
    var okClose = 0
    var unanswered = 0
    var truncated = 0
    var timeout = 0
    var refused = 0
    var error = 0

    var total: Int { ok + okClose + unanswered + truncated + timeout + refused + error }
    var failures: Int { unanswered + truncated + timeout + error }

    mutating func add(_ outcome: Outcome) {
        switch outcome {
        case .ok(close: false): ok += 1
        case .ok(close: true): okClose += 1
        case .unanswered: unanswered += 1
        case .truncated: truncated += 1
        case .timeout: timeout += 1
        case .refused: refused += 1
        case .error: error += 1
        }
    }
}

/// Requests per time bucket around the signal. A request is placed by the time its outcome was
/// known (a timeout lands where it gave up, not where it was sent), in bucket
/// floor((finished - signal) / bucket): bucket 0 starts at the signal, bucket -1 is the last
/// one wholly before it.
struct Timeline: Equatable, Sendable {
    var bucketNanoseconds: Int64
    /// The index of `buckets[0]`; the buckets run contiguously from here, empty ones included.
    var firstIndex: Int
    var buckets: [BucketCounts]

    init(bucketNanoseconds: Int64, firstIndex: Int, buckets: [BucketCounts]) {
        self.bucketNanoseconds = bucketNanoseconds
        self.firstIndex = firstIndex
        self.buckets = buckets
    }

    /// Buckets every record, covering at least bucket 0 (the signal) even if nothing happened
    /// after it.
    init(records: [RequestRecord], signalAt: Int64, bucketNanoseconds: Int64) {
        precondition(bucketNanoseconds > 0, "a bucket must have a positive width")
        self.bucketNanoseconds = bucketNanoseconds
        var low = 0, high = 0
        for record in records {
            let index = Self.index(of: record.finished, signalAt: signalAt, bucket: bucketNanoseconds)
            low = min(low, index)
            high = max(high, index)
        }
        firstIndex = low
        buckets = Array(repeating: BucketCounts(), count: high - low + 1)
        for record in records {
            let index = Self.index(of: record.finished, signalAt: signalAt, bucket: bucketNanoseconds)
            buckets[index - low].add(record.outcome)
        }
    }

    /// floor division, so that an event 1 ns before the signal is in bucket -1, not 0.
    static func index(of time: Int64, signalAt: Int64, bucket: Int64) -> Int {
        let offset = time - signalAt
        let quotient = offset / bucket
        return Int(offset % bucket < 0 ? quotient - 1 : quotient)
    }

    var lastIndex: Int { firstIndex + buckets.count - 1 }

    /// The bucket with index `index` (empty outside the recorded range).
    func counts(at index: Int) -> BucketCounts {
        let position = index - firstIndex
        return buckets.indices.contains(position) ? buckets[position] : BucketCounts()
    }

    /// The start of bucket `index` relative to the signal, in milliseconds.
    func startMilliseconds(of index: Int) -> Double {
        Double(Int64(index) * bucketNanoseconds) / 1_000_000
    }

    /// The indices from `seconds` before the signal (or the first bucket, if later) to the end.
    func indices(fromSecondsBeforeSignal seconds: Double) -> ClosedRange<Int> {
        let window = Int((seconds * 1_000_000_000 / Double(bucketNanoseconds)).rounded(.up))
        return max(firstIndex, -window)...lastIndex
    }
}
