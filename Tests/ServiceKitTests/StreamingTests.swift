import Foundation
import Synchronization
import Testing
import TestSupport
@testable import ServiceKit

/// Streamed responses on the wire: framing, errors as truncations, backpressure, the write
/// timeout, client hang-ups and the drain.
@Suite struct StreamingTests {
    /// What the stream handlers saw.
    final class Observed: Sendable {
        let written = Atomic<Int>(0)
        let calls = Atomic<Int>(0)
        let ended = Mutex<String?>(nil)
        /// When the stream's body stopped, seen from the server's loop: the test's own clock
        /// readings wait for the shared thread pool, which other suites keep busy.
        let endedAt = Mutex<ContinuousClock.Instant?>(nil)
    }

    func router(_ observed: Observed = Observed()) -> Router {
        var router = testRouter()
        router.get("/chunks") { _ in
            Response(headers: ["Content-Type": "text/plain"]) { writer in
                observed.calls.add(1, ordering: .relaxed)
                try await writer.write("one,")
                try await writer.write([UInt8]())  // writes nothing, and must not end the body
                try await writer.write("two,")
                try await writer.write([UInt8](repeating: UInt8(ascii: "x"), count: 40_000))  // past the copy limit
                try await writer.write("three")
            }
        }
        router.get("/sized") { request in
            let declared = Int(request.query("declared") ?? "") ?? 10
            let actual = Int(request.query("actual") ?? "") ?? 10
            return Response(contentLength: declared) { writer in
                do {
                    for _ in 0..<actual { try await writer.write("a") }
                } catch {
                    observed.ended.withLock { $0 = "\(error)" }
                    throw error
                }
            }
        }
        router.get("/fail-midway") { _ in
            Response { writer in
                try await writer.write("partial")
                throw TestFailure()
            }
        }
        router.get("/fail-first") { _ in Response { _ in throw TestFailure() } }
        router.get("/refuse-first") { _ in Response { _ in throw HTTPError(status: 409, reason: "not now") } }
        router.get("/firehose") { _ in
            // Writes 64 KiB pieces as fast as the client takes them, counting what got through.
            Response { writer in
                let piece = [UInt8](repeating: UInt8(ascii: "f"), count: 64 * 1024)
                do {
                    while true {
                        try await writer.write(piece)
                        observed.written.store(writer.bytesWritten, ordering: .relaxed)
                    }
                } catch {
                    observed.ended.withLock { $0 = "\(error)" }
                    throw error
                }
            }
        }
        router.get("/ticks") { request in
            let interval = Int(request.query("ms") ?? "") ?? 50
            return .eventStream { events in
                var n = 0
                do {
                    while true {
                        n += 1
                        try await events.send(ServerSentEvent(data: "tick \(n)", id: String(n)))
                        observed.written.store(n, ordering: .relaxed)
                        guard try await events.sleep(for: .milliseconds(interval)) else {
                            try await events.send(ServerSentEvent(data: "bye", event: "shutdown"))
                            observed.ended.withLock { $0 = "shutdown" }
                            return
                        }
                    }
                } catch {
                    observed.endedAt.withLock { $0 = .now }
                    observed.ended.withLock { $0 = "\(type(of: error))" }
                    throw error
                }
            }
        }
        router.get("/stubborn-stream") { _ in
            // Ignores the shutdown: the drain deadline must cut it.
            Response { writer in
                while true {
                    try await writer.write("still here\n")
                    try await EventLoop.sleep(for: .milliseconds(20))
                }
            }
        }
        return router
    }


    @Test func anUnsizedStreamIsChunkedAndTheConnectionServesTheNextRequest() async throws {
        let observed = Observed()
        let log = CapturedLog()
        try await withServer(router: router(observed), log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/chunks", "X-Request-ID: chunks-1\r\n"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("transfer-encoding") == "chunked")
            #expect(response.header("content-length") == nil)
            #expect(response.header("x-request-id") == "chunks-1")
            let expected = "one,two," + String(repeating: "x", count: 40_000) + "three"
            #expect(response.bodyText == expected)
            // Keep-alive holds after a chunked body.
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
            try await waitUntil { log.lines.contains { $0.contains(#""request_id":"chunks-1""#) } }
            let access = try #require(log.lines.first { $0.contains(#""request_id":"chunks-1""#) })
            #expect(access.contains(#""bytes":\#(expected.utf8.count)"#))
            #expect(access.contains(#""status":200"#))
        }
    }

    @Test func aHeadRequestGetsTheHeadAloneAndTheBodyIsNotRun() async throws {
        let observed = Observed()
        try await withServer(router: router(observed)) { port, _ in
            let client = try TestClient(port: port)
            try client.send("HEAD /chunks HTTP/1.1\r\nHost: test\r\n\r\n")
            let response = try client.readResponse(head: true)
            #expect(response.status == 200)
            #expect(response.header("transfer-encoding") == "chunked")
            try client.send(get("/health"))
            let next = try client.readResponse()
            #expect(next.status == 200 && next.bodyText == #"{"status":"ok"}"#, "nothing of a body came between")
            #expect(observed.calls.load(ordering: .relaxed) == 0)
        }
    }

    @Test func anHTTP10ClientGetsABodyThatEndsWithTheConnection() async throws {
        try await withServer(router: router()) { port, _ in
            let client = try TestClient(port: port)
            try client.send("GET /chunks HTTP/1.0\r\n\r\n")
            let raw = String(decoding: try client.readUntilClose(), as: UTF8.self)
            let parts = raw.components(separatedBy: "\r\n\r\n")
            #expect(parts.count == 2)
            #expect(parts[0].lowercased().contains("connection: close"))
            #expect(!parts[0].lowercased().contains("transfer-encoding"))
            #expect(parts.dropFirst().joined(separator: "\r\n\r\n") == "one,two," + String(repeating: "x", count: 40_000) + "three")
        }
    }

    @Test func aSizedStreamSendsItsLengthAndKeepsTheConnection() async throws {
        try await withServer(router: router()) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/sized?declared=10&actual=10"))
            let response = try client.readResponse()
            #expect(response.header("content-length") == "10")
            #expect(response.header("transfer-encoding") == nil)
            #expect(response.bodyText == "aaaaaaaaaa")
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func aSizedStreamThatEndsShortIsCutAndLogged() async throws {
        let log = CapturedLog()
        try await withServer(router: router(), log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/sized?declared=10&actual=4", "X-Request-ID: short-1\r\n"))
            #expect(throws: TestClient.Failure.self) { try client.readResponse() }
            try await waitUntil { log.lines.contains { $0.contains("short of its Content-Length") } }
            let line = try #require(log.lines.first { $0.contains("short of its Content-Length") })
            #expect(line.contains(#""request_id":"short-1""#))
        }
    }

    @Test func aSizedStreamThatWritesTooMuchIsStoppedAtTheLength() async throws {
        let observed = Observed()
        try await withServer(router: router(observed)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/sized?declared=3&actual=5"))
            let head = try client.readHead()
            #expect(head.header("content-length") == "3")
            #expect(String(decoding: try client.readUntilClose(), as: UTF8.self) == "aaa", "not a byte past the length")
            try await waitUntil { observed.ended.withLock { $0 } != nil }
            #expect(observed.ended.withLock { $0 }?.contains("more bytes than its Content-Length") == true)
        }
    }

    @Test func anErrorMidStreamIsATruncationOnTheWireAndLoggedWithTheRequestID() async throws {
        let log = CapturedLog()
        try await withServer(router: router(), log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/fail-midway", "X-Request-ID: midway-1\r\n"))
            let head = try client.readHead()
            #expect(head.header("transfer-encoding") == "chunked")
            #expect(try client.readChunk() == Array("partial".utf8))
            // No terminating chunk: the connection ends mid-body.
            #expect(throws: TestClient.Failure.self) { try client.readChunk() }
            try await waitUntil { log.lines.contains { $0.contains("response stream failed") } }
            let line = try #require(log.lines.first { $0.contains("response stream failed") })
            #expect(line.contains(#""request_id":"midway-1""#))
            #expect(line.contains(#""bytes":"7""#))
        }
    }

    @Test func anErrorBeforeAnythingIsSentIsAnsweredAsAHandlerError() async throws {
        let log = CapturedLog()
        try await withServer(router: router(), log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/fail-first", "X-Request-ID: first-1\r\n"))
            let failed = try client.readResponse()
            #expect(failed.status == 500)
            #expect(failed.bodyText == #"{"error":"internal server error","status":500}"#)
            try client.send(get("/refuse-first"))
            let refused = try client.readResponse()
            #expect(refused.status == 409)
            #expect(refused.bodyText.contains("not now"))
            try await waitUntil { log.lines.contains { $0.contains("handler failed") } }
            #expect(log.lines.contains { $0.contains("handler failed") && $0.contains("first-1") })
        }
    }

    @Test func aClientThatStopsReadingSuspendsTheProducerWithinTheSocketBuffers() async throws {
        let observed = Observed()
        try await withServer(router: router(observed), configure: { $0.writeTimeout = .seconds(30) }) { port, server in
            let client = try TestClient(port: port, timeout: 10)
            try client.send(get("/firehose"))
            _ = try client.readHead()
            // The client reads nothing more: the producer must stop once the socket buffers
            // are full, not go on queueing in the server.
            var last = -1
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(50))
                let now = observed.written.load(ordering: .relaxed)
                if now == last && now > 0 { break }
                last = now
            }
            let stalled = observed.written.load(ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(300))
            #expect(observed.written.load(ordering: .relaxed) == stalled, "the producer is suspended")
            // Loopback socket buffers hold a few MiB at most.
            #expect(stalled < 16 * 1024 * 1024, "\(stalled) bytes written to a client that reads nothing")
            // Reading lets it go on.
            for _ in 0..<64 { _ = try client.readChunk() }
            try await waitUntil { observed.written.load(ordering: .relaxed) > stalled }
            #expect(observed.written.load(ordering: .relaxed) > stalled)
            _ = server
        }
    }

    @Test func aWriteWithNoProgressForTheWriteTimeoutEndsTheStream() async throws {
        let observed = Observed()
        let log = CapturedLog()
        try await withServer(router: router(observed), log: log, configure: { $0.writeTimeout = .milliseconds(300) }) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/firehose"))
            _ = try client.readHead()
            try await waitUntil { observed.ended.withLock { $0 } != nil }
            #expect(observed.ended.withLock { $0 }?.contains("client is gone") == true)
            try await waitUntil { server.connectionCount == 0 }
            #expect(server.connectionCount == 0)
            #expect(!log.lines.contains { $0.contains("response stream failed") }, "a client that stops reading is not a server error")
        }
    }

    @Test func aClientThatLeavesMidStreamStopsTheProducerAtOnce() async throws {
        let observed = Observed()
        try await withServer(router: router(observed)) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/ticks?ms=10000"))
            _ = try client.readHead()
            _ = try client.readChunk()
            let closed = ContinuousClock.now
            shutdown(client.fd, Int32(SHUT_RDWR))
            try await waitUntil { observed.ended.withLock { $0 } != nil }
            #expect(observed.ended.withLock { $0 } == "CancellationError")
            let endedAt = try #require(observed.endedAt.withLock { $0 })
            #expect(endedAt - closed < .seconds(5), "not at the end of the 10 s sleep")
            try await waitUntil { server.connectionCount == 0 }
        }
    }

    @Test func eventStreamsSeeTheShutdownEndCleanlyAndTheDrainCompletes() async throws {
        let observed = Observed()
        let log = CapturedLog()
        let server = HTTPServer(
            configuration: testConfiguration { $0.drainLinger = .milliseconds(200) }, router: router(observed),
            logger: log.logger("server"), accessLogger: log.logger("access"))
        try server.start()
        let port = try #require(server.localAddress?.port)
        let clients = try (0..<5).map { _ in try TestClient(port: port) }
        for client in clients {
            try client.send(get("/ticks?ms=60000"))
            let head = try client.readHead()
            #expect(head.header("content-type") == "text/event-stream; charset=utf-8")
            #expect(String(decoding: try #require(try client.readChunk()), as: UTF8.self) == "id: 1\ndata: tick 1\n\n")
        }
        // The drain timeout is long, so that streams that missed the shutdown would be cut (and
        // counted below) rather than end on their own; the time bound is loose because the
        // shutdown's own polling shares the thread pool with the other suites.
        let started = ContinuousClock.now
        let result = await server.shutdown(drainTimeout: .seconds(60))
        #expect(result == DrainResult(closedAtDeadline: 0, cutRequests: 0, forced: false))
        #expect(ContinuousClock.now - started < .seconds(30), "the streams ended at the shutdown, not at the drain timeout")
        for client in clients {
            #expect(String(decoding: try #require(try client.readChunk()), as: UTF8.self) == "event: shutdown\ndata: bye\n\n")
            #expect(try client.readChunk() == nil, "the terminating chunk")
            #expect(client.isClosedByServer())
        }
        #expect(observed.ended.withLock { $0 } == "shutdown")
    }

    @Test func aStreamThatIgnoresTheShutdownIsCutAtTheDrainDeadline() async throws {
        let log = CapturedLog()
        let server = HTTPServer(
            configuration: testConfiguration { _ in }, router: router(), logger: log.logger("server"),
            accessLogger: log.logger("access"))
        try server.start()
        let port = try #require(server.localAddress?.port)
        let client = try TestClient(port: port)
        try client.send(get("/stubborn-stream", "X-Request-ID: stubborn-1\r\n"))
        _ = try client.readHead()
        _ = try client.readChunk()
        let result = await server.shutdown(drainTimeout: .milliseconds(300))
        #expect(result.closedAtDeadline == 1)
        #expect(result.cutRequests == 1)
        #expect(log.lines.contains { $0.contains("request cut") && $0.contains("stubborn-1") })
        #expect(!log.lines.contains { $0.contains("response stream failed") })
    }

    @Test func streamedBytesAndTheWholeDurationReachTheMetrics() async throws {
        let metrics = TestMetrics()
        var router = testRouter()
        router.get("/slow-stream") { _ in
            Response { writer in
                try await writer.write("a")
                try await writer.sleep(for: .milliseconds(400))
                try await writer.write("b")
            }
        }
        try await withServer(router: router, metrics: metrics) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/slow-stream"))
            // In flight while it streams: the first piece is out, the second not yet.
            _ = try client.readHead()
            #expect(try client.readChunk() == Array("a".utf8))
            await server.collectMetrics()
            #expect(metrics.value(ServerMetrics.Name.requestsInFlight) == 1)
            #expect(try client.readChunk() == Array("b".utf8))
            #expect(try client.readChunk() == nil)
            await server.collectMetrics()
            #expect(metrics.value(ServerMetrics.Name.requestsInFlight) == 0)
            let durations = metrics.recorded(ServerMetrics.Name.requestDuration, ["route": "/slow-stream"])
            #expect(durations.count == 1)
            #expect((durations.first ?? 0) >= 400_000_000, "the duration covers the whole stream")
            #expect((metrics.value(ServerMetrics.Name.sentBytes) ?? 0) > 2)
        }
    }
}

@Suite struct ServerSentEventTests {
    @Test func fieldsAndMultilineData() {
        let event = ServerSentEvent(data: "a\nb\r\nc\rd", event: "update", id: "7", retryMilliseconds: 1500)
        #expect(String(decoding: event.encoded, as: UTF8.self) == "event: update\nid: 7\nretry: 1500\ndata: a\ndata: b\ndata: c\ndata: d\n\n")
    }

    @Test func emptyDataIsOneEmptyDataLine() {
        #expect(String(decoding: ServerSentEvent(data: "").encoded, as: UTF8.self) == "data: \n\n")
    }

    @Test func lineBreaksInTheEventOrIdCannotStartAField() {
        let event = ServerSentEvent(data: "x", event: "a\ndata: forged", id: "1\r\nretry: 1\u{0}")
        #expect(String(decoding: event.encoded, as: UTF8.self) == "event: a data: forged\nid: 1  retry: 1 \ndata: x\n\n")
    }

    @Test func commentsAreHeartbeatsOnEveryLine() {
        #expect(String(decoding: ServerSentEvent.comment("keep\nalive"), as: UTF8.self) == ": keep\n: alive\n\n")
        #expect(String(decoding: ServerSentEvent.comment(""), as: UTF8.self) == ":\n\n")
    }

    @Test func aStreamCollectsInProcess() async throws {
        var router = Router()
        router.get("/three") { _ in
            .eventStream { events in
                for n in 1...3 { try await events.send(ServerSentEvent(data: "\(n)")) }
            }
        }
        let response = await router.respond(to: Request("GET", "/three"))
        #expect(response.headers["content-type"] == "text/event-stream; charset=utf-8")
        #expect(String(decoding: try await response.collectBody(), as: UTF8.self) == "data: 1\n\ndata: 2\n\ndata: 3\n\n")
        let head = await router.respond(to: Request("HEAD", "/three"))
        #expect(head.stream == nil)
    }

    @Test func collectingEnforcesTheLengthAndTheLimit() async throws {
        let short = Response(contentLength: 5) { try await $0.write("abc") }
        await #expect(throws: ResponseStreamError(kind: .lengthShort, bytesWritten: 3)) { try await short.collectBody() }
        let long = Response(contentLength: 2) { try await $0.write("abc") }
        await #expect(throws: ResponseStreamError(kind: .lengthExceeded, bytesWritten: 0)) { try await long.collectBody() }
        let big = Response { try await $0.write([UInt8](repeating: 0, count: 100)) }
        await #expect(throws: ResponseStreamError(kind: .tooLarge, bytesWritten: 0)) { try await big.collectBody(maxBytes: 10) }
    }
}
