import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// TestClient is a blocking loopback TCP client for end-to-end tests. Every read has a receive
/// timeout, so a server that fails to answer fails the test instead of hanging it.
public final class TestClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public struct Response {
        public var status: Int
        public var reason: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    public let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; reads give up after `timeout` seconds.
    public init(port: Int, timeout: Double = 5) throws {
        // `fd` is assigned only once connected: a throwing init that had set every property
        // would still run deinit and close the descriptor a second time, which could by then
        // belong to another test's socket.
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socketFD, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            close(socketFD)
            throw Failure(description: "connect: errno \(error)")
        }
        fd = socketFD
    }

    deinit { close(fd) }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            offset += n
        }
    }

    /// Reads more bytes into the buffer. Returns false at end of stream; throws on timeout/error.
    @discardableResult
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        if n == 0 { return false }
        if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure(description: "read timed out") }
        if errno == ECONNRESET { return false }
        throw Failure(description: "recv: errno \(errno)")
    }

    /// Reads one response framed by Content-Length, as chunks, or by close. `head: true` for a
    /// HEAD request, whose response has no body whatever its framing says. A chunked body cut
    /// short (the connection closed before its last chunk) throws.
    public func readResponse(head: Bool = false) throws -> Response {
        var response = try readHead()
        if head || response.status == 204 || response.status == 304 || (100..<200).contains(response.status) {
            return response
        }
        if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while let chunk = try readChunk() { response.body += chunk }
            return response
        }
        if let lengthText = response.header("content-length") {
            guard let length = Int(lengthText) else { throw Failure(description: "bad content-length") }
            while buffer.count < length {
                guard try fill() else { throw Failure(description: "closed mid-body") }
            }
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else {
            while try fill() {}
            response.body = buffer
            buffer.removeAll()
        }
        return response
    }

    /// Reads the next chunk of a chunked body: its data, or nil for the last chunk (its
    /// trailer section read too). Throws when the connection closes mid-chunk.
    public func readChunk() throws -> [UInt8]? {
        let sizeLine = try readLine(orFail: "closed before a chunk's size line (truncated body)")
        let sizeText = String(decoding: sizeLine, as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
        guard let size = Int(sizeText, radix: 16), size >= 0 else {
            throw Failure(description: "bad chunk size \(sizeText.debugDescription)")
        }
        if size == 0 {
            // Trailer fields, then the empty line.
            while try !readLine(orFail: "closed in the trailer section").isEmpty {}
            return nil
        }
        while buffer.count < size + 2 {
            guard try fill() else { throw Failure(description: "closed mid-chunk (truncated body)") }
        }
        guard buffer[size] == 13, buffer[size + 1] == 10 else { throw Failure(description: "chunk data not followed by CRLF") }
        let data = Array(buffer[0..<size])
        buffer.removeFirst(size + 2)
        return data
    }

    /// Reads up to the next CRLF and returns the line without it; throws `failure` if the
    /// connection closes first.
    private func readLine(orFail failure: String) throws -> [UInt8] {
        while true {
            if let end = find([13, 10], in: buffer) {
                defer { buffer.removeFirst(end + 2) }
                return Array(buffer[0..<end])
            }
            guard try fill() else { throw Failure(description: failure) }
        }
    }

    /// Reads a response's status line and header section, leaving its body unread.
    public func readHead() throws -> Response {
        var headEnd: Int?
        while headEnd == nil {
            headEnd = find([13, 10, 13, 10], in: buffer)
            if headEnd == nil {
                guard try fill() else { throw Failure(description: "connection closed before a response head; got \(String(decoding: buffer, as: UTF8.self).debugDescription)") }
            }
        }
        guard let end = headEnd else { throw Failure(description: "no head") }
        let headText = String(decoding: buffer[0..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
            throw Failure(description: "bad status line \(statusLine.debugDescription)")
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw Failure(description: "bad header line \(line.debugDescription)") }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        buffer.removeFirst(end + 4)
        return Response(status: status, reason: parts.count > 2 ? parts[2] : "", headers: headers.map { (name: $0.0, value: $0.1) }, body: [])
    }

    /// Whether the server closed the connection (end of stream or reset) with nothing more sent.
    public func isClosedByServer() -> Bool {
        if !buffer.isEmpty { return false }
        return (try? fill()) == false
    }

    /// Everything the server sends until it closes.
    public func readUntilClose() throws -> [UInt8] {
        while try fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
