/// HTTPRequestParser turns the bytes of a request's head into an ``HTTPRequestHead``.
///
/// It is strict wherever leniency lets two parties disagree about where a message ends
/// (request smuggling, RFC 9112 §11.2): bare LF, obs-fold, whitespace before a colon,
/// controls in values, a malformed or repeated-but-different Content-Length, Content-Length
/// together with Transfer-Encoding, a Transfer-Encoding other than one field holding exactly
/// `chunked`, and a Host that is not `uri-host [":" port]` are all refused.
public enum HTTPRequestParser {
    /// The outcome of looking for a complete head at the start of a buffer.
    public enum HeadResult: Sendable, Equatable {
        /// More bytes are needed. Pass `resumeAt` back as `scanFrom` with the grown buffer so
        /// lines already checked are not scanned again.
        case incomplete(resumeAt: Int)
        /// A head of `length` bytes (leading empty lines included) was parsed.
        case complete(HTTPRequestHead, length: Int)
        case failure(HTTPError)
    }

    /// Parses a request head from the start of `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: buffered input; the head starts at offset 0.
    ///   - scanFrom: a `resumeAt` from an earlier `.incomplete` for the same buffer, or 0.
    ///   - limits: sizes past which the request is refused.
    public static func parseHead(
        _ bytes: UnsafeRawBufferPointer, scanFrom: Int = 0, limits: HTTPLimits
    ) -> HeadResult {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line
        // (some clients send CRLF after a POST body).
        var start = 0
        while start + 1 < bytes.count, bytes[start] == ASCII.cr, bytes[start + 1] == ASCII.lf {
            start += 2
        }
        if start >= limits.maxHeaderBytes { return .failure(.headerFieldsTooLarge) }
        if start == bytes.count || (start + 1 == bytes.count && bytes[start] == ASCII.cr) {
            return .incomplete(resumeAt: 0)
        }

        // Find the empty line that ends the head, checking that every line ends in CRLF.
        var lineStart = max(scanFrom, start)
        var requestLineEnd = -1
        var headEnd = -1
        while let lf = firstLF(bytes, from: lineStart) {
            guard lf > lineStart, bytes[lf - 1] == ASCII.cr else {
                return .failure(.badRequest("line not terminated by CRLF"))
            }
            if lineStart == start {
                requestLineEnd = lf - 1
                if requestLineEnd - start > limits.maxRequestLineBytes { return .failure(.uriTooLong) }
            } else if lf - 1 == lineStart {
                headEnd = lf + 1
                break
            }
            lineStart = lf + 1
            if lineStart - start > limits.maxHeaderBytes { return .failure(.headerFieldsTooLarge) }
        }
        guard headEnd >= 0 else {
            // A CR at the very end may be the first half of the line's CRLF: not line content.
            let pending = bytes.count - start - (bytes[bytes.count - 1] == ASCII.cr ? 1 : 0)
            if lineStart == start && pending > limits.maxRequestLineBytes {
                return .failure(.uriTooLong)
            }
            if bytes.count - start > limits.maxHeaderBytes + 2 { return .failure(.headerFieldsTooLarge) }
            return .incomplete(resumeAt: lineStart)
        }
        if headEnd - start > limits.maxHeaderBytes + 2 { return .failure(.headerFieldsTooLarge) }
        if requestLineEnd < 0 {
            // The request line was checked by an earlier call; find its end again.
            guard let lf = firstLF(bytes, from: start) else { return .failure(.badRequest("malformed request line")) }
            requestLineEnd = lf - 1
        }

        switch parse(bytes, requestLine: start..<requestLineEnd, fields: (requestLineEnd + 2)..<(headEnd - 2), limits: limits) {
        case .success(let head): return .complete(head, length: headEnd)
        case .failure(let error): return .failure(error)
        }
    }

    /// The offset of the first LF at or after `from`. Eight bytes at a time: a word holds an LF
    /// iff the word XOR 0x0A0A... has a zero byte, and the lowest byte the zero-byte test flags
    /// is always a real one. About a quarter of the instructions of a byte loop on a typical head.
    @inline(__always)
    static func firstLF(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var i = from
        if let base = bytes.baseAddress {
            while i + 8 <= bytes.count {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ 0x0A0A_0A0A_0A0A_0A0A
                let zeros = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
                if zeros != 0 { return i + zeros.trailingZeroBitCount / 8 }
                i += 8
            }
        }
        while i < bytes.count {
            if bytes[i] == ASCII.lf { return i }
            i += 1
        }
        return nil
    }

    /// Parses a complete head: the request line and the field lines, each CRLF-terminated.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, requestLine: Range<Int>, fields: Range<Int>, limits: HTTPLimits
    ) -> Result<HTTPRequestHead, HTTPError> {
        // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
        var i = requestLine.lowerBound
        while i < requestLine.upperBound, ASCII.isToken(bytes[i]) { i += 1 }
        guard i > requestLine.lowerBound, i < requestLine.upperBound, bytes[i] == ASCII.space else {
            return .failure(.badRequest("malformed request line"))
        }
        let method = common(methods, bytes, requestLine.lowerBound..<i, lowercasing: false)
            ?? String(bytes, requestLine.lowerBound..<i)
        let targetStart = i + 1
        i = targetStart
        while i < requestLine.upperBound, bytes[i] > 0x20, bytes[i] < 0x7F { i += 1 }
        guard i > targetStart, i < requestLine.upperBound, bytes[i] == ASCII.space else {
            return .failure(.badRequest("malformed request line"))
        }
        let targetRange = targetStart..<i
        let versionRange = (i + 1)..<requestLine.upperBound
        let version: HTTPVersion
        switch parseVersion(bytes, versionRange) {
        case .success(let v): version = v
        case .failure(let e): return .failure(e)
        }

        // field-line = field-name ":" OWS field-value OWS (RFC 9112 §5)
        var headers = HTTPHeaders()
        headers.fields.reserveCapacity(8)
        var hostCount = 0
        // The first Content-Length value, as sent (OWS trimmed) and as a number.
        var contentLengthText: String?
        var contentLength = 0
        var contentLengthMalformed = false
        var contentLengthConflict = false
        var transferEncodingFields = 0
        var transferCodings = TransferCodings()
        var connectionClose = false
        var connectionKeepAlive = false
        var expectsContinue = false
        var badExpectation = false

        var lineStart = fields.lowerBound
        while lineStart < fields.upperBound {
            guard let lf = firstLF(bytes, from: lineStart) else { break }
            let lineEnd = lf - 1  // the CR
            if bytes[lineStart] == ASCII.space || bytes[lineStart] == ASCII.tab {
                return .failure(.badRequest("obsolete line folding"))
            }
            var colon = lineStart
            while colon < lineEnd, ASCII.isToken(bytes[colon]) { colon += 1 }
            guard colon < lineEnd, bytes[colon] == ASCII.colon else {
                if colon < lineEnd, bytes[colon] == ASCII.space || bytes[colon] == ASCII.tab {
                    return .failure(.badRequest("whitespace before colon in header field"))
                }
                return .failure(.badRequest("invalid header field name"))
            }
            guard colon > lineStart else { return .failure(.badRequest("empty header field name")) }
            var valueStart = colon + 1
            var valueEnd = lineEnd
            while valueStart < valueEnd, bytes[valueStart] == ASCII.space || bytes[valueStart] == ASCII.tab {
                valueStart += 1
            }
            while valueEnd > valueStart, bytes[valueEnd - 1] == ASCII.space || bytes[valueEnd - 1] == ASCII.tab {
                valueEnd -= 1
            }
            guard ASCII.isFieldValue(bytes, valueStart..<valueEnd) else {
                return .failure(.badRequest("invalid character in header field value"))
            }
            if headers.count >= limits.maxHeaderCount { return .failure(.headerFieldsTooLarge) }
            let name = common(fieldNames, bytes, lineStart..<colon, lowercasing: true)
                ?? String(lowercasedToken: bytes, lineStart..<colon)
            let value = String(bytes, valueStart..<valueEnd)

            // Only names as long as one of these can be one; the length test spares most
            // fields five string comparisons.
            let nameLength = colon - lineStart
            let special = nameLength == 4 || nameLength == 6 || nameLength == 10 || nameLength == 14 || nameLength == 17
            switch special ? name : "" {
            case "host":
                hostCount += 1
                guard isValidHost(bytes, valueStart..<valueEnd) else {
                    return .failure(.badRequest("invalid Host header field"))
                }
            case "content-length":
                // 1*DIGIT, in one field or in several with the same text, as Go requires: a
                // list (RFC 9112 §6.3 item 5 lets a recipient refuse one) or `2` beside `02` is
                // a message two parsers may frame differently.
                if let first = contentLengthText {
                    if value != first { contentLengthConflict = true }
                } else if let length = parseContentLength(value[...]) {
                    contentLengthText = value
                    contentLength = length
                } else {
                    contentLengthMalformed = true
                }
            case "transfer-encoding":
                transferEncodingFields += 1
                transferCodings.scan(bytes, valueStart..<valueEnd)
            case "connection":
                for element in value.split(separator: ",") {
                    switch lowercasedTrimmed(element) {
                    case "close": connectionClose = true
                    case "keep-alive": connectionKeepAlive = true
                    default: break
                    }
                }
            case "expect" where !value.isEmpty:
                // An empty value expects nothing (as Go reads it); any other value but
                // 100-continue is an expectation this server cannot meet.
                if lowercasedTrimmed(Substring(value)) == "100-continue" {
                    // RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request.
                    expectsContinue = version == .http1_1
                } else {
                    badExpectation = true
                }
            default:
                break
            }
            headers.fields.append((name: name, value: value))
            lineStart = lf + 1
        }

        // RFC 9112 §3.2: a 1.1 request without exactly one Host is a 400.
        if hostCount > 1 { return .failure(.badRequest("multiple Host header fields")) }
        if hostCount == 0 && version == .http1_1 { return .failure(.badRequest("missing Host header field")) }

        let framing: BodyFraming
        if transferEncodingFields > 0 {
            if contentLengthText != nil || contentLengthMalformed {
                return .failure(.badRequest("both Content-Length and Transfer-Encoding"))
            }
            // RFC 9112 §6.1: Transfer-Encoding in a 1.0 message means faulty framing.
            if version == .http1_0 { return .failure(.badRequest("Transfer-Encoding in an HTTP/1.0 request")) }
            // An empty list element (`,chunked`) is malformed; a coding other than chunked is
            // one this server does not implement; `chunked` is accepted once, alone, in one
            // field (as Go does).
            if transferCodings.sawEmpty { return .failure(.badRequest("invalid Transfer-Encoding")) }
            if transferCodings.sawOther { return .failure(.unsupportedTransferCoding) }
            guard transferEncodingFields == 1, transferCodings.count == 1 else {
                return .failure(.badRequest("invalid Transfer-Encoding"))
            }
            framing = .chunked
        } else if contentLengthMalformed {
            return .failure(.badRequest("invalid Content-Length"))
        } else if contentLengthConflict {
            return .failure(.badRequest("conflicting Content-Length values"))
        } else if contentLengthText != nil {
            framing = contentLength == 0 ? .none : .contentLength(contentLength)
        } else {
            framing = .none
        }
        if badExpectation { return .failure(.expectationFailed) }

        // request-target forms (RFC 9112 §3.2). None of them has a fragment.
        for i in targetRange where bytes[i] == UInt8(ascii: "#") {
            return .failure(.badRequest("fragment in request target"))
        }
        let target = String(bytes, targetRange)
        var path: String
        var query: String?
        if bytes[targetRange.lowerBound] == UInt8(ascii: "/") {
            (path, query) = splitPathAndQuery(bytes, targetRange, whole: target)
        } else if let pathStart = absoluteFormPathStart(bytes, targetRange) {
            if pathStart == targetRange.upperBound {
                path = "/"
                query = nil
            } else if bytes[pathStart] == UInt8(ascii: "?") {
                (path, query) = splitPathAndQuery(bytes, pathStart..<targetRange.upperBound)
                path = "/"
            } else {
                (path, query) = splitPathAndQuery(bytes, pathStart..<targetRange.upperBound)
            }
        } else if target == "*" && method == "OPTIONS" {
            path = "*"
        } else if method == "CONNECT" {
            path = target
        } else {
            return .failure(.badRequest("invalid request target"))
        }

        let keepAlive = version == .http1_1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return .success(HTTPRequestHead(
            method: method, target: target, path: path, query: query, version: version,
            headers: headers, framing: framing, keepAlive: keepAlive, expectsContinue: expectsContinue
        ))
    }

    /// Methods and (lowercase) field names common enough to be worth matching: a match is an
    /// immortal literal, which costs nothing to create, copy or release, where a new String
    /// costs about 130 instructions to make and validate.
    static let methods: [String] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    static let fieldNames: [String] = [
        "host", "user-agent", "accept", "accept-encoding", "accept-language", "connection", "content-length",
        "content-type", "transfer-encoding", "expect", "x-request-id", "authorization", "cookie",
        "x-forwarded-for", "traceparent",
    ]

    /// The entry of `candidates` equal to `bytes[range]` (ASCII-lowercased first if asked), as
    /// a String made from the literal; nil for none.
    @inline(__always)
    static func common(
        _ candidates: [String], _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, lowercasing: Bool
    ) -> String? {
        for candidate in candidates where candidate.utf8.count == range.count {
            var literal = candidate  // withUTF8 is mutating; a literal is not copied
            let equal = literal.withUTF8 { literal in
                for (offset, index) in range.enumerated() {
                    let byte = lowercasing ? ASCII.lowercased(bytes[index]) : bytes[index]
                    if byte != literal[offset] { return false }
                }
                return true
            }
            if equal { return candidate }
        }
        return nil
    }

    /// HTTP-version = "HTTP/" DIGIT "." DIGIT. Other well-formed versions are a 505.
    static func parseVersion(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Result<HTTPVersion, HTTPError> {
        guard range.count == 8 else { return .failure(.badRequest("malformed HTTP version")) }
        // Byte by byte rather than against an `Array("HTTP/".utf8)`, which was a heap
        // allocation per request.
        let b = range.lowerBound
        guard bytes[b] == UInt8(ascii: "H"), bytes[b + 1] == UInt8(ascii: "T"), bytes[b + 2] == UInt8(ascii: "T"),
              bytes[b + 3] == UInt8(ascii: "P"), bytes[b + 4] == UInt8(ascii: "/") else {
            return .failure(.badRequest("malformed HTTP version"))
        }
        let major = bytes[range.lowerBound + 5]
        let dot = bytes[range.lowerBound + 6]
        let minor = bytes[range.lowerBound + 7]
        guard ASCII.isDigit(major), dot == UInt8(ascii: "."), ASCII.isDigit(minor) else {
            return .failure(.badRequest("malformed HTTP version"))
        }
        let version = HTTPVersion(major: Int(major - UInt8(ascii: "0")), minor: Int(minor - UInt8(ascii: "0")))
        guard version == .http1_1 || version == .http1_0 else { return .failure(.versionNotSupported) }
        return .success(version)
    }

    /// The elements of Transfer-Encoding values (RFC 9110 §5.6.1 lists), read in place.
    struct TransferCodings {
        /// Non-empty elements.
        var count = 0
        /// Whether an element was empty (`,chunked`, `chunked,`, an empty value).
        var sawEmpty = false
        /// Whether a non-empty element was other than `chunked` (case-insensitive).
        var sawOther = false

        mutating func scan(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) {
            var elementStart = value.lowerBound
            while true {
                var end = elementStart
                while end < value.upperBound, bytes[end] != UInt8(ascii: ",") { end += 1 }
                let comma = end
                var start = elementStart
                while start < end, bytes[start] == ASCII.space || bytes[start] == ASCII.tab { start += 1 }
                while end > start, bytes[end - 1] == ASCII.space || bytes[end - 1] == ASCII.tab { end -= 1 }
                if start == end {
                    sawEmpty = true
                } else {
                    count += 1
                    if !HTTPRequestParser.equalsLowercase(bytes, start..<end, "chunked") { sawOther = true }
                }
                guard comma < value.upperBound else { return }
                elementStart = comma + 1
            }
        }
    }

    /// Whether `bytes[range]`, ASCII-lowercased, is `lowercase`.
    @inline(__always)
    static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        var offset = 0
        for index in range {
            if ASCII.lowercased(bytes[index]) != lowercase.utf8Start[offset] { return false }
            offset += 1
        }
        return true
    }

    /// Host = uri-host [ ":" port ] (RFC 9112 §3.2; RFC 3986 §3.2.2, §3.2.3), or empty (a
    /// target without an authority). uri-host is a non-empty reg-name (which includes
    /// IPv4address: unreserved, sub-delims, pct-encoded) or an IP-literal in brackets; the port
    /// is at most five digits naming 0 to 65535, or nothing after the colon (RFC 3986 allows an
    /// empty port).
    /// A byte scan without allocations: it runs on every request.
    static func isValidHost(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        let end = range.upperBound
        var i = range.lowerBound
        // The common case first, in one pass: a name or IPv4 address without pct-encoding.
        while i < end, ASCII.isRegName(bytes[i]) { i += 1 }
        if i == end { return true }
        if bytes[i] == ASCII.colon && i > range.lowerBound { return isValidPort(bytes, (i + 1)..<end) }
        i = range.lowerBound
        if bytes[i] == UInt8(ascii: "[") {
            var close = i + 1
            while close < end, bytes[close] != UInt8(ascii: "]") { close += 1 }
            guard close < end, isValidIPLiteral(bytes, (i + 1)..<close) else { return false }
            i = close + 1
        } else {
            let hostStart = i
            while i < end, bytes[i] != ASCII.colon {
                guard let next = afterURIByte(bytes, i, end, ASCII.isRegName) else { return false }
                i = next
            }
            guard i > hostStart else { return false }
        }
        if i == end { return true }
        return bytes[i] == ASCII.colon && isValidPort(bytes, (i + 1)..<end)
    }

    /// At most five digits naming 0 to 65535, or none.
    @inline(__always)
    static func isValidPort(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard range.count <= 5 else { return false }
        var port = 0
        for index in range {
            guard ASCII.isDigit(bytes[index]) else { return false }
            port = port * 10 + Int(bytes[index] &- UInt8(ascii: "0"))
        }
        return port <= 65535
    }

    /// The inside of an IP-literal's brackets (RFC 3986 §3.2.2): IPvFuture, `v` 1*HEXDIG "."
    /// 1*( unreserved / sub-delims / ":" ); or the characters of an IPv6address (HEXDIG, ":",
    /// "."; at least one ":"), optionally with an RFC 6874 zone, "%25" 1*( unreserved /
    /// pct-encoded ). The IPv6 groups themselves are not counted.
    static func isValidIPLiteral(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        var i = range.lowerBound
        let end = range.upperBound
        guard i < end else { return false }
        if bytes[i] | 0x20 == UInt8(ascii: "v") {
            i += 1
            let hexStart = i
            while i < end, ASCII.isHexDigit(bytes[i]) { i += 1 }
            guard i > hexStart, i < end, bytes[i] == UInt8(ascii: ".") else { return false }
            i += 1
            guard i < end else { return false }
            for index in i..<end where !(ASCII.isRegName(bytes[index]) || bytes[index] == ASCII.colon) { return false }
            return true
        }
        var sawColon = false
        while i < end, bytes[i] != UInt8(ascii: "%") {
            guard ASCII.isHexDigit(bytes[i]) || bytes[i] == ASCII.colon || bytes[i] == UInt8(ascii: ".") else { return false }
            if bytes[i] == ASCII.colon { sawColon = true }
            i += 1
        }
        guard sawColon else { return false }
        if i == end { return true }
        // The zone: "%25" then at least one unreserved or pct-encoded.
        guard i + 3 < end, bytes[i + 1] == UInt8(ascii: "2"), bytes[i + 2] == UInt8(ascii: "5") else { return false }
        i += 3
        while i < end {
            guard let next = afterURIByte(bytes, i, end, ASCII.isUnreserved) else { return false }
            i = next
        }
        return true
    }

    /// The offset after the URI character at `i` (before `end`): a pct-encoded triplet ("%"
    /// HEXDIG HEXDIG) or one byte `allowed` accepts; nil for anything else.
    @inline(__always)
    static func afterURIByte(
        _ bytes: UnsafeRawBufferPointer, _ i: Int, _ end: Int, _ allowed: (UInt8) -> Bool
    ) -> Int? {
        if bytes[i] == UInt8(ascii: "%") {
            guard i + 2 < end, ASCII.isHexDigit(bytes[i + 1]), ASCII.isHexDigit(bytes[i + 2]) else { return nil }
            return i + 3
        }
        return allowed(bytes[i]) ? i + 1 : nil
    }

    /// Content-Length = 1*DIGIT, with optional surrounding whitespace. Values too
    /// large for an Int saturate at Int.max, which is over any body limit (``HTTPLimits`` keeps
    /// `maxBodyBytes` below it), so they are refused with 413 whatever they are.
    static func parseContentLength(_ text: Substring) -> Int? {
        let digits = text.utf8.drop { $0 == ASCII.space || $0 == ASCII.tab }
            .reversed().drop { $0 == ASCII.space || $0 == ASCII.tab }.reversed()
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard ASCII.isDigit(byte) else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            value = overflow1 || overflow2 ? Int.max : sum
        }
        return value
    }

    static func lowercasedTrimmed(_ text: Substring) -> String {
        var bytes = Array(text.utf8)
        while let last = bytes.last, last == ASCII.space || last == ASCII.tab { bytes.removeLast() }
        let start = bytes.firstIndex { $0 != ASCII.space && $0 != ASCII.tab } ?? bytes.count
        return String(decoding: bytes[start...].map(ASCII.lowercased), as: UTF8.self)
    }

    /// - Parameter whole: the string of all of `range`, if the caller has it already: the path
    ///   when there is no query.
    static func splitPathAndQuery(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, whole: String? = nil) -> (String, String?) {
        var q = range.lowerBound
        while q < range.upperBound, bytes[q] != UInt8(ascii: "?") { q += 1 }
        if q == range.upperBound { return (whole ?? String(bytes, range), nil) }
        return (String(bytes, range.lowerBound..<q), String(bytes, (q + 1)..<range.upperBound))
    }

    /// For `http://authority/path?query` (scheme case-insensitive, `https` too), the offset
    /// where the path (or `?`) starts; nil when the target is not absolute-form.
    static func absoluteFormPathStart(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        var i = range.lowerBound
        for expected in "http".utf8 {
            guard i < range.upperBound, ASCII.lowercased(bytes[i]) == expected else { return nil }
            i += 1
        }
        if i < range.upperBound, ASCII.lowercased(bytes[i]) == UInt8(ascii: "s") { i += 1 }
        for expected in "://".utf8 {
            guard i < range.upperBound, bytes[i] == expected else { return nil }
            i += 1
        }
        let authorityStart = i
        while i < range.upperBound, bytes[i] != UInt8(ascii: "/"), bytes[i] != UInt8(ascii: "?") { i += 1 }
        return i > authorityStart ? i : nil
    }
}
