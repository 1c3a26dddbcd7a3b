import Testing
@testable import HTTP1

@Suite("Response serializer")
struct HTTPResponseSerializerTests {
    static let date = bytes("Sun, 06 Nov 1994 08:49:37 GMT")

    /// The head `writeHead` writes, as a string, and its return value.
    static func head(
        status: Int = 200, headers: HTTPHeaders = [:], contentLength: Int = 0, connection: String? = nil
    ) -> (text: String, skipped: Int) {
        var buffer: [UInt8] = []
        let skipped = HTTPResponseSerializer.writeHead(
            status: status, headers: headers, contentLength: contentLength, date: date,
            connection: connection, into: &buffer)
        return (String(decoding: buffer, as: UTF8.self), skipped)
    }

    @Test("a 200 with one header, byte for byte")
    func simple200() {
        let (text, skipped) = Self.head(headers: ["Content-Type": "text/plain"], contentLength: 5)
        #expect(text == "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n")
        #expect(skipped == 0)
    }

    @Test("Connection is written when asked, after Content-Length")
    func connection() {
        #expect(Self.head(status: 404, connection: "close").text
            == "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(Self.head(connection: "keep-alive").text.contains("\r\nConnection: keep-alive\r\n"))
        #expect(!Self.head(connection: nil).text.contains("Connection"))
    }

    @Test("X-Request-ID comes after the handler's fields; one with CR or LF is skipped and counted")
    func requestID() {
        var buffer: [UInt8] = []
        let skipped = HTTPResponseSerializer.writeHead(
            status: 200, headers: ["Content-Type": "text/plain"], contentLength: 0, date: Self.date,
            connection: nil, requestID: "abc123", into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self)
            == "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\nContent-Type: text/plain\r\nX-Request-ID: abc123\r\n\r\n")
        #expect(skipped == 0)
        buffer = []
        let bad = HTTPResponseSerializer.writeHead(
            status: 200, headers: [:], contentLength: 0, date: Self.date, connection: nil,
            requestID: "a\r\nSet-Cookie: x=1", into: &buffer)
        #expect(!String(decoding: buffer, as: UTF8.self).contains("Set-Cookie"))
        #expect(bad == 1)
    }

    @Test("the head is appended after what the buffer already holds")
    func appends() {
        var buffer = bytes("previous")
        HTTPResponseSerializer.writeHead(status: 204, headers: [:], contentLength: 0, date: Self.date, connection: nil, into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(text.hasPrefix("previousHTTP/1.1 204 No Content\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test("handler fields keep their order and their spelling")
    func fieldOrder() {
        let (text, _) = Self.head(headers: HTTPHeaders([("X-B", "2"), ("x-a", "1"), ("X-B", "3")]))
        #expect(text.hasSuffix("\r\nX-B: 2\r\nx-a: 1\r\nX-B: 3\r\n\r\n"))
    }

    @Test(
        "handler-supplied Content-Length, Date, Connection and Transfer-Encoding are skipped",
        arguments: [
            "Content-Length", "content-length", "CONTENT-LENGTH", "Date", "date", "DATE",
            "Connection", "connection", "cOnNeCtIoN", "Transfer-Encoding", "transfer-encoding", "TRANSFER-encoding",
        ]
    )
    func reservedSkipped(name: String) {
        let (text, _) = Self.head(headers: HTTPHeaders([("X-Before", "1"), (name, "evil"), ("X-After", "2")]), contentLength: 7)
        #expect(!text.contains("evil"))
        #expect(text == "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 7\r\nX-Before: 1\r\nX-After: 2\r\n\r\n")
    }

    @Test("reserved fields are not counted as invalid")
    func reservedNotCounted() {
        let (_, skipped) = Self.head(headers: HTTPHeaders([("Content-Length", "3"), ("Date", "x"), ("Connection", "close")]))
        #expect(skipped == 0)
    }

    @Test(
        "a field with CR, LF or NUL in its value, or a name that is not a token, is skipped and counted",
        arguments: [
            ("X-A", "a\r\nSet-Cookie: evil=1"),
            ("X-A", "a\nSet-Cookie: evil=1"),
            ("X-A", "a\rSet-Cookie: evil=1"),
            ("X-A", "a\u{0}evil"),
            ("X-A", "a\u{7F}evil"),
            ("Bad Name", "evil"),
            ("", "evil"),
            ("X:A", "evil"),
            ("X-\u{E9}", "evil"),
            ("X-A\r\nSet-Cookie", "evil"),
        ]
    )
    func invalidSkipped(name: String, value: String) {
        let (text, skipped) = Self.head(headers: HTTPHeaders([("X-Ok", "1"), (name, value), ("X-Ok2", "2")]))
        #expect(skipped == 1)
        #expect(!text.contains("evil"))
        #expect(text.hasSuffix("\r\nContent-Length: 0\r\nX-Ok: 1\r\nX-Ok2: 2\r\n\r\n"))
    }

    @Test("several invalid fields are all counted")
    func invalidCounted() {
        let (text, skipped) = Self.head(headers: HTTPHeaders([("A B", "1"), ("X", "\r\n"), ("Ok", "tab\tand obs-text \u{E9}")]))
        #expect(skipped == 2)
        #expect(text.hasSuffix("\r\nOk: tab\tand obs-text \u{E9}\r\n\r\n"))
    }

    @Test("a 204 carries no Content-Length")
    func noContentLengthFor204() {
        #expect(!Self.head(status: 204).text.contains("Content-Length"))
    }

    @Test(
        "appendDecimal writes the decimal digits",
        arguments: [
            (0, "0"), (9, "9"), (10, "10"), (99, "99"), (100, "100"), (1234567890, "1234567890"),
            (Int.max, "9223372036854775807"), (-1, "0"), (Int.min, "0"),
        ]
    )
    func appendDecimal(value: Int, expected: String) {
        var buffer = bytes("x")
        HTTPResponseSerializer.appendDecimal(value, to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "x" + expected)
    }

    @Test(
        "reason phrases",
        arguments: [
            (200, "OK"), (204, "No Content"), (400, "Bad Request"), (404, "Not Found"), (413, "Content Too Large"),
            (414, "URI Too Long"), (417, "Expectation Failed"), (431, "Request Header Fields Too Large"),
            (501, "Not Implemented"), (505, "HTTP Version Not Supported"), (299, "Status"), (799, "Status"), (0, "Status"),
        ]
    )
    func reasonPhrase(status: Int, expected: String) {
        #expect(HTTPStatus.reasonPhrase(status) == expected)
    }

    @Test("the status line of an unknown status uses the generic reason")
    func unknownStatusLine() {
        #expect(Self.head(status: 599).text.hasPrefix("HTTP/1.1 599 Status\r\n"))
    }

    @Test("every status the parser refuses with has its own reason phrase")
    func parserStatusesHavePhrases() {
        let errors: [HTTPError] = [
            .badRequest("x"), .payloadTooLarge, .uriTooLong, .headerFieldsTooLarge, .expectationFailed,
            .unsupportedTransferCoding, .versionNotSupported,
        ]
        for error in errors {
            #expect(HTTPStatus.reasonPhrase(error.status) != "Status", "\(error.status)")
        }
    }

    @Test("100 Continue bytes")
    func continueResponse() {
        #expect(HTTPResponseSerializer.continueResponse == bytes("HTTP/1.1 100 Continue\r\n\r\n"))
    }

    @Test(
        "forbidsBody is true for 1xx, 204 and 304 only",
        arguments: [
            (100, true), (101, true), (199, true), (204, true), (304, true),
            (200, false), (201, false), (205, false), (299, false), (303, false), (404, false), (99, false),
        ]
    )
    func forbidsBody(status: Int, expected: Bool) {
        #expect(HTTPStatus.forbidsBody(status) == expected)
    }
}
