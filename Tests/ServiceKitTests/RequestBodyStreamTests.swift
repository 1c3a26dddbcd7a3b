import Foundation
import Synchronization
import Testing
import TestSupport
@testable import ServiceKit

/// Request bodies read as they arrive (RequestBodyMode.streamed): framing, limits,
/// 100-continue, the per-chunk read timeout, and what a handler leaves unread.
@Suite struct RequestBodyStreamTests {
    final class Observed: Sendable {
        let largestChunk = Atomic<Int>(0)
        let readError = Mutex<String?>(nil)
        let started = Atomic<Int>(0)
    }

    /// FNV-1a, 64 bits: a checksum the handler and the test compute apart.
    static func fnv1a(_ bytes: some Sequence<UInt8>, _ seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = seed
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    func router(_ observed: Observed = Observed(), gate: Gate = Gate()) -> Router {
        var router = testRouter()
        router.post("/upload", body: .streamed(maxBytes: 8 * 1024 * 1024)) { request in
            observed.started.add(1, ordering: .relaxed)
            if request.query("wait") != nil { await gate.wait() }
            guard let stream = request.bodyStream, request.body.isEmpty else { throw TestFailure() }
            var count = 0
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            do {
                for try await chunk in stream {
                    count += chunk.count
                    hash = Self.fnv1a(chunk, hash)
                    if chunk.count > observed.largestChunk.load(ordering: .relaxed) {
                        observed.largestChunk.store(chunk.count, ordering: .relaxed)
                    }
                }
            } catch {
                observed.readError.withLock { $0 = "\(error)" }
                throw error
            }
            return .text("\(count) \(String(hash, radix: 16))")
        }
        // Answers without reading the body.
        router.post("/ignore", body: .streamed(maxBytes: 8 * 1024 * 1024)) { _ in .text("ignored") }
        return router
    }

    func post(_ path: String, length: Int, _ extra: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: test\r\nContent-Length: \(length)\r\n\(extra)\r\n"
    }

    static func payload(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
    }

    @Test func aSizedBodyArrivesInChunksWholeAndTheConnectionGoesOn() async throws {
        let observed = Observed()
        try await withServer(router: router(observed)) { port, _ in
            let client = try TestClient(port: port)
            let body = Self.payload(3 * 1024 * 1024 + 17)
            try client.send(post("/upload", length: body.count))
            try client.send(body)
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == "\(body.count) \(String(Self.fnv1a(body), radix: 16))")
            #expect(observed.largestChunk.load(ordering: .relaxed) <= 64 * 1024)
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func aChunkedBodyArrivesDecoded() async throws {
        try await withServer(router: router()) { port, _ in
            let client = try TestClient(port: port)
            let body = Self.payload(200_000)
            var wire = Array("POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            var offset = 0
            for size in [1, 70_000, 3, 65_536, 10] + [body.count] {
                let take = min(size, body.count - offset)
                guard take > 0 else { break }
                wire += Array(String(take, radix: 16).utf8) + [13, 10] + body[offset..<(offset + take)] + [13, 10]
                offset += take
            }
            wire += Array("0\r\n\r\n".utf8)
            try client.send(wire)
            #expect(try client.readResponse().bodyText == "\(body.count) \(String(Self.fnv1a(body), radix: 16))")
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func aPipelinedRequestAfterAStreamedBodyIsServed() async throws {
        try await withServer(router: router()) { port, _ in
            let client = try TestClient(port: port)
            let body = Self.payload(1000)
            try client.send(Array(post("/upload", length: body.count).utf8) + body + Array(get("/health").utf8))
            #expect(try client.readResponse().bodyText.hasPrefix("1000 "))
            #expect(try client.readResponse().bodyText == #"{"status":"ok"}"#)
        }
    }

    @Test func aDeclaredLengthOverTheRouteLimitIs413BeforeTheHandler() async throws {
        let observed = Observed()
        try await withServer(router: router(observed)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(post("/upload", length: 8 * 1024 * 1024 + 1))
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.header("connection") == "close")
            #expect(observed.started.load(ordering: .relaxed) == 0)
        }
    }

    @Test func aChunkedBodyThatOutgrowsTheLimitIs413FromTheRead() async throws {
        let observed = Observed()
        try await withServer(router: router(observed)) { port, _ in
            let client = try TestClient(port: port)
            try client.send("POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
            let piece = [UInt8](repeating: 7, count: 1024 * 1024)
            for _ in 0..<9 {
                // The server stops reading at the limit and closes; a send may then fail.
                guard (try? client.send(Array("100000\r\n".utf8) + piece + [13, 10])) != nil else { break }
            }
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.header("connection") == "close")
            #expect(observed.readError.withLock { $0 }?.contains("413") == true)
        }
    }

    @Test func oneHundredContinueGoesOutOnlyWhenTheHandlerReads() async throws {
        let gate = Gate()
        try await withServer(router: router(gate: gate)) { port, _ in
            let client = try TestClient(port: port, timeout: 0.3)
            try client.send(post("/upload?wait", length: 5, "Expect: 100-continue\r\n"))
            try await gate.waitForArrivals(1)
            // The handler has not read: nothing may have been sent.
            #expect(throws: TestClient.Failure.self) { try client.readHead() }
            gate.open()
            let interim = try client.readHead()
            #expect(interim.status == 100)
            try client.send("hello")
            #expect(try client.readResponse().bodyText == "5 \(String(Self.fnv1a(Array("hello".utf8)), radix: 16))")
        }
    }

    @Test func aHandlerThatAnswersWithoutReadingAnExpectingClientClosesTheConnection() async throws {
        try await withServer(router: router()) { port, _ in
            let client = try TestClient(port: port)
            try client.send(post("/ignore", length: 5, "Expect: 100-continue\r\n"))
            let response = try client.readResponse()
            #expect(response.status == 200, "the final answer, with no 100 Continue before it")
            #expect(response.header("connection") == "close")
            #expect(client.isClosedByServer())
        }
    }

    @Test func anUnreadRemainderUpTo256KiBIsDiscardedAndTheConnectionKept() async throws {
        try await withServer(router: router()) { port, _ in
            let client = try TestClient(port: port)
            try client.send(Array(post("/ignore", length: 100_000).utf8) + Self.payload(100_000))
            let response = try client.readResponse()
            #expect(response.bodyText == "ignored")
            #expect(response.header("connection") == nil)
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func anUnreadRemainderPast256KiBClosesTheConnection() async throws {
        try await withServer(router: router()) { port, _ in
            let client = try TestClient(port: port)
            try client.send(post("/ignore", length: 4 * 1024 * 1024))
            // Sends its body meanwhile, as a real client would; the server stops reading.
            let body = Self.payload(4 * 1024 * 1024)
            let fd = client.fd
            let sender = Thread {
                var offset = 0
                while offset < body.count {
                    let sent = body.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                    guard sent > 0 else { return }
                    offset += sent
                }
            }
            sender.start()
            let response = try client.readResponse()
            #expect(response.bodyText == "ignored")
            #expect(response.header("connection") == "close")
        }
    }

    @Test func theReadTimeoutIsPerChunkNotForTheWholeBody() async throws {
        try await withServer(router: router(), configure: { $0.readTimeout = .seconds(1) }) { port, _ in
            // Steady: 6 pieces 250 ms apart, 1.5 s in all, never 1 s without a byte. (A thread
            // sleep: the shared pool's timers may be late when other suites keep it busy.)
            let steady = try TestClient(port: port)
            try steady.send(post("/upload", length: 6))
            for _ in 0..<6 {
                try steady.send("x")
                usleep(250_000)
            }
            #expect(try steady.readResponse().bodyText.hasPrefix("6 "))

            // Stalled: half the body, then nothing.
            let stalled = try TestClient(port: port)
            try stalled.send(post("/upload", length: 10))
            try stalled.send("12345")
            let response = try stalled.readResponse()
            #expect(response.status == 408)
            #expect(response.header("connection") == "close")
        }
    }

    @Test func aClientThatLeavesMidBodyEndsTheReadAndIsLoggedAs499() async throws {
        let observed = Observed()
        let log = CapturedLog()
        try await withServer(router: router(observed), log: log) { port, server in
            let client = try TestClient(port: port)
            try client.send(post("/upload", length: 1000, "X-Request-ID: gone-body\r\n"))
            try client.send("abc")
            try await waitUntil { observed.started.load(ordering: .relaxed) == 1 }
            shutdown(client.fd, Int32(SHUT_RDWR))
            try await waitUntil { observed.readError.withLock { $0 } != nil }
            #expect(observed.readError.withLock { $0 } == "CancellationError()")
            try await waitUntil { log.lines.contains { $0.contains("gone-body") } }
            #expect(log.lines.contains { $0.contains("gone-body") && $0.contains(#""status":499"#) })
            try await waitUntil { server.connectionCount == 0 }
        }
    }

    @Test func inProcessTheBodyIsReadThroughTheStreamWithTheRouteLimit() async throws {
        let router = router()
        let body = Self.payload(70_000)
        let response = await router.respond(to: Request("POST", "/upload", body: body))
        #expect(String(decoding: response.body, as: UTF8.self) == "70000 \(String(Self.fnv1a(body), radix: 16))")
        let tooBig = await router.respond(to: Request("POST", "/upload", body: [UInt8](repeating: 1, count: 8 * 1024 * 1024 + 1)))
        #expect(tooBig.status == 413)
    }
}
