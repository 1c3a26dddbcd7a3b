/// Response is what a handler returns: a status, header fields and a body.
///
/// The server adds `Date`, `Content-Length`, `Connection` and `X-Request-ID` itself.
public struct Response: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int = 200, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with a UTF-8 text body.
    public static func text(_ text: String, status: Int = 200) -> Response {
        Response(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// A response whose body is already-encoded JSON.
    public static func json(raw: [UInt8], status: Int = 200) -> Response {
        Response(status: status, headers: ["Content-Type": "application/json"], body: raw)
    }

    /// The small JSON error body every refusal uses: `{"error":"...","status":N}`.
    public static func error(_ status: Int, _ message: String) -> Response {
        var body: [UInt8] = []
        body.reserveCapacity(message.utf8.count + 32)
        body.append(contentsOf: #"{"error":"#.utf8)
        JSONString.append(message, to: &body)
        body.append(contentsOf: #","status":"#.utf8)
        HTTPResponseSerializer.appendDecimal(status, to: &body)
        body.append(UInt8(ascii: "}"))
        return .json(raw: body, status: status)
    }
}

/// Writes a JSON string literal with every character that could break out of it escaped.
enum JSONString {
    static func append(_ string: String, to buffer: inout [UInt8]) {
        let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
        buffer.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0..<0x20, 0x7F:
                buffer.append(contentsOf: Array(#"\u00"#.utf8))
                buffer.append(hexDigits[Int(byte >> 4)])
                buffer.append(hexDigits[Int(byte & 0xF)])
            default: buffer.append(byte)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }
}
