import ServiceKit
import Tracing

/// Routes is the one file a forker edits to add endpoints: one `router.get`/`post` line per
/// route, with the handler beside it or in its own file. The runtime adds `/health`, `/ready`
/// and `/metrics` itself, outside any middleware here.
enum Routes {
    static func router(_ dependencies: Dependencies) -> Router {
        var router = Router()
        if dependencies.rateLimit > 0 {
            let rate = dependencies.rateLimit
            router.use(RateLimit(requestsPerSecond: Double(rate), burst: rate))
        }
        // For shutdown drills: answers after the requested time.
        let maxDelay = dependencies.maxDelay
        let maxDelayMilliseconds = Int(maxDelay.components.seconds) * 1000
            + Int(maxDelay.components.attoseconds / 1_000_000_000_000_000)
        router.get("/delay") { request in try await delay(request, maxMilliseconds: maxDelayMilliseconds) }
        // Server-Sent Events, a streamed response that ends early when the server shuts down.
        router.get("/events", events)
        // A download produced as the client reads it.
        router.get("/download", download)
        // An upload read as it arrives, up to 1 GiB, never held whole.
        router.post("/upload", body: .streamed(maxBytes: 1 << 30), upload)
        // Examples of a path parameter, a query parameter, a JSON body and a JSON answer.
        router.get("/hello/:name", hello)
        let store = dependencies.greetings
        let now = dependencies.now
        router.post("/greetings") { request in try await createGreeting(request, store: store, now: now) }
        // A group behind a bearer token, each request cut off after 5 s.
        router.group("/admin", middleware: [BearerAuth(token: dependencies.apiToken), Deadline(.seconds(5))]) { admin in
            admin.get("/greetings") { request in try await recentGreetings(request, store: store) }
        }
        return router
    }

    /// `GET /delay?ms=250` → after 250 ms, `{"delayed_ms":250}`; more than `maxMilliseconds`
    /// is a 400, not a way to pin connections. Cancelled if the client leaves, or the drain
    /// deadline passes, first.
    @Sendable static func delay(_ request: Request, maxMilliseconds: Int) async throws -> Response {
        guard let text = request.query("ms"), let ms = Int(text), (0...maxMilliseconds).contains(ms) else {
            throw HTTPError.badRequest("ms must be an integer from 0 to \(maxMilliseconds)")
        }
        // The loop's sleep rather than Task.sleep: when the client leaves, nothing of this
        // request outlives it (see EventLoop.sleep(for:)). In a span of its own, a child of the
        // request's: a tracer records it (a no-op without one).
        try await withSpan("delay") { span in
            span.attributes["delay.ms"] = ms
            try await EventLoop.sleep(for: .milliseconds(ms))
        }
        return .json(raw: Array(#"{"delayed_ms":\#(ms)}"#.utf8))
    }

    /// `GET /events?count=3&interval=500` → a `text/event-stream` of `count` events with IDs 1
    /// to `count` and data `{"n":1}` …, one every `interval` milliseconds. Once the server begins
    /// shutting down, the stream sends a last event of type `shutdown` and ends.
    @Sendable static func events(_ request: Request) async throws -> Response {
        let count = try integerQuery(request, "count", default: 10, in: 1...10_000)
        let interval = try integerQuery(request, "interval", default: 1000, in: 0...60_000)
        return .eventStream { events in
            for n in 1...count {
                try await events.send(ServerSentEvent(data: #"{"n":\#(n)}"#, id: String(n)))
                guard n < count else { return }
                guard try await events.sleep(for: .milliseconds(interval)) else {
                    try await events.send(ServerSentEvent(data: #"{"after":\#(n)}"#, event: "shutdown"))
                    return
                }
            }
        }
    }

    /// `GET /download?bytes=N` → N bytes (up to 16 GiB, 1 MiB by default) of generated data,
    /// chunked, written 64 KiB at a time as fast as the client reads: an export produced on the
    /// fly, never held whole.
    @Sendable static func download(_ request: Request) async throws -> Response {
        let total = try integerQuery(request, "bytes", default: 1 << 20, in: 0...(1 << 34))
        return Response(headers: ["Content-Type": "application/octet-stream"]) { writer in
            let block = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
            var left = total
            while left > 0 {
                try await writer.write(left >= block.count ? block : Array(block[..<left]))
                left -= min(left, block.count)
            }
        }
    }

    /// `POST /upload` with any body up to 1 GiB → `{"bytes":N}`. The body comes 64 KiB at a
    /// time as the client sends it: an upload costs the memory of one chunk.
    @Sendable static func upload(_ request: Request) async throws -> Response {
        var bytes = 0
        if let body = request.bodyStream {
            for try await chunk in body { bytes += chunk.count }
        }
        return .json(raw: Array(#"{"bytes":\#(bytes)}"#.utf8))
    }

    /// Query parameter `name` as an integer in `range`, `fallback` when absent; else a 400.
    static func integerQuery(_ request: Request, _ name: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = request.query(name) else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw HTTPError.badRequest("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    struct Greeting: Codable, Equatable {
        var message: String
    }

    /// `GET /hello/Ada?greeting=Hi` → `{"message":"Hi, Ada!"}`
    @Sendable static func hello(_ request: Request) async throws -> Response {
        let name = request.parameter("name") ?? ""
        let greeting = request.query("greeting") ?? "Hello"
        // Limits count Unicode scalars, which bound the bytes echoed back (4 each at most);
        // a grapheme count does not: one letter with any number of combining marks is one.
        guard greeting.unicodeScalars.count <= 64 else {
            throw HTTPError.badRequest("greeting must be at most 64 Unicode code points")
        }
        return try .json(Greeting(message: greeting + ", " + name + "!"))
    }

    struct NewGreeting: Codable, Sendable {
        var name: String
        var greeting: String?
    }

    /// `POST /greetings` with `{"name":"Ada","greeting":"Hi"}` → 201 `{"message":"Hi, Ada!"}`,
    /// kept in `store`.
    static func createGreeting(
        _ request: Request, store: any GreetingStore, now: @Sendable () -> Int64
    ) async throws -> Response {
        let input = try await request.decode(NewGreeting.self)
        // Surrounding whitespace is allowed and dropped. Scanning a megabyte of it takes
        // milliseconds, so a long name is trimmed off the event loop.
        let name = input.name.utf8.count > 4096 ? await offLoop { trimmed(input.name) } : trimmed(input.name)
        guard !name.isEmpty, name.unicodeScalars.count <= 100 else {
            throw HTTPError(status: 422, reason: "name must be 1 to 100 Unicode code points")
        }
        let greeting = input.greeting ?? "Hello"
        guard greeting.unicodeScalars.count <= 64 else {
            throw HTTPError(status: 422, reason: "greeting must be at most 64 Unicode code points")
        }
        let message = greeting + ", " + name + "!"
        try await store.add(StoredGreeting(message: message, createdAt: now()))
        return try .json(Greeting(message: message), status: 201)
    }

    struct RecentGreetings: Codable, Equatable {
        var greetings: [StoredGreeting]
    }

    /// `GET /admin/greetings?limit=10` → `{"greetings":[{"message":"Hi, Ada!","created_at":…}]}`,
    /// newest first.
    static func recentGreetings(_ request: Request, store: any GreetingStore) async throws -> Response {
        let limit = try request.query("limit").map { text in
            guard let limit = Int(text), (1...100).contains(limit) else {
                throw HTTPError.badRequest("limit must be an integer from 1 to 100")
            }
            return limit
        } ?? 10
        return try .json(RecentGreetings(greetings: try await store.recent(limit: limit)))
    }

    /// `text` without leading and trailing whitespace (Unicode's White_Space property).
    static func trimmed(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
