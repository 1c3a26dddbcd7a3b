import Testing
@testable import HTTP1

/// A request and the error the parser must refuse it with.
struct RefusedRequest: Sendable, CustomTestStringConvertible {
    var label: String
    var request: String
    var status: Int
    /// The expected reason; nil to check the status only.
    var reason: String?

    init(_ label: String, _ request: String, _ status: Int = 400, _ reason: String? = nil) {
        self.label = label
        self.request = request
        self.status = status
        self.reason = reason
    }

    var testDescription: String { label }
}

/// Asserts that `result` is a failure with the status (and reason) of `expected`.
func expectRefused(_ result: HTTPRequestParser.HeadResult, _ expected: RefusedRequest, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error = result.error else {
        Issue.record("expected \(expected.status), got \(result)", sourceLocation: sourceLocation)
        return
    }
    #expect(error.status == expected.status, sourceLocation: sourceLocation)
    if let reason = expected.reason {
        #expect(error.reason == reason, sourceLocation: sourceLocation)
    }
}

// MARK: - Valid requests

@Suite("Request parser: valid requests")
struct ParserValidRequestTests {
    @Test("a GET with headers yields method, target, path, query, version, lowercased names, trimmed values")
    func validGet() throws {
        let text = "GET /search/items?q=swift&page=2 HTTP/1.1\r\n"
            + "Host: example.com\r\n"
            + "User-Agent:   curl/8.0 \t \r\n"
            + "X-Custom-Header:value\r\n"
            + "ACCEPT:\t*/*\r\n"
            + "X-Empty:\r\n"
            + "\r\n"
        let (head, length) = try #require(parse(text).complete)
        #expect(length == text.utf8.count)
        #expect(head.method == "GET")
        #expect(head.target == "/search/items?q=swift&page=2")
        #expect(head.path == "/search/items")
        #expect(head.query == "q=swift&page=2")
        #expect(head.version == .http1_1)
        #expect(head.headers == HTTPHeaders([
            ("host", "example.com"),
            ("user-agent", "curl/8.0"),
            ("x-custom-header", "value"),
            ("accept", "*/*"),
            ("x-empty", ""),
        ]))
        #expect(head.framing == BodyFraming.none)
        #expect(head.keepAlive)
        #expect(!head.expectsContinue)
    }

    @Test("the method is kept case-sensitive, as sent")
    func methodCaseKept() throws {
        let head = try #require(parse("pAtCh /x HTTP/1.1\r\nHost: x\r\n\r\n").head)
        #expect(head.method == "pAtCh")
    }

    @Test("a header value keeps its inner whitespace and obs-text")
    func valueInnerWhitespace() throws {
        let head = try #require(parse("GET / HTTP/1.1\r\nHost: x\r\nX-A:  a \t b  \r\nX-B: caf\u{E9}\r\n\r\n").head)
        #expect(head.headers["x-a"] == "a \t b")
        #expect(head.headers["x-b"] == "caf\u{E9}")
    }

    @Test("an HTTP/1.0 request needs no Host")
    func http10WithoutHost() throws {
        let head = try #require(parse("GET /old HTTP/1.0\r\n\r\n").head)
        #expect(head.version == .http1_0)
        #expect(head.headers.isEmpty)
        #expect(head.path == "/old")
    }

    @Test(
        "keepAlive follows the version default and the Connection field",
        arguments: [
            ("HTTP/1.1", nil, true),
            ("HTTP/1.1", "close", false),
            ("HTTP/1.1", "Close", false),
            ("HTTP/1.1", "keep-alive, close", false),
            ("HTTP/1.1", "upgrade", true),
            ("HTTP/1.0", nil, false),
            ("HTTP/1.0", "keep-alive", true),
            ("HTTP/1.0", "Keep-Alive", true),
            ("HTTP/1.0", "keep-alive, close", false),
            ("HTTP/1.0", "close", false),
        ] as [(String, String?, Bool)]
    )
    func keepAlive(version: String, connection: String?, expected: Bool) throws {
        var text = "GET / \(version)\r\nHost: x\r\n"
        if let connection { text += "Connection: \(connection)\r\n" }
        text += "\r\n"
        let head = try #require(parse(text).head)
        #expect(head.keepAlive == expected)
    }

    @Test("Connection tokens in separate fields combine")
    func connectionAcrossFields() throws {
        let head = try #require(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n").head)
        #expect(!head.keepAlive)
    }

    @Test("empty lines before the request line are skipped and counted in the length")
    func leadingCRLF() throws {
        let request = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        let text = "\r\n\r\n" + request
        let (head, length) = try #require(parse(text).complete)
        #expect(length == 4 + request.utf8.count)
        #expect(head.method == "GET")
        #expect(head.path == "/a")
    }

    @Test("two pipelined requests: the first parse covers the first only, the rest parses as the second")
    func pipelined() throws {
        let first = "GET /a HTTP/1.1\r\nHost: one\r\n\r\n"
        let second = "POST /b?x=1 HTTP/1.1\r\nHost: two\r\nContent-Length: 0\r\n\r\n"
        let all = bytes(first + second)
        let (head1, length1) = try #require(parse(all).complete)
        #expect(length1 == first.utf8.count)
        #expect(head1.path == "/a")
        #expect(head1.headers["host"] == "one")
        let (head2, length2) = try #require(parse(Array(all[length1...])).complete)
        #expect(length2 == second.utf8.count)
        #expect(head2.method == "POST")
        #expect(head2.path == "/b")
        #expect(head2.query == "x=1")
        #expect(head2.headers["host"] == "two")
    }
}

// MARK: - Incomplete input and incremental parsing

@Suite("Request parser: incomplete input")
struct ParserIncompleteTests {
    @Test(
        "a head without its final empty line is incomplete",
        arguments: [
            "",
            "\r",
            "\r\n",
            "\r\n\r",
            "G",
            "GET / HTTP/1.1",
            "GET / HTTP/1.1\r",
            "GET / HTTP/1.1\r\n",
            "GET / HTTP/1.1\r\nHost: x",
            "GET / HTTP/1.1\r\nHost: x\r",
            "GET / HTTP/1.1\r\nHost: x\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n\r",
            "\r\nGET / HTTP/1.1\r\nHost: x\r\n",
        ]
    )
    func incomplete(text: String) {
        #expect(parse(text).resumeAt != nil, "\(parse(text))")
    }

    @Test("resumeAt points at the start of the first unterminated line")
    func resumeAtLineStart() {
        // "GET / HTTP/1.1\r\n" is 16 bytes, "Host: x\r\n" 9 more.
        #expect(parse("GET / HTTP/1.1").resumeAt == 0)
        #expect(parse("GET / HTTP/1.1\r\nHo").resumeAt == 16)
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\n").resumeAt == 25)
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\n\r").resumeAt == 25)
    }

    static let requests: [String] = [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\n\r\nGET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\nX-A:  spaced  \r\n\r\n",
        "PUT /c HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    ]

    @Test("byte by byte, resuming at resumeAt, gives the same head and length as all at once", arguments: requests)
    func byteByByte(text: String) throws {
        let input = bytes(text)
        let (whole, wholeLength) = try #require(parse(input).complete)
        #expect(wholeLength == input.count)
        // Every proper prefix is incomplete: the head is only complete with its last byte.
        for end in 0..<input.count {
            #expect(parse(Array(input[0..<end])).resumeAt != nil, "prefix of \(end) bytes")
        }
        let (incremental, incrementalLength) = try #require(parseByteByByte(input).complete)
        #expect(incremental == whole)
        #expect(incrementalLength == wholeLength)
    }

    @Test("split in two anywhere (inside a CRLF included), the head is the same", arguments: requests)
    func splitInTwo(text: String) throws {
        let input = bytes(text)
        let whole = try #require(parse(input).complete)
        for cut in 1..<input.count {
            let result = parseIncrementally(input, cuts: [cut])
            let (head, length) = try #require(result.complete, "cut at \(cut): \(result)")
            #expect(head == whole.head, "cut at \(cut)")
            #expect(length == whole.length, "cut at \(cut)")
        }
    }

    @Test("split inside the CRLF of the request line and of the final empty line")
    func splitInsideCRLF() throws {
        let text = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
        let input = bytes(text)
        // After "...HTTP/1.1\r" (offset 16), and after the last "\r" (offset count - 1).
        let afterRequestLineCR = 16
        #expect(input[afterRequestLineCR - 1] == UInt8(ascii: "\r"))
        #expect(parse(Array(input[0..<afterRequestLineCR])).resumeAt == 0)
        let result = parseIncrementally(input, cuts: [afterRequestLineCR, input.count - 1])
        let head = try #require(result.head)
        #expect(head.path == "/x")
        #expect(head == parse(input).head)
    }

    static let refusedRequests: [RefusedRequest] = [
        RefusedRequest("bare LF", "GET / HTTP/1.1\r\nHost: x\n\r\n", 400, "line not terminated by CRLF"),
        RefusedRequest("whitespace before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        RefusedRequest("request line too long", "GET /" + String(repeating: "a", count: 80) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        RefusedRequest("header section too large", "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "v", count: 300) + "\r\n\r\n", 431),
        RefusedRequest("HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ]

    @Test("a refused request is refused with the same status byte by byte", arguments: refusedRequests)
    func refusedByteByByte(expected: RefusedRequest) {
        let input = bytes(expected.request)
        expectRefused(parse(input, limits: smallLimits), expected)
        expectRefused(parseByteByByte(input, limits: smallLimits), expected)
    }
}

// MARK: - 400 Bad Request

@Suite("Request parser: 400 Bad Request")
struct ParserBadRequestTests {
    static let hostAndFraming: [RefusedRequest] = [
        RefusedRequest("1.1 without Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "missing Host header field"),
        RefusedRequest("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "multiple Host header fields"),
        RefusedRequest("two identical Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "multiple Host header fields"),
        RefusedRequest("two Host fields in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "multiple Host header fields"),
        RefusedRequest(
            "Content-Length and Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            400, "both Content-Length and Transfer-Encoding"),
        RefusedRequest(
            "Transfer-Encoding and Content-Length",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            400, "both Content-Length and Transfer-Encoding"),
        RefusedRequest(
            "Transfer-Encoding and a malformed Content-Length",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: abc\r\n\r\n",
            400, "both Content-Length and Transfer-Encoding"),
        RefusedRequest(
            "Content-Length 5 and 6 in two fields",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            400, "conflicting Content-Length values"),
        RefusedRequest(
            "Content-Length: 5, 6",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
            400, "invalid Content-Length"),
        RefusedRequest(
            "Content-Length 2 and 02",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\n",
            400, "conflicting Content-Length values"),
        RefusedRequest(
            "Content-Length 0 and 00",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 00\r\n\r\n",
            400, "conflicting Content-Length values"),
        RefusedRequest(
            "Content-Length 5 and a malformed one",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: x\r\n\r\n",
            400, "conflicting Content-Length values"),
        RefusedRequest(
            "Transfer-Encoding in HTTP/1.0",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            400, "Transfer-Encoding in an HTTP/1.0 request"),
        RefusedRequest(
            "Transfer-Encoding: chunked, chunked",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "chunked in two Transfer-Encoding fields",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "empty Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "Transfer-Encoding: ,chunked",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "Transfer-Encoding: chunked,",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "Transfer-Encoding: , chunked ,",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked ,\r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "Transfer-Encoding: chunked, , with an empty element inside",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, ,chunked\r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "chunked and an empty Transfer-Encoding field",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n",
            400, "invalid Transfer-Encoding"),
        RefusedRequest(
            "vertical tab after chunked",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\u{0B}\r\n\r\n",
            400, "invalid character in header field value"),
    ]

    @Test("Host and framing rules", arguments: hostAndFraming)
    func hostAndFramingRules(expected: RefusedRequest) {
        expectRefused(parse(expected.request), expected)
    }

    /// Host = uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2, §3.2.3).
    @Test(
        "a Host value that is not uri-host [\":\" port] is a 400",
        arguments: [
            "a b", "a, b", "a\tb", "a b:80", "a:b", "a:80:80", "a:-1", "a:+80", "a:65536", "a:99999", "a:000080",
            ":80", ":", "::1", "[::1", "::1]", "[::1]x", "[::1]:x", "[]", "[::g]", "[1.2.3.4]", "[fe80::1%en0]",
            "[fe80::1%25]", "[fe80::1%25en 0]", "[v1.]", "[v.a]", "[vx.a]", "[v1.a b]", "a%2", "a%zz", "%", "a/b",
            "user@a", "a?b", "a#b", "a\\b", "a\"b", "caf\u{E9}", "a]", "a[",
        ]
    )
    func invalidHost(value: String) {
        let result = parse("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n")
        #expect(result.error == .badRequest("invalid Host header field"), "\(result)")
        let http10 = parse("GET / HTTP/1.0\r\nHost: \(value)\r\n\r\n")
        #expect(http10.error == .badRequest("invalid Host header field"), "HTTP/1.0: \(http10)")
    }

    @Test(
        "a Host value that is uri-host [\":\" port] is accepted",
        arguments: [
            "", "example.com", "example.com:8080", "Example.COM:", "127.0.0.1", "127.0.0.1:80", "a:0", "a:65535",
            "a:00080", "localhost", "my_host.local", "xn--bcher-kva.example", "a,b", "!$&'()*+,;=-._~", "%41bc",
            "[::1]", "[::1]:8080", "[2001:db8::1]", "[::ffff:192.0.2.1]:443", "[fe80::1%25en0]", "[fe80::1%25%41]:1",
            "[v1.fe80::a+en1]", "[V7.a:b]",
        ]
    )
    func validHost(value: String) throws {
        let head = try #require(parse("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n").head)
        #expect(head.headers["host"] == value)
    }

    @Test(
        "a malformed Content-Length is a 400",
        arguments: ["abc", "-1", "+5", "5 5", "", "0x10", "5,", ",5", "5;", "1e3", "\u{FF11}", "5, 5", "5,5", "0, 0"]
    )
    func malformedContentLength(value: String) {
        let result = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(value)\r\n\r\n")
        #expect(result.error == .badRequest("invalid Content-Length"), "\(result)")
    }

    @Test("repeated Content-Length fields with the same value are accepted", arguments: [
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\ncontent-length:\t5 \r\nCONTENT-LENGTH:5\r\n",
    ])
    func identicalContentLengths(fields: String) throws {
        let head = try #require(parse("POST / HTTP/1.1\r\nHost: x\r\n\(fields)\r\n").head)
        #expect(head.framing == .contentLength(5))
    }

    static let fieldLines: [RefusedRequest] = [
        RefusedRequest("whitespace before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace before colon in header field"),
        RefusedRequest("tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400, "whitespace before colon in header field"),
        RefusedRequest("obs-fold with a space", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "obsolete line folding"),
        RefusedRequest("obs-fold with a tab", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400, "obsolete line folding"),
        RefusedRequest("whitespace before the first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400, "obsolete line folding"),
        RefusedRequest("@ in a field name", "GET / HTTP/1.1\r\nHo@st: x\r\n\r\n", 400, "invalid header field name"),
        RefusedRequest("non-ASCII field name", "GET / HTTP/1.1\r\nHost: x\r\nH\u{E9}: x\r\n\r\n", 400, "invalid header field name"),
        RefusedRequest("field line without a colon", "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, "invalid header field name"),
        RefusedRequest("empty field name", "GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n", 400, "empty header field name"),
        RefusedRequest("NUL in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u{0}b\r\n\r\n", 400, "invalid character in header field value"),
        RefusedRequest("bare CR in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, "invalid character in header field value"),
        RefusedRequest("CR before the CRLF", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\r\n\r\n", 400, "invalid character in header field value"),
        RefusedRequest("DEL in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u{7F}b\r\n\r\n", 400, "invalid character in header field value"),
        RefusedRequest("ESC in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u{1B}b\r\n\r\n", 400, "invalid character in header field value"),
        RefusedRequest("control byte in the Host value", "GET / HTTP/1.1\r\nHost: x\u{01}\r\n\r\n", 400, "invalid character in header field value"),
        RefusedRequest("bare LF line endings", "GET / HTTP/1.1\nHost: x\n\n", 400, "line not terminated by CRLF"),
        RefusedRequest("bare LF after a field", "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400, "line not terminated by CRLF"),
        RefusedRequest("bare LF as the final empty line", "GET / HTTP/1.1\r\nHost: x\r\n\n", 400, "line not terminated by CRLF"),
    ]

    @Test("field line rules", arguments: fieldLines)
    func fieldLineRules(expected: RefusedRequest) {
        expectRefused(parse(expected.request), expected)
    }

    static let requestLines: [RefusedRequest] = [
        RefusedRequest("two spaces after the method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("two spaces before the version", "GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("missing version", "GET /\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("missing version after a space", "GET / \r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("missing target", "GET HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("missing method", "/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("leading space", " GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("trailing space", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("lowercase http/1.1", "GET / http/1.1\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("HTTP/1.10", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("HTTP/1", "GET / HTTP/1\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("HTTP/1,1", "GET / HTTP/1,1\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("HTTP/1.x", "GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("tab separators", "GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("invalid method character", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("space inside the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        RefusedRequest("control byte in the target", "GET /a\u{01}b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("DEL in the target", "GET /a\u{7F}b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("non-ASCII in the target", "GET /caf\u{E9} HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        RefusedRequest("relative target", "GET foo HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid request target"),
        RefusedRequest("asterisk for GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid request target"),
        RefusedRequest("absolute-form without authority", "GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid request target"),
        RefusedRequest("absolute-form of another scheme", "GET ftp://example.com/a HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid request target"),
        RefusedRequest("fragment in the path", "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment in request target"),
        RefusedRequest("fragment in the query", "GET /a?x=1#b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment in request target"),
        RefusedRequest("fragment in an absolute-form path", "GET http://example.com/a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment in request target"),
    ]

    @Test("request line rules", arguments: requestLines)
    func requestLineRules(expected: RefusedRequest) {
        expectRefused(parse(expected.request), expected)
    }

    @Test("a fragment right after an absolute-form authority is refused")
    func fragmentAfterAuthority() {
        let result = parse("GET http://example.com#frag HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(result.error == .badRequest("fragment in request target"), "\(result)")
    }
}

// MARK: - Size limits

@Suite("Request parser: 414 and 431")
struct ParserLimitTests {
    /// A request line of exactly `length` bytes (CRLF excluded).
    static func requestLine(length: Int) -> String {
        "GET /" + String(repeating: "a", count: length - 14) + " HTTP/1.1"
    }

    @Test("a complete request line over maxRequestLineBytes is a 414")
    func requestLineTooLongComplete() {
        let result = parse(Self.requestLine(length: 65) + "\r\nHost: x\r\n\r\n", limits: smallLimits)
        #expect(result.error == .uriTooLong)
    }

    @Test("a request line of exactly maxRequestLineBytes is accepted")
    func requestLineAtLimit() throws {
        let head = try #require(parse(Self.requestLine(length: 64) + "\r\nHost: x\r\n\r\n", limits: smallLimits).head)
        #expect(head.path.utf8.count == 51)
    }

    @Test("an incomplete request line already over maxRequestLineBytes is a 414")
    func requestLineTooLongIncomplete() {
        #expect(parse("GET /" + String(repeating: "a", count: 70), limits: smallLimits).error == .uriTooLong)
        #expect(parse(Self.requestLine(length: 65), limits: smallLimits).error == .uriTooLong)
    }

    @Test("an incomplete request line within maxRequestLineBytes is incomplete")
    func requestLineIncompleteWithinLimit() {
        #expect(parse(Self.requestLine(length: 64), limits: smallLimits).resumeAt == 0)
    }

    @Test("a request line of exactly maxRequestLineBytes is accepted when its CR and LF arrive apart")
    func requestLineAtLimitSplitInsideCRLF() throws {
        let input = bytes(Self.requestLine(length: 64) + "\r\nHost: x\r\n\r\n")
        let result = parseIncrementally(input, cuts: [65], limits: smallLimits)
        #expect(result.head != nil, "\(result)")
        #expect(parse(Array(input[0..<65]), limits: smallLimits).resumeAt == 0)
    }

    @Test("a complete header section over maxHeaderBytes is a 431")
    func headerSectionTooLargeComplete() {
        let oneLongField = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "v", count: 300) + "\r\n\r\n"
        #expect(parse(oneLongField, limits: smallLimits).error == .headerFieldsTooLarge)
        // Few enough fields, each short, but too many bytes in all.
        var manyFields = "GET / HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<4 { manyFields += "X-\(i): " + String(repeating: "v", count: 60) + "\r\n" }
        manyFields += "\r\n"
        #expect(parse(manyFields, limits: smallLimits).error == .headerFieldsTooLarge)
    }

    @Test("an incomplete header section already over maxHeaderBytes is a 431")
    func headerSectionTooLargeIncomplete() {
        let text = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "v", count: 300)
        #expect(parse(text, limits: smallLimits).error == .headerFieldsTooLarge)
    }

    /// A head of `length` bytes in all, final CRLF included.
    static func head(length: Int) -> String {
        // "GET / HTTP/1.1\r\n" + "Host: x\r\n" + "X: " + value + "\r\n" + "\r\n" = 32 + value.
        "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "v", count: length - 32) + "\r\n\r\n"
    }

    @Test("a head of maxHeaderBytes plus the final CRLF is accepted, all at once and byte by byte")
    func headerSectionAtLimit() throws {
        let text = Self.head(length: 256 + 2)
        #expect(parse(text, limits: smallLimits).head != nil)
        #expect(parseByteByByte(bytes(text), limits: smallLimits).head != nil)
        #expect(parse(Self.head(length: 256 + 3), limits: smallLimits).error == .headerFieldsTooLarge)
    }

    @Test("more than maxHeaderCount fields is a 431; exactly maxHeaderCount is accepted")
    func tooManyFields() throws {
        func request(fields: Int) -> String {
            var text = "GET / HTTP/1.1\r\nHost: x\r\n"
            for i in 1..<fields { text += "X-\(i): v\r\n" }
            return text + "\r\n"
        }
        let head = try #require(parse(request(fields: 5), limits: smallLimits).head)
        #expect(head.headers.count == 5)
        #expect(parse(request(fields: 6), limits: smallLimits).error == .headerFieldsTooLarge)
    }

    @Test("empty lines before the request line count against maxHeaderBytes")
    func tooManyLeadingEmptyLines() {
        let text = String(repeating: "\r\n", count: 128) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        #expect(parse(text, limits: smallLimits).error == .headerFieldsTooLarge)
    }
}

// MARK: - 501, 505, 417

@Suite("Request parser: 501, 505 and Expect")
struct ParserStatusTests {
    @Test(
        "a transfer-coding other than one final chunked is a 501",
        arguments: ["gzip", "gzip, chunked", "chunked, gzip", "chunked;q=1", "identity", "x-custom"]
    )
    func unsupportedTransferCoding(coding: String) {
        let result = parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(coding)\r\n\r\n")
        #expect(result.error == .unsupportedTransferCoding, "\(result)")
    }

    @Test(
        "a well-formed version other than 1.0 and 1.1 is a 505",
        arguments: ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"]
    )
    func versionNotSupported(version: String) {
        let result = parse("GET / \(version)\r\nHost: x\r\n\r\n")
        #expect(result.error == .versionNotSupported, "\(result)")
    }

    @Test("the 505 comes before the Host check")
    func versionBeforeHost() {
        #expect(parse("GET / HTTP/2.0\r\n\r\n").error == .versionNotSupported)
    }

    @Test("Expect: 100-continue sets expectsContinue", arguments: ["100-continue", "100-Continue", " 100-CONTINUE "])
    func expectContinue(value: String) throws {
        let head = try #require(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect:\(value)\r\n\r\n").head)
        #expect(head.expectsContinue)
        #expect(head.framing == .contentLength(3))
    }

    @Test("any other expectation is a 417", arguments: ["something-else", "100-continue, foo", "200-ok", ",", "100-continue,"])
    func expectationFailed(value: String) {
        let result = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: \(value)\r\n\r\n")
        #expect(result.error == .expectationFailed, "\(result)")
    }

    @Test("an empty Expect expects nothing, as in Go", arguments: ["Expect:\r\n", "Expect: \t \r\n", "Expect:\r\nExpect: \r\n"])
    func emptyExpectIgnored(fields: String) throws {
        let head = try #require(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\(fields)\r\n").head)
        #expect(!head.expectsContinue)
        #expect(head.framing == .contentLength(3))
    }

    @Test("an empty Expect beside 100-continue leaves 100-continue")
    func emptyExpectBeside100Continue() throws {
        let head = try #require(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect:\r\nExpect: 100-continue\r\n\r\n").head)
        #expect(head.expectsContinue)
    }

    @Test("Expect: 100-continue in an HTTP/1.0 request is ignored")
    func expectContinueIgnoredIn10() throws {
        let head = try #require(parse("POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n").head)
        #expect(!head.expectsContinue)
    }
}

// MARK: - Request targets

@Suite("Request parser: request-target forms")
struct ParserTargetTests {
    @Test(
        "path and query of each target form",
        arguments: [
            ("GET", "/", "/", nil),
            ("GET", "/?", "/", ""),
            ("GET", "/a/b?x=1&y", "/a/b", "x=1&y"),
            ("GET", "/a?b?c", "/a", "b?c"),
            ("GET", "/%20a%2F?q=%23", "/%20a%2F", "q=%23"),
            ("GET", "http://example.com/a/b?x=1", "/a/b", "x=1"),
            ("GET", "http://example.com", "/", nil),
            ("GET", "http://example.com?x=1", "/", "x=1"),
            ("GET", "http://example.com:8080/p?", "/p", ""),
            ("GET", "HTTPS://example.com/p", "/p", nil),
            ("GET", "HtTpS://example.com/", "/", nil),
            ("OPTIONS", "*", "*", nil),
            ("CONNECT", "example.com:443", "example.com:443", nil),
        ] as [(String, String, String, String?)]
    )
    func targetForms(method: String, target: String, path: String, query: String?) throws {
        let head = try #require(parse("\(method) \(target) HTTP/1.1\r\nHost: example.com\r\n\r\n").head)
        #expect(head.target == target)
        #expect(head.path == path)
        #expect(head.query == query)
    }
}

// MARK: - Framing

@Suite("Request parser: body framing")
struct ParserFramingTests {
    @Test(
        "framing from Content-Length and Transfer-Encoding",
        arguments: [
            ("", BodyFraming.none),
            ("Content-Length: 10\r\n", .contentLength(10)),
            ("Content-Length:  10 \r\n", .contentLength(10)),
            ("Content-Length: 0\r\n", .none),
            ("Content-Length: 000\r\n", .none),
            ("Transfer-Encoding: chunked\r\n", .chunked),
            ("Transfer-Encoding: Chunked\r\n", .chunked),
            ("Transfer-Encoding:  chunked \t\r\n", .chunked),
            ("Transfer-Encoding: CHUNKED\r\n", .chunked),
            ("Content-Length: 9223372036854775807\r\n", .contentLength(Int.max)),
            ("Content-Length: 9223372036854775808\r\n", .contentLength(Int.max)),
        ] as [(String, BodyFraming)]
    )
    func framing(fields: String, expected: BodyFraming) throws {
        let head = try #require(parse("POST / HTTP/1.1\r\nHost: x\r\n\(fields)\r\n").head)
        #expect(head.framing == expected)
    }

    @Test("a huge Content-Length saturates at Int.max and the body decoder refuses it with 413")
    func hugeContentLength() throws {
        let head = try #require(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n").head)
        #expect(head.framing == .contentLength(Int.max))
        #expect(throws: HTTPError.payloadTooLarge) {
            _ = try HTTPBodyDecoder(framing: head.framing, limits: HTTPLimits())
        }
        #expect(throws: HTTPError.payloadTooLarge) {
            _ = try HTTPBodyDecoder(framing: head.framing, limits: HTTPLimits(maxBodyBytes: Int.max - 1))
        }
    }
}
