import Testing
@testable import HTTP1

// MARK: - Content-Length bodies

@Suite("Body decoder: Content-Length")
struct ContentLengthBodyTests {
    @Test("a body complete in one call")
    func oneCall() throws {
        let (body, consumed, complete) = try decodeBody(bytes("hello"), framing: .contentLength(5))
        #expect(body == bytes("hello"))
        #expect(consumed == 5)
        #expect(complete)
    }

    @Test("a body split across calls", arguments: [1, 2, 3])
    func split(pieceSize: Int) throws {
        let (body, consumed, complete) = try decodeBody(bytes("hello world"), framing: .contentLength(11), pieceSize: pieceSize)
        #expect(body == bytes("hello world"))
        #expect(consumed == 11)
        #expect(complete)
    }

    @Test("a short body is not complete and waits for more")
    func partial() throws {
        var decoder = try HTTPBodyDecoder(framing: .contentLength(5), limits: smallLimits)
        var body: [UInt8] = []
        let consumed = try bytes("hel").withUnsafeBytes { raw in
            Result { () throws(HTTPError) -> Int in try decoder.decode(raw, into: &body) }
        }.get()
        #expect(consumed == 3)
        #expect(!decoder.isComplete)
        #expect(decoder.bodyBytes == 3)
        #expect(body == bytes("hel"))
    }

    @Test("bytes after the body are left for the next request")
    func leftover() throws {
        let next = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        let (body, consumed, complete) = try decodeBody(bytes("hello" + next), framing: .contentLength(5))
        #expect(body == bytes("hello"))
        #expect(consumed == 5)
        #expect(complete)
    }

    @Test("no body and an empty body are complete at once and consume nothing", arguments: [BodyFraming.none, .contentLength(0)])
    func noBody(framing: BodyFraming) throws {
        var decoder = try HTTPBodyDecoder(framing: framing, limits: smallLimits)
        #expect(decoder.isComplete)
        var body: [UInt8] = []
        let consumed = try bytes("GET / HTTP/1.1\r\n").withUnsafeBytes { raw in
            Result { () throws(HTTPError) -> Int in try decoder.decode(raw, into: &body) }
        }.get()
        #expect(body.isEmpty)
        #expect(consumed == 0)
        #expect(decoder.bodyBytes == 0)
    }

    @Test("a Content-Length over maxBodyBytes is a 413 at init; exactly maxBodyBytes is accepted")
    func overLimit() throws {
        #expect(throws: HTTPError.payloadTooLarge) {
            _ = try HTTPBodyDecoder(framing: .contentLength(101), limits: smallLimits)
        }
        let decoder = try HTTPBodyDecoder(framing: .contentLength(100), limits: smallLimits)
        #expect(!decoder.isComplete)
    }
}

// MARK: - Chunked bodies

@Suite("Body decoder: chunked")
struct ChunkedBodyTests {
    static let valid: [(String, String)] = [
        ("5\r\nhello\r\n0\r\n\r\n", "hello"),
        ("5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n", "hello world!"),
        ("5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"),
        ("5 ;name=\"quoted value\"\r\nhello\r\n0\r\n\r\n", "hello"),
        ("A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n", "0123456789abcdefghijk"),
        ("00005\r\nhello\r\n000\r\n\r\n", "hello"),
        ("5\r\nhello\r\n0\r\nX-T: 1\r\nX-Other:two words\r\n\r\n", "hello"),
        ("0\r\n\r\n", ""),
        ("5\r\n0\r\n\r\n\r\n0\r\n\r\n", "0\r\n\r\n"),
    ]

    @Test("valid chunked bodies decode, all at once and byte by byte", arguments: valid)
    func decodes(input: String, expected: String) throws {
        for pieceSize in [nil, 1, 2, 7] as [Int?] {
            let (body, consumed, complete) = try decodeBody(bytes(input), framing: .chunked, pieceSize: pieceSize)
            #expect(body == bytes(expected), "piece size \(String(describing: pieceSize))")
            #expect(consumed == input.utf8.count, "piece size \(String(describing: pieceSize))")
            #expect(complete, "piece size \(String(describing: pieceSize))")
        }
    }

    @Test("trailer fields are accepted and kept out of the body")
    func trailers() throws {
        let input = "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
        let (body, consumed, complete) = try decodeBody(bytes(input), framing: .chunked)
        #expect(body == bytes("abc"))
        #expect(consumed == input.utf8.count)
        #expect(complete)
    }

    @Test("bytes after the last chunk and trailers are left for the next request")
    func leftover() throws {
        let chunked = "5\r\nhello\r\n0\r\n\r\n"
        let (body, consumed, complete) = try decodeBody(bytes(chunked + "GET / HTTP/1.1\r\n"), framing: .chunked)
        #expect(body == bytes("hello"))
        #expect(consumed == chunked.utf8.count)
        #expect(complete)
    }

    @Test("the body counts decoded bytes only")
    func bodyBytesCount() throws {
        var decoder = try HTTPBodyDecoder(framing: .chunked, limits: smallLimits)
        var body: [UInt8] = []
        let consumed = try bytes("5\r\nhello\r\n3\r\nabc\r\n").withUnsafeBytes { raw in
            Result { () throws(HTTPError) -> Int in try decoder.decode(raw, into: &body) }
        }.get()
        #expect(consumed == 18)
        #expect(decoder.bodyBytes == 8)
        #expect(!decoder.isComplete)
    }

    static let malformed: [(String, String)] = [
        ("g\r\n", "invalid chunk size"),
        ("\r\n", "invalid chunk size"),
        (";ext\r\n", "invalid chunk size"),
        ("-5\r\n", "invalid chunk size"),
        ("0x5\r\n", "invalid chunk size"),
        ("5\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        ("5\r\r\nhello", "chunk size line not terminated by CRLF"),
        ("5\r\nhelloX", "chunk data not followed by CRLF"),
        ("5\r\nhello\rX", "chunk data not followed by CRLF"),
        ("5\r\nhello\n0\r\n\r\n", "chunk data not followed by CRLF"),
        ("5;a\u{0}b\r\n", "invalid chunk extension"),
        ("5;a\nb\r\n", "invalid chunk extension"),
        ("0\r\n: x\r\n\r\n", "invalid trailer field"),
        ("0\r\nX-T: a\u{1}b\r\n\r\n", "invalid trailer field"),
        ("0\r\nX-T: a\u{7F}\r\n\r\n", "invalid trailer field"),
        ("0\r\nX-T : 1\r\n\r\n", "invalid trailer field"),
        ("0\r\n X-T: 1\r\n\r\n", "invalid trailer field"),
        ("0\r\nX-T\r\n\r\n", "invalid trailer field"),
        ("0\r\nX-T: 1\n\r\n", "invalid trailer field"),
        ("0\r\nX-T: 1\r\r\n", "trailer line not terminated by CRLF"),
        ("0\r\n\r\r", "trailer line not terminated by CRLF"),
        ("0\r\n\n", "invalid trailer field"),
    ]

    @Test("malformed chunked coding is a 400", arguments: malformed)
    func malformedChunked(input: String, reason: String) {
        #expect(decodeError(input) == .badRequest(reason))
    }

    @Test("whitespace after the chunk size must be followed by a chunk extension")
    func whitespaceThenDigit() {
        #expect(decodeError("5 6\r\nhello\r\n0\r\n\r\n")?.status == 400)
    }

    @Test("a chunk-size line longer than maxChunkLineBytes is a 400 before it ends")
    func chunkLineTooLong() {
        let limits = HTTPLimits(maxBodyBytes: 100, maxChunkLineBytes: 16)
        let error = HTTPError.badRequest("chunk size line too long")
        #expect(decodeError("5;" + String(repeating: "x", count: 30), limits: limits) == error)
        #expect(decodeError(String(repeating: "0", count: 20) + "5\r\n", limits: limits) == error)
        // Within the limit (the CR counts, the LF does not) is accepted.
        #expect(decodeError("5;" + String(repeating: "x", count: 13) + "\r\nhello\r\n0\r\n\r\n", limits: limits) == nil)
    }

    @Test("a chunk size over the remaining budget is a 413 before its data arrives")
    func chunkSizeOverBudget() {
        // 0x65 = 101 > 100; only the size digits are sent.
        #expect(decodeError("65", limits: smallLimits) == .payloadTooLarge)
        // 0x64 = 100 is the whole budget: accepted, waiting for data.
        #expect(decodeError("64\r\n", limits: smallLimits) == nil)
        // After 60 bytes, 0x29 = 41 is over the 40 left.
        let sixty = String(repeating: "x", count: 60)
        #expect(decodeError("3c\r\n\(sixty)\r\n29", limits: smallLimits) == .payloadTooLarge)
        #expect(decodeError("3c\r\n\(sixty)\r\n28\r\n", limits: smallLimits) == nil)
    }

    @Test("the total over maxBodyBytes across several chunks is a 413; exactly maxBodyBytes is accepted")
    func totalOverBudget() throws {
        let fifty = String(repeating: "x", count: 50)
        let full = "32\r\n\(fifty)\r\n32\r\n\(fifty)\r\n"
        #expect(decodeError(full + "1\r\nx\r\n0\r\n\r\n", limits: smallLimits) == .payloadTooLarge)
        let (body, _, complete) = try decodeBody(bytes(full + "0\r\n\r\n"), framing: .chunked, limits: smallLimits)
        #expect(body.count == 100)
        #expect(complete)
    }

    @Test("an overflowing hex size is a 413, not a crash")
    func overflowingSize() {
        #expect(decodeError("ffffffffffffffffffff\r\n", limits: smallLimits) == .payloadTooLarge)
        let unlimited = HTTPLimits(maxBodyBytes: Int.max, maxChunkLineBytes: 64)
        #expect(decodeError("ffffffffffffffffffff\r\n", limits: unlimited) == .payloadTooLarge)
        #expect(decodeError("8000000000000000\r\n", limits: unlimited) == .payloadTooLarge)
    }

    @Test("a trailer section over maxHeaderBytes is a 431; exactly maxHeaderBytes is accepted")
    func trailerTooLarge() {
        let limits = HTTPLimits(maxHeaderBytes: 64, maxBodyBytes: 100)
        // The trailer section is "X-T: " + value + "\r\n" + "\r\n": 9 bytes plus the value.
        let atLimit = "0\r\nX-T: " + String(repeating: "a", count: 55) + "\r\n\r\n"
        #expect(decodeError(atLimit, limits: limits) == nil)
        let overLimit = "0\r\nX-T: " + String(repeating: "a", count: 56) + "\r\n\r\n"
        #expect(decodeError(overLimit, limits: limits) == .headerFieldsTooLarge)
        // Many short trailer lines add up, and the section is refused before it ends.
        let manyLines = "0\r\n" + String(repeating: "X-T: 1\r\n", count: 10)
        #expect(decodeError(manyLines, limits: limits) == .headerFieldsTooLarge)
    }
}

// MARK: - Parser and decoder together

@Suite("Request smuggling: parser and decoder together")
struct SmugglingTests {
    /// Parses a head, decodes its body from the bytes after it, and returns the body and the
    /// bytes left for the next request.
    static func readRequest(_ input: [UInt8]) throws -> (head: HTTPRequestHead, body: [UInt8], rest: [UInt8]) {
        let (head, length) = try #require(parse(input).complete)
        let (body, consumed, complete) = try decodeBody(Array(input[length...]), framing: head.framing, limits: HTTPLimits())
        #expect(complete)
        return (head, body, Array(input[(length + consumed)...]))
    }

    @Test("with Content-Length: 5, the next request starts right after the 5 body bytes")
    func contentLengthThenNextRequest() throws {
        let input = bytes(
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                + "hello"
                + "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try Self.readRequest(input)
        #expect(first.head.path == "/a")
        #expect(first.body == bytes("hello"))
        let (second, length) = try #require(parse(first.rest).complete)
        #expect(second.method == "GET")
        #expect(second.path == "/admin")
        #expect(length == first.rest.count)
    }

    @Test("a chunk whose data looks like the end of the body and another request is data")
    func chunkDataLooksLikeRequest() throws {
        let smuggled = "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
        let size = String(smuggled.utf8.count, radix: 16)
        let input = bytes(
            "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "\(size)\r\n\(smuggled)\r\n0\r\n\r\n")
        let request = try Self.readRequest(input)
        #expect(request.head.framing == .chunked)
        #expect(request.body == bytes(smuggled))
        #expect(request.rest.isEmpty)
    }

    @Test("a short Content-Length never lets body bytes be read as a head")
    func contentLengthCoversRequestLookalike() throws {
        let lookalike = "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
        let input = bytes(
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(lookalike.utf8.count)\r\n\r\n"
                + lookalike
                + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try Self.readRequest(input)
        #expect(first.body == bytes(lookalike))
        let second = try #require(parse(first.rest).head)
        #expect(second.path == "/b")
    }
}
