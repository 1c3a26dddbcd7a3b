import Foundation
import Testing
@testable import ServiceKit

/// End-to-end: limits, timeouts, malformed input and hostile clients, with small configured
/// values so each runs in well under a second or two.
@Suite struct HTTPServerLimitsTests {
    /// Sends `request` on a new connection and returns the response, which must close the connection.
    func refusal(_ request: String, port: Int) throws -> TestClient.Response {
        let client = try TestClient(port: port)
        try client.send(request)
        let response = try client.readResponse()
        #expect(response.header("Connection") == "close", "a refused request closes the connection")
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.bodyText.contains(#""status":\#(response.status)"#))
        #expect(client.isClosedByServer())
        return response
    }

    @Test func malformedRequestsGetTheRightStatusAndAClose() async throws {
        let cases: [(String, Int)] = [
            ("GET /health HTTP/1.1\r\n\r\n", 400),  // no Host
            ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3x\r\n\r\nabc", 400),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost : t\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\nX-A: a\u{0}b\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHo(st: t\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\n  folded\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            ("GET /health HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            ("GET /health HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n", 417),
        ]
        try await withServer { port, _ in
            for (request, status) in cases {
                let response = try refusal(request, port: port)
                #expect(response.status == status, "\(request.debugDescription)")
            }
        }
    }

    @Test func oversizedRequestLineIs414AndHeaderSectionIs431() async throws {
        try await withServer(configure: { $0.maxHeaderBytes = 2048 }) { port, _ in
            let longTarget = "/" + String(repeating: "a", count: 3000)
            #expect(try refusal("GET \(longTarget) HTTP/1.1\r\nHost: t\r\n\r\n", port: port).status == 414)
            let bigHeader = "X-Big: " + String(repeating: "b", count: 3000) + "\r\n"
            #expect(try refusal("GET /health HTTP/1.1\r\nHost: t\r\n\(bigHeader)\r\n", port: port).status == 431)
            // Just under the limit is fine.
            let client = try TestClient(port: port)
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\nX-Ok: \(String(repeating: "c", count: 1800))\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func oversizedHeaderWithoutEndIs431WithoutWaitingForTheRest() async throws {
        try await withServer(configure: { $0.maxHeaderBytes = 1024 }) { port, _ in
            let client = try TestClient(port: port)
            // The header section never ends; the server answers once the limit is passed.
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\nX-Endless: " + String(repeating: "x", count: 5000))
            let response = try client.readResponse()
            #expect(response.status == 431)
        }
    }

    @Test func bodyOverTheLimitIs413BeforeItIsRead() async throws {
        try await withServer(configure: { $0.maxBodyBytes = 100 }) { port, _ in
            // Content-Length over the limit: refused from the head alone, body never sent.
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.header("Connection") == "close")

            // Chunked: refused as soon as the chunk sizes add up past the limit.
            let chunked = try TestClient(port: port)
            try chunked.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n\(String(repeating: "a", count: 64))\r\n40\r\n")
            #expect(try chunked.readResponse().status == 413)

            // At the limit is fine.
            let ok = try TestClient(port: port)
            try ok.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n\(String(repeating: "z", count: 100))")
            #expect(try ok.readResponse().body.count == 100)
        }
    }

    @Test func readHeaderTimeoutClosesASlowClient() async throws {
        try await withServer(configure: { $0.readHeaderTimeout = .milliseconds(300) }) { port, _ in
            let client = try TestClient(port: port, timeout: 3)
            try client.send("GET /health HTTP/1.1\r\nHo")
            let started = ContinuousClock.now
            let response = try client.readResponse()
            let waited = ContinuousClock.now - started
            #expect(response.status == 408)
            #expect(client.isClosedByServer())
            #expect(waited >= .milliseconds(250), "closed after \(waited)")
            #expect(waited < .seconds(2.5), "closed after \(waited)")
        }
    }

    @Test func readHeaderTimeoutAppliesToAConnectionThatSendsNothing() async throws {
        try await withServer(configure: { $0.readHeaderTimeout = .milliseconds(200); $0.idleTimeout = .seconds(30) }) { port, _ in
            let client = try TestClient(port: port, timeout: 3)
            // No bytes, no response: just a close.
            #expect(try client.readUntilClose().isEmpty)
        }
    }

    @Test func idleTimeoutClosesAKeepAliveConnection() async throws {
        try await withServer(configure: { $0.idleTimeout = .milliseconds(300) }) { port, server in
            let client = try TestClient(port: port, timeout: 3)
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
            let started = ContinuousClock.now
            #expect(try client.readUntilClose().isEmpty)
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(250), "closed after \(waited)")
            #expect(waited < .seconds(2.5), "closed after \(waited)")
        }
    }

    @Test func bodyReadTimeoutGives408() async throws {
        try await withServer(configure: { $0.readTimeout = .milliseconds(300) }) { port, _ in
            let client = try TestClient(port: port, timeout: 3)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            #expect(try client.readResponse().status == 408)
        }
    }

    @Test func writeTimeoutClosesAClientThatDoesNotRead() async throws {
        try await withServer(configure: { $0.writeTimeout = .milliseconds(300) }) { port, server in
            let client = try TestClient(port: port)
            // 32 MiB cannot fit in the socket buffers; the client never reads any of it.
            try client.send(get("/big?kib=32768"))
            // Long enough for the server to fill the socket buffers and give up after 300 ms.
            try await Task.sleep(for: .seconds(1))
            var open = server.connectionCount
            for _ in 0..<300 where open > 0 {
                try await Task.sleep(for: .milliseconds(10))
                open = server.connectionCount
            }
            #expect(open == 0, "the server closed the connection it could not write to")
            // The close was a reset: the kernel dropped what was queued instead of keeping
            // megabytes for a client that does not read, so the client sees the end at once.
            let started = ContinuousClock.now
            let received = try client.readUntilClose()
            #expect(received.count < 32 * 1024 * 1024)
            #expect(ContinuousClock.now - started < .seconds(4))
        }
    }

    @Test func aLargeResponseReachesAClientThatReads() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/big?kib=4096"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.body.count == 4096 * 1024)
        }
    }

    @Test func connectionsPastTheCapGet503AndTheServerKeepsServing() async throws {
        try await withServer(configure: { $0.maxConnections = 2 }) { port, server in
            let first = try TestClient(port: port)
            let second = try TestClient(port: port)
            try first.send(get("/health"))
            try second.send(get("/health"))
            #expect(try first.readResponse().status == 200)
            #expect(try second.readResponse().status == 200)

            let third = try TestClient(port: port)
            try? third.send(get("/health"))
            let refused = try third.readResponse()
            #expect(refused.status == 503)
            #expect(refused.header("Connection") == "close")

            // Once one closes, new connections are served again.
            try first.send(get("/health", "Connection: close\r\n"))
            _ = try first.readResponse()
            #expect(first.isClosedByServer())
            var served = false
            for _ in 0..<50 where !served {
                let next = try TestClient(port: port)
                try? next.send(get("/health"))
                served = (try? next.readResponse().status) == 200
                if !served { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(served)
        }
    }

    @Test func clientsVanishingMidRequestDoNotDisturbOthers() async throws {
        try await withServer { port, server in
            for partial in [
                "GET /hea",
                "GET /health HTTP/1.1\r\nHost: t\r\n",
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part",
                "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
            ] {
                do {
                    let client = try TestClient(port: port)
                    try client.send(partial)
                }  // closed here, mid-request
                let healthy = try TestClient(port: port)
                try healthy.send(get("/health"))
                #expect(try healthy.readResponse().status == 200)
            }
            // Every vanished connection is cleaned up.
            var open = server.connectionCount
            for _ in 0..<100 where open > 0 {
                try await Task.sleep(for: .milliseconds(10))
                open = server.connectionCount
            }
            #expect(open == 0)
        }
    }

    @Test func garbageAndTLSOnThePlainPortGet400() async throws {
        // The first bytes of a TLS 1.2 ClientHello.
        let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03] + Array(repeating: 0x41, count: 64) + [0x0D, 0x0A, 0x0D, 0x0A]
        try await withServer { port, _ in
            for bytes in [clientHello, Array("\u{1}\u{2}garbage\r\n\r\n".utf8), Array("HELLO\r\n\r\n".utf8)] {
                let client = try TestClient(port: port)
                try client.send(bytes)
                let response = try client.readResponse()
                #expect(response.status == 400)
                #expect(client.isClosedByServer())
            }
            let healthy = try TestClient(port: port)
            try healthy.send(get("/health"))
            #expect(try healthy.readResponse().status == 200)
        }
    }

    @Test func smuggledRequestInsideABodyIsNeverParsed() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            let inner = "GET /path/smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
            // The inner request is body data of a chunked POST, then a real request follows.
            let chunk = String(inner.utf8.count, radix: 16)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\(chunk)\r\n\(inner)\r\n0\r\n\r\n" + get("/path/real"))
            #expect(try client.readResponse().bodyText == inner)
            #expect(try client.readResponse().bodyText == "id=real q=-")
        }
    }

    @Test func startFailsCleanlyWhenThePortIsTaken() async throws {
        try await withServer { port, _ in
            var configuration = ServerConfiguration()
            configuration.host = "127.0.0.1"
            configuration.port = port
            let second = HTTPServer(configuration: configuration, router: Router(), logger: CapturedLog().logger("x"))
            let error = #expect(throws: SystemError.self) { try second.start() }
            #expect(error?.errno == EADDRINUSE)
            #expect(error?.call == "bind")
        }
    }
}
