import Logging
import Synchronization
@testable import ServiceKit
@_exported import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// CapturedLog collects the JSON lines a server logs, through a real LogSink over a pipe.
final class CapturedLog: @unchecked Sendable {
    let sink: LogSink
    private let readFD: Int32
    private let writeFD: Int32
    private let collected = Mutex<[UInt8]>([])

    init() {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        readFD = fds[0]
        writeFD = fds[1]
        // Non-blocking read end: `lines` drains what is there without waiting. A 1 MiB pipe
        // (F_SETPIPE_SZ, 1031, a macro Glibc does not import) and a non-blocking write end: the
        // server's loops flush to this sink every iteration, and a full pipe nobody reads must
        // not block them.
        _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
        _ = fcntl(writeFD, 1031, 1 << 20)
        _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
        sink = LogSink(fileDescriptor: writeFD)
    }

    deinit {
        // Write out what is buffered while the descriptor is still ours: once closed, its number
        // may belong to another test's pipe.
        _ = drainWhileFlushing()
        close(readFD)
        close(writeFD)
    }

    /// Reads the pipe while the sink's writer empties into it, until the writer has written
    /// everything appended so far (or 10 s passed): waiting without reading would wait for
    /// nothing once the pipe is full. Returns the bytes read.
    private func drainWhileFlushing() -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let written = sink.flush(waitingUpTo: .milliseconds(5))
            while true {
                let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                bytes.append(contentsOf: chunk[0..<n])
            }
            if written || ContinuousClock.now >= deadline { return bytes }
        }
    }

    func logger(_ label: String) -> Logger {
        let sink = self.sink
        return Logger(label: label) { JSONLogHandler(label: $0, sink: sink, logLevel: .debug) }
    }

    /// The complete lines written so far.
    var lines: [String] {
        collected.withLock { data in
            data.append(contentsOf: drainWhileFlushing())
            return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
    }
}

/// Starts an HTTPServer on 127.0.0.1:0 with `configure` applied, runs `body` with its port,
/// then shuts it down.
func withServer(
    router: Router = testRouter(),
    log: CapturedLog = CapturedLog(),
    metrics: TestMetrics? = nil,
    tracing: ServerTracing? = nil,
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (_ port: Int, _ server: HTTPServer) async throws -> Void
) async throws {
    let server = HTTPServer(configuration: testConfiguration(configure), router: router, logger: log.logger("server"),
                            accessLogger: log.logger("access"), metricsFactory: metrics, tracing: tracing)
    try await serving(server) { try await body($0, server) }
}

/// The test servers' configuration: loopback, a free port, two loops, a short drain linger,
/// then `configure`.
func testConfiguration(_ configure: (inout ServerConfiguration) -> Void) -> ServerConfiguration {
    var configuration = ServerConfiguration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.eventLoops = 2
    configuration.drainLinger = .milliseconds(100)
    configure(&configuration)
    return configuration
}

/// Starts `server`, runs `body` with its port, then shuts it down (also when `body` throws).
func serving(_ server: HTTPServer, _ body: (_ port: Int) async throws -> Void) async throws {
    try server.start()
    let port = server.localAddress?.port ?? 0
    do {
        try await body(port)
    } catch {
        await server.shutdown(drainTimeout: .seconds(1))
        throw error
    }
    await server.shutdown(drainTimeout: .seconds(1))
}

struct TestFailure: Error {}

/// Polls (without blocking a thread) until `condition` holds, for up to 10 s; the caller's
/// expectations then say what did not happen.
func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
}

/// Gate holds handlers until a test opens it, so tests order events without timing guesses.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, arrived: Int, waiters: [CheckedContinuation<Void, Never>])>((false, 0, []))

    /// Suspends until ``open()`` (at once if it already was).
    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                state.arrived += 1
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    /// How many handlers have reached the gate.
    var arrived: Int { state.withLock { $0.arrived } }

    /// Polls (without blocking a thread) until `count` handlers wait at the gate.
    func waitForArrivals(_ count: Int) async throws {
        for _ in 0..<1000 where arrived < count { try await Task.sleep(for: .milliseconds(5)) }
    }
}

/// Routes for engine tests: an echo of the body, a handler that throws, a slow one.
func testRouter(gate: Gate = Gate()) -> Router {
    var router = Router()
    router.get("/gate") { _ in
        await gate.wait()
        return .text("through the gate")
    }
    router.get("/health") { _ in .json(raw: Array(#"{"status":"ok"}"#.utf8)) }
    router.post("/echo") { request in
        var response = Response(status: 200, body: request.body)
        response.headers.add(name: "Content-Type", value: "application/octet-stream")
        return response
    }
    router.get("/path/:id") { request in .text("id=\(request.parameter("id") ?? "-") q=\(request.query("q") ?? "-")") }
    router.get("/fail") { _ in throw TestFailure() }
    router.get("/teapot") { _ in throw HTTPError(status: 418, reason: "short and stout") }
    router.get("/slow") { request in
        let ms = Int(request.query("ms") ?? "") ?? 300
        try await Task.sleep(for: .milliseconds(ms))
        return .text("slept \(ms)")
    }
    router.get("/empty") { _ in Response(status: 204) }
    router.get("/big") { request in
        let kib = min(Int(request.query("kib") ?? "") ?? 1024, 64 * 1024)
        return Response(status: 200, body: [UInt8](repeating: UInt8(ascii: "x"), count: kib * 1024))
    }
    router.get("/bad-header") { _ in Response(status: 200, headers: ["X-Evil": "a\r\nSet-Cookie: x=1"], body: Array("ok".utf8)) }
    return router
}

/// A GET request with the Host header every 1.1 request needs.
func get(_ path: String, _ extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: test\r\n\(extra)\r\n"
}
