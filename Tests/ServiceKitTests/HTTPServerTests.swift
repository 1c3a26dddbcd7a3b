import Foundation
import Testing
@testable import ServiceKit

/// End-to-end: the real server on port 0, spoken to over raw sockets.
@Suite struct HTTPServerTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            for _ in 0..<3 {
                try client.send(get("/health"))
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.bodyText == #"{"status":"ok"}"#)
                #expect(response.header("Connection") == nil)
            }
        }
    }

    @Test func everyResponseHasDateContentLengthAndRequestID() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            for path in ["/health", "/nope", "/fail", "/path/7"] {
                try client.send(get(path))
                let response = try client.readResponse()
                #expect(response.header("Date")?.hasSuffix(" GMT") == true, "\(path)")
                #expect(response.header("Content-Length") == String(response.body.count), "\(path)")
                let id = try #require(response.header("X-Request-ID"), "\(path)")
                #expect(id.count == 13 && id.allSatisfy { "0123456789abcdefghjkmnpqrstvwxyz".contains($0) }, "\(path): \(id)")
            }
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/path/1") + get("/slow?ms=50") + get("/path/3") + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nfour" + get("/path/5"))
            #expect(try client.readResponse().bodyText == "id=1 q=-")
            #expect(try client.readResponse().bodyText == "slept 50")
            #expect(try client.readResponse().bodyText == "id=3 q=-")
            #expect(try client.readResponse().bodyText == "four")
            #expect(try client.readResponse().bodyText == "id=5 q=-")
        }
    }

    @Test func contentLengthAndChunkedBodiesReachTheHandler() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world")
            #expect(try client.readResponse().bodyText == "hello world")
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: yes\r\n\r\n")
            #expect(try client.readResponse().bodyText == "hello world")
            // The body arrives in pieces, with pauses between them.
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab")
            try await Task.sleep(for: .milliseconds(30))
            try client.send("c\r\n0\r")
            try await Task.sleep(for: .milliseconds(30))
            try client.send("\n\r\n")
            #expect(try client.readResponse().bodyText == "abc")
        }
    }

    @Test func expectContinueGetsAnInterimResponseBeforeTheBody() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            let interim = try client.readResponse()
            #expect(interim.status == 100)
            try client.send("abc")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == "abc")
        }
    }

    /// An empty Expect expects nothing, as in Go: no interim response, no 417.
    @Test func anEmptyExpectIsIgnored() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect:\r\n\r\nabc")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == "abc")
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: \t\r\n\r\nhi")
            #expect(try client.readResponse().bodyText == "hi")
        }
    }

    @Test func expectContinueWithATooLargeBodyGets413WithoutAContinue() async throws {
        try await withServer(configure: { $0.maxBodyBytes = 10 }) { port, _ in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.header("Connection") == "close")
        }
    }

    @Test func headHasTheLengthOfGetButNoBody() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send("HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try client.readResponse(head: true)
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "15")
            // No body bytes followed: the next response parses cleanly.
            try client.send(get("/path/2"))
            #expect(try client.readResponse().bodyText == "id=2 q=-")
        }
    }

    @Test func http10ClosesUnlessKeepAliveIsAsked() async throws {
        try await withServer { port, _ in
            let plain = try TestClient(port: port)
            try plain.send("GET /health HTTP/1.0\r\n\r\n")
            let response = try plain.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(plain.isClosedByServer())

            let keepAlive = try TestClient(port: port)
            try keepAlive.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(try keepAlive.readResponse().header("Connection") == "keep-alive")
            try keepAlive.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(try keepAlive.readResponse().status == 200)
        }
    }

    @Test func connectionCloseIsHonoured() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/health", "Connection: close\r\n"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(client.isClosedByServer())
        }
    }

    @Test func absoluteFormTargetsAreRouted() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send("GET http://example.com/path/9?q=x HTTP/1.1\r\nHost: example.com\r\n\r\n")
            #expect(try client.readResponse().bodyText == "id=9 q=x")
        }
    }

    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/missing"))
            let missing = try client.readResponse()
            #expect(missing.status == 404)
            #expect(missing.header("Content-Type") == "application/json")
            #expect(missing.bodyText == #"{"error":"not found","status":404}"#)
            try client.send("DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n")
            let wrongMethod = try client.readResponse()
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("Allow") == "GET, HEAD")
            // Neither closes the connection: the stream is still in step.
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
    }

    /// Another spelling of a registered path is not that path: a front proxy's exact-path rule
    /// (nginx's `location = /metrics { deny all; }`) is not bypassed by `/metrics/`.
    @Test func otherSpellingsOfAPathAre404() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            for path in ["/health/", "//health", "/health//", "/./health", "/h%65alth", "/path/", "/path//"] {
                try client.send(get(path))
                #expect(try client.readResponse().status == 404, "\(path)")
            }
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
    }

    /// OPTIONS * asks about the server as a whole (RFC 9110 §9.3.7); Go's server answers 200
    /// with an empty body, and so does this one.
    @Test func optionsAsteriskIs200WithAnEmptyBody() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Content-Length") == "0")
            #expect(response.body.isEmpty)
            // OPTIONS on a path is routed like any other method.
            try client.send("OPTIONS /health HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 405)
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func aThrowingHandlerGives500AndTheConnectionSurvives() async throws {
        let log = CapturedLog()
        try await withServer(log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/fail", "X-Request-ID: trace-1\r\n"))
            let response = try client.readResponse()
            #expect(response.status == 500)
            #expect(response.bodyText == #"{"error":"internal server error","status":500}"#)
            try client.send(get("/teapot"))
            let teapot = try client.readResponse()
            #expect(teapot.status == 418)
            #expect(teapot.bodyText.contains("short and stout"))
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
        let errorLines = log.lines.filter { $0.contains(#""msg":"handler failed""#) }
        #expect(errorLines.count == 1)
        #expect(errorLines.first?.contains(#""request_id":"trace-1""#) == true)
        #expect(errorLines.first?.contains(#""level":"error""#) == true)
    }

    @Test func requestIDsAreEchoedWhenSaneAndReplacedOtherwise() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/health", "X-Request-ID: abc-123_DEF.4\r\n"))
            #expect(try client.readResponse().header("X-Request-ID") == "abc-123_DEF.4")
            try client.send(get("/health", "X-Request-ID: has space\"quote\r\n"))
            let replaced = try client.readResponse().header("X-Request-ID")
            #expect(replaced != nil && replaced != "has space\"quote")
            #expect(replaced?.count == 13)
            try client.send(get("/health", "X-Request-ID: \(String(repeating: "a", count: 129))\r\n"))
            #expect(try client.readResponse().header("X-Request-ID")?.count == 13)
        }
    }

    @Test func accessLogHasOneLinePerRequestWithTheFields() async throws {
        let log = CapturedLog()
        try await withServer(log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/path/42?q=1", "User-Agent: tester/1.0\r\nX-Request-ID: req-42\r\n"))
            _ = try client.readResponse()
        }
        let lines = log.lines.filter { $0.contains(#""logger":"access""#) }
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["method"] as? String == "GET")
        #expect(object["path"] as? String == "/path/42")
        #expect(object["status"] as? Int == 200)
        #expect(object["bytes"] as? Int == 9)
        #expect(object["remote"] as? String == "127.0.0.1")
        #expect(object["request_id"] as? String == "req-42")
        #expect(object["user_agent"] as? String == "tester/1.0")
        #expect((object["duration_ms"] as? Double).map { $0 >= 0 } == true)
    }

    @Test func accessLogCanBeTurnedOff() async throws {
        let log = CapturedLog()
        try await withServer(log: log, configure: { $0.accessLog = false }) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
        #expect(log.lines.filter { $0.contains(#""logger":"access""#) }.isEmpty)
    }

    @Test func invalidResponseHeadersFromAHandlerAreDroppedNotSent() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/bad-header"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("X-Evil") == nil)
            #expect(response.header("Set-Cookie") == nil)
            #expect(response.bodyText == "ok")
        }
    }

    @Test func noContentHasNoBody() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/empty") + get("/health"))
            #expect(try client.readResponse().status == 204)
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func twoHundredConcurrentConnectionsAreAllServed() async throws {
        try await withServer { port, _ in
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var clients: [TestClient] = []
                        for _ in 0..<25 { clients.append(try TestClient(port: port)) }
                        for (i, client) in clients.enumerated() { try client.send(get("/path/\(worker * 25 + i)")) }
                        return try clients.map { try $0.readResponse().status }
                    }
                }
                var all: [Int] = []
                for try await statuses in group { all += statuses }
                return all
            }
            #expect(statuses.count == 200)
            #expect(statuses.allSatisfy { $0 == 200 })
        }
    }

    @Test func aSlowHandlerDoesNotHoldUpOtherConnections() async throws {
        let gate = Gate()
        try await withServer(router: testRouter(gate: gate), configure: { $0.eventLoops = 1 }) { port, _ in
            let slow = try TestClient(port: port)
            try slow.send(get("/gate"))
            try await gate.waitForArrivals(1)
            // On the same (single) loop, other clients are answered while the first handler waits.
            for _ in 0..<3 {
                let fast = try TestClient(port: port)
                try fast.send(get("/health"))
                #expect(try fast.readResponse().status == 200)
            }
            gate.open()
            #expect(try slow.readResponse().bodyText == "through the gate")
        }
    }
}
