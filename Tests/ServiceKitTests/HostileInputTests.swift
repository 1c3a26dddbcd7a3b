import Foundation
import Testing
@testable import ServiceKit

/// End-to-end: what the internet sends. Oversized elements are refused while they are still
/// arriving (never buffered whole), conflicting framing never lets a request hide in another's
/// body, and nothing a client sends can forge or bloat a log line.
@Suite struct HostileInputTests {
    /// Small limits so each case is cheap: 1 KiB header section (and trailer section and
    /// request line), 4 KiB bodies; the chunk-size line limit is the default 1 KiB.
    static func small(_ configuration: inout ServerConfiguration) {
        configuration.maxHeaderBytes = 1024
        configuration.maxBodyBytes = 4096
    }

    /// 64 KiB of `filler`, far past every limit above, in pieces. The element it belongs to
    /// never ends: a server that waited for its end before judging it would never answer.
    static func endless(_ filler: String) -> [String] {
        Array(repeating: String(repeating: filler, count: 4096 / filler.utf8.count), count: 16)
    }

    static let oversized: [(name: String, start: String, rest: [String], status: Int)] = [
        ("request line", "GET /", endless("a"), 414),
        ("header field value", "GET /health HTTP/1.1\r\nHost: t\r\nX-Endless: ", endless("x"), 431),
        ("header field count", "GET /health HTTP/1.1\r\nHost: t\r\n", endless("A: b\r\n"), 431),
        ("chunk size (digits)", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", endless("1"), 413),
        ("chunk size (leading zeros)", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", endless("0"), 400),
        ("chunk extension", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=", endless("e"), 400),
        ("trailer field value", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ", endless("y"), 431),
        ("trailer field count", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", endless("T: y\r\n"), 431),
        ("chunked body", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", endless("10\r\n0123456789abcdef\r\n"), 413),
        ("declared body", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n\r\n", endless("z"), 413),
    ]

    @Test(arguments: oversized)
    func oversizedElementsAreRefusedWhileStillArriving(name: String, start: String, rest: [String], status: Int) async throws {
        try await withServer(configure: Self.small) { port, _ in
            let client = try TestClient(port: port)
            try client.send(start)
            // The answer may come after any piece; a send can then meet the closed socket.
            for piece in rest { try? client.send(piece) }
            let response = try client.readResponse()
            #expect(response.status == status, "\(name)")
            #expect(response.header("Connection") == "close", "\(name)")
            #expect(client.isClosedByServer(), "\(name)")
            // The refusal costs the server nothing lasting: the next client is served.
            let next = try TestClient(port: port)
            try next.send(get("/health"))
            #expect(try next.readResponse().status == 200, "\(name)")
        }
    }

    /// Requests whose framing two parsers could read two ways (RFC 9112 §6.3, §11.2). Each is
    /// followed, in the same write, by a request that must never be answered: after a framing
    /// error the stream's request boundaries cannot be trusted, so the server answers once and
    /// closes.
    static let conflictingFraming: [(name: String, request: String, status: Int)] = [
        ("Content-Length and Transfer-Encoding",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding before Content-Length",
         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
        ("two different Content-Lengths",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello", 400),
        ("a Content-Length list that disagrees",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0, 5\r\n\r\nhello", 400),
        ("a signed Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello", 400),
        ("a hex Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello", 400),
        ("a negative Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
        ("Content-Length with inner space", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1 2\r\n\r\n", 400),
        ("Content-Length 2 and 02", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nhi", 400),
        ("an identical Content-Length list", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2, 2\r\n\r\nhi", 400),
        ("chunked twice", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("an empty element before chunked", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 400),
        ("an empty element after chunked", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, \r\n\r\n0\r\n\r\n", 400),
        ("chunked not last", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 501),
        ("an unknown coding", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
        ("Transfer-Encoding in HTTP/1.0", "POST /echo HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("a space before the colon", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
        ("an obs-fold continuation", "POST /echo HTTP/1.1\r\nHost: t\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("a bare CR in a field", "POST /echo HTTP/1.1\r\nHost: t\r\nX-A: a\rContent-Length: 5\r\n\r\nhello", 400),
        ("a chunk longer than its size", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", 400),
        ("a chunk size with a space inside", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1 0\r\nabcdef\r\n0\r\n\r\n", 400),
        ("a chunk size with a sign", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", 400),
    ]

    @Test(arguments: conflictingFraming)
    func conflictingFramingIsRefusedAndNothingAfterItIsParsed(name: String, request: String, status: Int) async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(request + get("/path/smuggled"))
            let response = try client.readResponse()
            #expect(response.status == status, "\(name)")
            #expect(response.header("Connection") == "close", "\(name)")
            // Nothing follows the refusal: the smuggled request was never read as a request.
            #expect(client.isClosedByServer(), "\(name)")
        }
    }

    /// Host = uri-host [ ":" port ] (RFC 9112 §3.2): anything else is a 400 and a close, as
    /// are a missing Host in 1.1 and a second Host.
    @Test(arguments: [
        "Host: a b\r\n", "Host: a, b\r\n", "Host: a\tb\r\n", "Host: a:80:80\r\n", "Host: a:99999\r\n",
        "Host: [::1\r\n", "Host: user@a\r\n", "Host: a\u{01}\r\n", "", "Host: a\r\nHost: a\r\n",
    ])
    func anInvalidMissingOrSecondHostIsRefused(fields: String) async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send("GET /health HTTP/1.1\r\n\(fields)\r\n" + get("/path/smuggled"))
            let response = try client.readResponse()
            #expect(response.status == 400, "\(fields.debugDescription)")
            #expect(client.isClosedByServer(), "\(fields.debugDescription)")
        }
    }

    @Test func aValidHostIsServed() async throws {
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            for host in ["example.com", "example.com:8080", "127.0.0.1:80", "[::1]:8080", ""] {
                try client.send("GET /health HTTP/1.1\r\nHost: \(host)\r\n\r\n")
                #expect(try client.readResponse().status == 200, "\(host)")
            }
        }
    }

    @Test func aHostilePipelineStaysInStep() async throws {
        // Valid requests whose bodies look like requests, in one write: every body is read by
        // its own framing, so exactly four responses come back, in order, with these bodies.
        let inner = "GET /path/inner HTTP/1.1\r\nHost: t\r\n\r\n"
        let chunks = "\(String(inner.utf8.count, radix: 16));ext=\"q\"\r\n\(inner)\r\n0\r\nTrailer-A: x\r\n\r\n"
        let pipeline =
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(inner.utf8.count)\r\n\r\n\(inner)"
            + "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\(chunks)"
            + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
            + get("/path/last")
        try await withServer { port, _ in
            let client = try TestClient(port: port)
            try client.send(pipeline)
            #expect(try client.readResponse().bodyText == inner)
            #expect(try client.readResponse().bodyText == inner)
            #expect(try client.readResponse().body.isEmpty)
            #expect(try client.readResponse().bodyText == "id=last q=-")
            // And the connection is still open and in step for one more.
            try client.send(get("/path/after"))
            #expect(try client.readResponse().bodyText == "id=after q=-")
        }
    }

    /// Bytes a client controls that could break a log line: quotes, backslashes, control
    /// bytes, invalid UTF-8, and a value far over the handler's 4 KiB cut.
    @Test func clientBytesCannotForgeOrBloatALogLine() async throws {
        let log = CapturedLog()
        // Control bytes in a field value are refused by the parser (RFC 9110 §5.5), so they
        // never reach a log line from there; the refusal is logged instead.
        let userAgents: [(bytes: [UInt8], status: Int)] = [
            (Array(#"evil" , "level":"critical"#.utf8), 200),
            (Array(#"back\slash \"quote\""#.utf8), 200),
            ([UInt8(ascii: "a"), 0x01, 0x1B, UInt8(ascii: "["), UInt8(ascii: "2"), UInt8(ascii: "J"), UInt8(ascii: "b")], 400),
            ([UInt8(ascii: "a"), 0x7F, UInt8(ascii: "b")], 400),
            ([UInt8(ascii: "x"), 0xFF, 0xFE, 0xC3, UInt8(ascii: "y")], 200),  // obs-text, not UTF-8
            (Array(String(repeating: "L", count: 20_000).utf8), 200),
        ]
        let paths = ["/path/%0d%0a%22level%22", "/path/a%22b\\c", "/health?q=\"}{\"x\":1"]
        try await withServer(log: log, configure: { $0.maxHeaderBytes = 32 * 1024 }) { port, _ in
            for agent in userAgents {
                let client = try TestClient(port: port)
                try client.send(Array("GET /health HTTP/1.1\r\nHost: t\r\nUser-Agent: ".utf8) + agent.bytes + Array("\r\n\r\n".utf8))
                #expect(try client.readResponse().status == agent.status, "\(agent.bytes.prefix(10))")
            }
            for path in paths {
                // Each on its own connection: a target the parser refuses closes it.
                let other = try TestClient(port: port)
                try other.send(get(path))
                _ = try other.readResponse()
            }
            // A raw CR LF in a field is a framing error: refused, and logged as one line too.
            let refused = try TestClient(port: port)
            try refused.send("GET /health HTTP/1.1\r\nHost: t\r\nUser-Agent: a\r\r\nX: {\"level\":\"critical\"}\r\n\r\n")
            #expect(try refused.readResponse().status == 400)
        }
        let lines = log.lines
        var accessLines = 0
        for line in lines {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not one JSON object: \(line)")
            // No client bytes ever reach a level or a message.
            #expect(["info", "debug", "notice", "warning", "error"].contains(object["level"] as? String), "\(line)")
            // 4 KiB per value plus its JSON escapes and the other fields, never 20 KB.
            #expect(line.utf8.count < 4096 * 6 + 1024, "line of \(line.utf8.count) bytes")
            if object["logger"] as? String == "access" { accessLines += 1 }
        }
        // One access line per request (5 user agents, 3 paths, 1 refusal): none split, none forged.
        #expect(accessLines == userAgents.count + paths.count + 1)
        let agents = lines.compactMap { line -> String? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return object["user_agent"] as? String
        }
        #expect(agents.contains(#"evil" , "level":"critical"#))
        #expect(agents.contains(#"back\slash \"quote\""#))
        #expect(agents.contains("x\u{FFFD}\u{FFFD}\u{FFFD}y"))
        let long = try #require(agents.first { $0.hasPrefix("LLLL") })
        #expect(long.utf8.count <= 4096 + 3, "the 20 KB value is cut, got \(long.utf8.count) bytes")
        #expect(long.utf8.count >= 4000)
    }
}
