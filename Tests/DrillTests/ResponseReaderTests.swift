// The response reader and classifier on canned byte streams: what the server sends (or fails to
// send) decides ok, unanswered, truncated, timeout or error.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import Drill

@Suite struct ResponseParserTests {
    @Test func completeKeepAliveResponse() {
        let bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}".utf8)
        #expect(ResponseParser.parse(bytes, atEndOfStream: false)
            == .complete(ParsedResponse(status: 200, close: false), consumed: bytes.count))
    }

    @Test func connectionCloseInAnyCaseAndList() {
        let bytes = Array("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nConnection: Keep-Alive, CLOSE\r\n\r\n".utf8)
        #expect(ResponseParser.parse(bytes, atEndOfStream: false)
            == .complete(ParsedResponse(status: 200, close: true), consumed: bytes.count))
    }

    @Test func http10WithoutKeepAliveCloses() {
        let closing = Array("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
        #expect(ResponseParser.parse(closing, atEndOfStream: false)
            == .complete(ParsedResponse(status: 200, close: true), consumed: closing.count))
        let kept = Array("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n".utf8)
        #expect(ResponseParser.parse(kept, atEndOfStream: false)
            == .complete(ParsedResponse(status: 200, close: false), consumed: kept.count))
    }

    @Test func incompleteHeadAndBody() {
        #expect(ResponseParser.parse(Array("HTTP/1.1 200 OK\r\nContent-Le".utf8), atEndOfStream: false) == .incomplete)
        #expect(ResponseParser.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab".utf8), atEndOfStream: false) == .incomplete)
        #expect(ResponseParser.parse([], atEndOfStream: false) == .incomplete)
    }

    @Test func chunkedBody() {
        let full = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nTrailer: v\r\n\r\n".utf8)
        #expect(ResponseParser.parse(full, atEndOfStream: false)
            == .complete(ParsedResponse(status: 200, close: false), consumed: full.count))
        for cut in [full.count - 1, full.count - 12, 60] {
            #expect(ResponseParser.parse(Array(full[..<cut]), atEndOfStream: false) == .incomplete, "cut at \(cut)")
        }
    }

    @Test func bodyUntilCloseIsCompleteOnlyAtEndOfStream() {
        let bytes = Array("HTTP/1.1 200 OK\r\n\r\npartial or whole".utf8)
        #expect(ResponseParser.parse(bytes, atEndOfStream: false) == .incomplete)
        #expect(ResponseParser.parse(bytes, atEndOfStream: true)
            == .complete(ParsedResponse(status: 200, close: true), consumed: bytes.count))
    }

    @Test func interimResponsesAreSkippedAndNoBodyStatuses() {
        let bytes = Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n".utf8)
        #expect(ResponseParser.parse(bytes, atEndOfStream: false)
            == .complete(ParsedResponse(status: 204, close: false), consumed: bytes.count))
    }

    @Test func garbageIsInvalid() {
        #expect(ResponseParser.parse(Array("SSH-2.0-OpenSSH\r\n".utf8), atEndOfStream: false) == .invalid("bad status line"))
        #expect(ResponseParser.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".utf8), atEndOfStream: false)
            == .invalid("bad Content-Length"))
        #expect(ResponseParser.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".utf8), atEndOfStream: false)
            == .invalid("conflicting Content-Length"))
    }
}

@Suite struct ResponseReaderTests {
    @Test func completeResponse() {
        let result = readCanned("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}", thenClose: false)
        #expect(result == .response(ParsedResponse(status: 200, close: false)))
        #expect(Outcome(result) == .ok(close: false))
    }

    @Test func responseWithConnectionClose() {
        let result = readCanned("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        #expect(Outcome(result) == .ok(close: true))
    }

    @Test func eofBeforeAnyByteIsUnanswered() {
        let result = readCanned("")
        #expect(result == .unanswered(.eof))
        #expect(Outcome(result) == .unanswered)
    }

    @Test func eofMidHeadersIsTruncated() {
        let result = readCanned("HTTP/1.1 200 OK\r\nContent-Len")
        #expect(result == .truncated(.eof))
        #expect(Outcome(result) == .truncated)
    }

    @Test func eofMidBodyIsTruncated() {
        let result = readCanned("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":")
        #expect(Outcome(result) == .truncated)
    }

    @Test func eofMidChunkedBodyIsTruncated() {
        let result = readCanned("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        #expect(Outcome(result) == .truncated)
    }

    @Test func non2xxIsAnError() {
        let result = readCanned("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        #expect(Outcome(result) == .error("status 503"))
        #expect(Outcome(readCanned("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")) == .error("status 404"))
    }

    @Test func unframeableBytesAreAnError() {
        let result = readCanned("hello\r\n\r\n")
        #expect(Outcome(result) == .error("bad response: bad status line"))
    }

    @Test func silenceIsATimeout() {
        let started = monotonicNanoseconds()
        let result = readCanned("HTTP/1.1 200 OK\r\n", thenClose: false, timeout: 100_000_000)
        let elapsed = monotonicNanoseconds() - started
        #expect(result == .timeout)
        #expect(elapsed >= 100_000_000)
        #expect(elapsed < 1_000_000_000)
    }

    @Test func twoResponsesOnOneStreamAreReadInTurn() throws {
        var ends: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer { close(ends[0]) }
        sendText(ends[1], "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nb")
        close(ends[1])
        var reader = ResponseReader(receiveTimeout: 1_000_000_000)
        let deadline = monotonicNanoseconds() + 1_000_000_000
        #expect(reader.readResponse(from: ends[0], deadline: deadline) == .response(ParsedResponse(status: 200, close: false)))
        #expect(reader.readResponse(from: ends[0], deadline: deadline) == .response(ParsedResponse(status: 200, close: true)))
        #expect(reader.readResponse(from: ends[0], deadline: deadline) == .unanswered(.eof))
    }

    // Resets exist only on TCP, so these use a loopback connection.

    @Test func serverClosingWithTheRequestUnreadIsUnansweredByReset() throws {
        let listener = try Listener()
        defer { close(listener.fd) }
        guard case .connected(let client) = connectTCP(to: try listener.address, timeout: 1_000_000_000) else {
            Issue.record("connect failed")
            return
        }
        defer { close(client) }
        let server = listener.acceptOne()
        try #require(server >= 0)
        #expect(sendAll(client, Array("GET / HTTP/1.1\r\nHost: t\r\n\r\n".utf8)) == .sent)
        sleep(nanoseconds: 20_000_000)
        // close() with unread input sends an RST: the race a server loses when it closes an
        // "idle" connection whose next request has just arrived.
        close(server)
        var reader = ResponseReader(receiveTimeout: 1_000_000_000)
        let result = reader.readResponse(from: client, deadline: monotonicNanoseconds() + 1_000_000_000)
        #expect(result == .unanswered(.reset))
        #expect(Outcome(result) == .unanswered)
    }

    @Test func resetMidResponseIsTruncated() throws {
        let listener = try Listener()
        defer { close(listener.fd) }
        guard case .connected(let client) = connectTCP(to: try listener.address, timeout: 1_000_000_000) else {
            Issue.record("connect failed")
            return
        }
        defer { close(client) }
        let server = listener.acceptOne()
        try #require(server >= 0)
        // The partial response goes out now; the reset follows once the reader has had time to
        // take those bytes (an RST can discard data still queued at the receiver).
        let thread = try startThread {
            sendText(server, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc")
            sleep(nanoseconds: 100_000_000)
            resetConnection(server)
        }
        var reader = ResponseReader(receiveTimeout: 2_000_000_000)
        let result = reader.readResponse(from: client, deadline: monotonicNanoseconds() + 2_000_000_000)
        thread.join()
        #expect(result == .truncated(.reset))
    }

    @Test func connectToAClosedPortIsRefused() throws {
        let listener = try Listener()
        let address = try listener.address
        close(listener.fd)
        #expect(connectTCP(to: address, timeout: 1_000_000_000) == .refused)
    }
}
