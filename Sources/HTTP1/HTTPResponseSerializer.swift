/// HTTPResponseSerializer writes a response head as bytes.
///
/// The server owns framing: it writes `Content-Length`, `Date` and `Connection` itself, so any
/// of those (and `Transfer-Encoding`) set by a handler are skipped rather than sent twice.
/// Fields whose name is not a token or whose value holds CR, LF or NUL are skipped too: a
/// handler echoing client input must never split the response (CWE-113).
public enum HTTPResponseSerializer {
    /// Appends a status line and header section to `buffer`.
    ///
    /// - Parameters:
    ///   - contentLength: the body length to announce (for HEAD, the length a GET would have);
    ///     nil for none, as for 1xx and 204 responses (RFC 9110 §8.6).
    ///   - date: the value of the `Date` field, an IMF-fixdate (RFC 9110 §5.6.7).
    ///   - connection: `close`, `keep-alive` (for a 1.0 client that asked) or nil for none.
    ///   - requestID: the value of an `X-Request-ID` field written after the handler's fields,
    ///     or nil for none. Passed apart so the server need not copy the handler's fields to
    ///     add it; it is validated like any field value.
    ///   - chunked: whether to announce `Transfer-Encoding: chunked` (a body of unknown length
    ///     to an HTTP/1.1 client); pass no `contentLength` with it.
    /// - Returns: the number of handler fields skipped as invalid (reserved fields the server
    ///   writes itself are replaced silently and not counted).
    @discardableResult
    public static func writeHead(
        status: Int,
        headers: HTTPHeaders,
        contentLength: Int?,
        date: [UInt8],
        connection: String?,
        requestID: String? = nil,
        chunked: Bool = false,
        into buffer: inout [UInt8]
    ) -> Int {
        let status = min(max(status, 100), 999)
        let reason = HTTPStatus.staticReasonPhrase(status)
        // The head is written in one pass into space reserved once (see ByteWriter), not
        // appended piece by piece: with the bulk validation below that took this function from
        // about 5,200 to about 900 instructions per /health response. The bound: the fixed
        // text (at most 110 bytes), the 20 digits of a length, and every string's bytes.
        var bound = 110 + 20 + reason.utf8CodeUnitCount + date.count + (connection?.utf8.count ?? 0)
        for field in headers { bound += 4 + field.name.utf8.count + field.value.utf8.count }
        bound += requestID?.utf8.count ?? 0
        return buffer.appendBytes(atMost: bound) { out in
            out.write("HTTP/1.1 ")
            out.writeDecimal(UInt64(status))
            out.write(ASCII.space)
            out.write(reason)
            out.write("\r\nDate: ")
            out.write(date)
            // RFC 9110 §8.6: never a Content-Length on a 1xx or 204, whatever the caller passed.
            if let contentLength, status >= 200, status != 204 {
                out.write("\r\nContent-Length: ")
                out.writeDecimal(UInt64(max(contentLength, 0)))
            }
            if chunked, status >= 200, status != 204 {
                out.write("\r\nTransfer-Encoding: chunked")
            }
            if let connection {
                out.write("\r\nConnection: ")
                out.write(utf8: connection)
            }
            var skipped = 0
            for field in headers where !isReserved(field.name) {
                guard isValidName(field.name), isValidValue(field.value) else {
                    skipped += 1
                    continue
                }
                out.write("\r\n")
                out.write(utf8: field.name)
                out.write(": ")
                out.write(utf8: field.value)
            }
            if let requestID {
                if isValidValue(requestID) {
                    out.write("\r\nX-Request-ID: ")
                    out.write(utf8: requestID)
                } else {
                    skipped += 1
                }
            }
            out.write("\r\n\r\n")
            return skipped
        }
    }

    /// The interim response sent before reading a body the client held back (RFC 9110 §10.1.1).
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    static func isValidName(_ name: String) -> Bool {
        name.withUTF8Bytes { bytes in
            guard !bytes.isEmpty else { return false }
            for byte in bytes where !ASCII.isToken(byte) { return false }
            return true
        }
    }

    static func isValidValue(_ value: String) -> Bool {
        value.withUTF8Bytes { ASCII.isFieldValue(UnsafeRawBufferPointer($0), 0..<$0.count) }
    }

    static func isReserved(_ name: String) -> Bool {
        switch name.utf8.count {
        case 4: return HTTPHeaders.equalsIgnoringCase(name, "date")
        case 10: return HTTPHeaders.equalsIgnoringCase(name, "connection")
        case 14: return HTTPHeaders.equalsIgnoringCase(name, "content-length")
        case 17: return HTTPHeaders.equalsIgnoringCase(name, "transfer-encoding")
        default: return false
        }
    }

    /// Appends the decimal digits of a non-negative integer without creating a String.
    @inlinable
    public static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        var value = UInt(max(value, 0))
        if value < 10 {
            buffer.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        // Digits written backwards into a stack buffer, then appended in one go.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            var start = raw.count
            while value > 0 {
                start -= 1
                raw[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
                value /= 10
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[start...]))
        }
    }
}

/// Reason phrases for the statuses a service commonly sends (RFC 9110 §15).
public enum HTTPStatus {
    public static func reasonPhrase(_ status: Int) -> String {
        staticReasonPhrase(status).description
    }

    /// ``reasonPhrase(_:)`` as a literal, which the serializer copies without making a String.
    static func staticReasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }

    /// Whether a response with this status never has a body (RFC 9110 §6.4.1).
    public static func forbidsBody(_ status: Int) -> Bool {
        (100..<200).contains(status) || status == 204 || status == 304
    }
}
