// Recognizes where one HTTP/1.1 response ends in a byte stream, and what it says about the
// connection. It is deliberately a framing parser, not a validating one: the drill's question is
// "did a whole response arrive?", so it reads only what framing needs (status line, Connection,
// Content-Length, Transfer-Encoding) and treats anything it cannot frame as an error.
//
// Pure and stateless (bytes in, a verdict out), so the classifier can be tested on canned
// streams without sockets; the socket reader calls it again after each recv.

/// The parts of a complete response the drill reports on.
struct ParsedResponse: Equatable, Sendable {
    var status: Int
    /// The server said it will close the connection after this response (`Connection: close`,
    /// or HTTP/1.0 without keep-alive, or a body delimited by the connection closing).
    var close: Bool
}

/// The verdict on a buffer that starts at a response's first byte.
enum ResponseParse: Equatable, Sendable {
    /// More bytes are needed (at end of stream this means the response was cut short).
    case incomplete
    /// A whole response: its first `consumed` bytes (interim 1xx responses included).
    case complete(ParsedResponse, consumed: Int)
    /// The bytes cannot be a response the drill can frame.
    case invalid(String)
}

enum ResponseParser {
    /// A header section longer than this without its blank line is taken as garbage rather than
    /// waited for: the service's own requests are limited to 16 KiB of headers.
    static let maxHeaderBytes = 64 * 1024

    /// Parses the response at `bytes[start...]`. With `atEndOfStream`, the peer has closed, so a
    /// body delimited by the close (no Content-Length, not chunked) is complete.
    static func parse(_ bytes: [UInt8], from start: Int = 0, atEndOfStream: Bool) -> ResponseParse {
        var position = start
        // Interim 1xx responses (100 Continue, 103 Early Hints) precede the final one.
        while true {
            let head: Head
            switch parseHead(bytes, from: position) {
            case .incomplete: return .incomplete
            case .invalid(let reason): return .invalid(reason)
            case .head(let parsed): head = parsed
            }
            if head.status == 101 {
                return .invalid("unexpected 101 Switching Protocols")
            }
            if head.status < 200 {
                position = head.end
                continue
            }
            let close = head.connectionClose || (head.minorVersion == 0 && !head.connectionKeepAlive)
            // RFC 9112 §6.3: 204 and 304 never have a body, whatever the headers say.
            if head.status == 204 || head.status == 304 {
                return .complete(ParsedResponse(status: head.status, close: close), consumed: head.end - start)
            }
            if head.chunked {
                switch parseChunkedBody(bytes, from: head.end) {
                case .incomplete: return .incomplete
                case .invalid(let reason): return .invalid(reason)
                case .end(let end):
                    return .complete(ParsedResponse(status: head.status, close: close), consumed: end - start)
                }
            }
            if let length = head.contentLength {
                guard bytes.count - head.end >= length else { return .incomplete }
                return .complete(ParsedResponse(status: head.status, close: close), consumed: head.end + length - start)
            }
            // No length: the body runs until the server closes (RFC 9112 §6.3 rule 8).
            guard atEndOfStream else { return .incomplete }
            return .complete(ParsedResponse(status: head.status, close: true), consumed: bytes.count - start)
        }
    }

    // MARK: - Status line and headers

    private struct Head {
        var status: Int
        var minorVersion: Int
        var connectionClose = false
        var connectionKeepAlive = false
        var contentLength: Int?
        var chunked = false
        /// Index just past the blank line that ends the header section.
        var end: Int
    }

    private enum HeadParse {
        case incomplete
        case invalid(String)
        case head(Head)
    }

    private static func parseHead(_ bytes: [UInt8], from start: Int) -> HeadParse {
        var lineStart = start
        var head: Head?
        while true {
            // Lines end in CRLF; a bare LF is tolerated (RFC 9112 §2.2 allows a recipient to).
            guard let newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) else {
                return bytes.count - start > maxHeaderBytes ? .invalid("header section too large") : .incomplete
            }
            guard newline - start <= maxHeaderBytes else { return .invalid("header section too large") }
            var lineEnd = newline
            if lineEnd > lineStart && bytes[lineEnd - 1] == UInt8(ascii: "\r") {
                lineEnd -= 1
            }
            let line = bytes[lineStart..<lineEnd]
            lineStart = newline + 1

            guard var current = head else {
                guard let parsed = parseStatusLine(line) else {
                    return .invalid("bad status line")
                }
                head = Head(status: parsed.status, minorVersion: parsed.minor, end: 0)
                continue
            }
            if line.isEmpty {
                current.end = lineStart
                return .head(current)
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                return .invalid("bad header line")
            }
            let name = lowercased(line[line.startIndex..<colon])
            let value = trimmed(line[(colon + 1)...])
            switch name {
            case "connection":
                for token in lowercased(value).split(separator: ",") {
                    let option = token.trimmingCharacters(in: " \t")
                    if option == "close" { current.connectionClose = true }
                    if option == "keep-alive" { current.connectionKeepAlive = true }
                }
            case "content-length":
                guard let length = Int(String(decoding: value, as: UTF8.self)), length >= 0 else {
                    return .invalid("bad Content-Length")
                }
                if let earlier = current.contentLength, earlier != length {
                    return .invalid("conflicting Content-Length")
                }
                current.contentLength = length
            case "transfer-encoding":
                // Only the last coding frames the body; chunked anywhere else is an error we
                // need not diagnose, since the drill only talks to one server.
                let codings = lowercased(value).split(separator: ",").map { $0.trimmingCharacters(in: " \t") }
                current.chunked = codings.last == "chunked"
            default:
                break
            }
            head = current
        }
    }

    /// `HTTP/1.x SSS[ reason]`: the minor version and status code.
    private static func parseStatusLine(_ line: ArraySlice<UInt8>) -> (minor: Int, status: Int)? {
        let bytes = Array(line)
        let prefix = Array("HTTP/1.".utf8)
        guard bytes.count >= 12, bytes.starts(with: prefix) else { return nil }
        guard let minor = digit(bytes[7]), bytes[8] == UInt8(ascii: " ") else { return nil }
        guard let d1 = digit(bytes[9]), let d2 = digit(bytes[10]), let d3 = digit(bytes[11]) else { return nil }
        guard bytes.count == 12 || bytes[12] == UInt8(ascii: " ") else { return nil }
        let status = d1 * 100 + d2 * 10 + d3
        guard status >= 100 else { return nil }
        return (minor, status)
    }

    // MARK: - Chunked bodies

    private enum ChunkedParse {
        case incomplete
        case invalid(String)
        case end(Int)
    }

    private static func parseChunkedBody(_ bytes: [UInt8], from start: Int) -> ChunkedParse {
        var position = start
        while true {
            guard let newline = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else { return .incomplete }
            var sizeEnd = newline
            if sizeEnd > position && bytes[sizeEnd - 1] == UInt8(ascii: "\r") {
                sizeEnd -= 1
            }
            if let semicolon = bytes[position..<newline].firstIndex(of: UInt8(ascii: ";")) {
                sizeEnd = semicolon
            }
            let sizeText = String(decoding: trimmed(bytes[position..<sizeEnd]), as: UTF8.self)
            guard !sizeText.isEmpty, sizeText.count <= 15, let size = Int(sizeText, radix: 16) else {
                return .invalid("bad chunk size")
            }
            position = newline + 1
            if size == 0 {
                // Trailer fields, then a blank line.
                while true {
                    guard let end = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else { return .incomplete }
                    let isBlank = end == position || (end == position + 1 && bytes[position] == UInt8(ascii: "\r"))
                    position = end + 1
                    if isBlank { return .end(position) }
                }
            }
            // The chunk's data and its CRLF.
            guard bytes.count >= position + size + 1 else { return .incomplete }
            position += size
            if bytes[position] == UInt8(ascii: "\r") {
                guard bytes.count >= position + 2 else { return .incomplete }
                position += 1
            }
            guard bytes[position] == UInt8(ascii: "\n") else { return .invalid("bad chunk end") }
            position += 1
        }
    }

    // MARK: - Bytes

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    private static func lowercased(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }),
              let last = bytes.lastIndex(where: { !isSpace($0) }) else { return bytes[bytes.endIndex...] }
        return bytes[first...last]
    }
}

private extension Substring {
    /// Trims the given ASCII characters from both ends (FoundationEssentials-free).
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        return String(drop { characters.contains($0) }.reversed().drop { characters.contains($0) }.reversed())
    }
}
