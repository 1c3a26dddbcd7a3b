// Plain blocking POSIX sockets: connect, send a request, read one response. Blocking calls with
// SO_RCVTIMEO/SO_SNDTIMEO keep each connection's story linear (one thread, one socket, one
// request at a time), which is what makes every request's fate attributable.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The service's address, resolved once before the load starts.
struct ServerAddress: Sendable {
    /// A sockaddr_in or sockaddr_in6, as bytes (so the value is trivially Sendable).
    var storage: [UInt8]
    var family: Int32
    var text: String

    /// Parses an IPv4 or IPv6 literal, or `localhost` (127.0.0.1). No DNS: the drill targets a
    /// local service or a container's address, and getaddrinfo would make the statically linked
    /// build depend on the glibc it was linked with.
    static func resolve(host: String, port: Int) throws -> ServerAddress {
        guard (1...65535).contains(port) else { throw DrillError("bad port \(port)") }
        let literal = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, literal, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            let bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return ServerAddress(storage: bytes, family: AF_INET, text: "\(literal):\(port)")
        }
        var v6 = sockaddr_in6()
        let bare = literal.hasPrefix("[") && literal.hasSuffix("]") ? String(literal.dropFirst().dropLast()) : literal
        if inet_pton(AF_INET6, bare, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return ServerAddress(storage: bytes, family: AF_INET6, text: "[\(bare)]:\(port)")
        }
        throw DrillError("--host \(host): not an IPv4 or IPv6 address")
    }
}

enum ConnectResult: Equatable {
    case connected(Int32)
    /// ECONNREFUSED: nothing listens (any more); or ECONNRESET from the connect itself, when
    /// the handshake raced the listener's close and the kernel reset the half-open connection.
    /// Either way no request byte left the client, so nothing was lost.
    case refused
    /// The handshake did not finish within the timeout (a full backlog drops SYNs).
    case timeout
    case failed(String)
}

/// Opens a TCP connection with TCP_NODELAY and both socket timeouts set to `timeout`
/// nanoseconds (on Linux SO_SNDTIMEO also bounds a blocking connect).
func connectTCP(to address: ServerAddress, timeout: Int64) -> ConnectResult {
    // SOCK_CLOEXEC: a signal or wait command spawned mid-drill must not inherit the sockets, or
    // closing ours would not close the connection (the child's copy would keep it open).
    let fd = socket(address.family, Libc.streamSocket | Libc.closeOnExec, 0)
    guard fd >= 0 else { return .failed("socket: \(errnoName(errno))") }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    setTimeout(fd, SO_RCVTIMEO, nanoseconds: timeout)
    setTimeout(fd, SO_SNDTIMEO, nanoseconds: timeout)

    let result = address.storage.withUnsafeBytes { raw -> Int32 in
        guard let base = raw.baseAddress else { return -1 }
        return connect(fd, base.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
    }
    if result == 0 { return .connected(fd) }
    let code = errno
    close(fd)
    switch code {
    case ECONNREFUSED, ECONNRESET: return .refused
    // A connect cut by SO_SNDTIMEO fails with EINPROGRESS on Linux.
    case EINPROGRESS, ETIMEDOUT, EAGAIN: return .timeout
    default: return .failed("connect: \(errnoName(code))")
    }
}

/// Sets SO_RCVTIMEO or SO_SNDTIMEO. Zero would mean "no timeout", so the value is at least 1 µs.
func setTimeout(_ fd: Int32, _ option: Int32, nanoseconds: Int64) {
    let microseconds = max(1, (nanoseconds + 999) / 1_000)
    var value = timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
}

enum SendResult: Equatable {
    case sent
    /// EPIPE or ECONNRESET: the server had already closed the connection.
    case closedByPeer(PeerClose)
    case timeout
    case failed(String)
}

/// Sends all of `bytes`. MSG_NOSIGNAL turns a write to a closed connection into EPIPE instead of
/// a SIGPIPE that would kill the drill.
func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> SendResult {
    var offset = 0
    while offset < bytes.count {
        let count = bytes.withUnsafeBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return send(fd, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
        }
        if count > 0 {
            offset += count
            continue
        }
        let code = errno
        switch code {
        case EINTR: continue
        case EPIPE: return .closedByPeer(.pipe)
        case ECONNRESET: return .closedByPeer(.reset)
        case EAGAIN: return .timeout
        default: return .failed("send: \(errnoName(code))")
        }
    }
    return .sent
}

/// How the server ended a connection under a request: an orderly close (FIN, read as EOF) or a
/// reset (RST, read as ECONNRESET, or EPIPE on a later send). A reset usually means the server
/// closed with our request unread, or the kernel dropped a connection still in the accept queue.
enum PeerClose: String, Equatable, Sendable {
    case eof = "EOF"
    case reset = "ECONNRESET"
    case pipe = "EPIPE"
}

/// How reading one response ended, before it is judged (2xx or not) into an `Outcome`.
enum ReadResult: Equatable, Sendable {
    case response(ParsedResponse)
    /// EOF or ECONNRESET before any byte of the response.
    case unanswered(PeerClose)
    /// EOF or ECONNRESET after some bytes of the response but before its end.
    case truncated(PeerClose)
    /// No complete response by the deadline.
    case timeout
    /// A response the parser cannot frame, or a socket error other than a close.
    case failed(String)
}

/// Reads responses from one connection. Bytes past a response stay buffered for the next one
/// (a server should not send them unasked, but if it does they belong to the next read).
struct ResponseReader {
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    /// The SO_RCVTIMEO currently on the socket, so that it is changed only when the remaining
    /// time differs noticeably: usually never, since a response arrives in the first recv.
    private var receiveTimeout: Int64

    /// `receiveTimeout` is what SO_RCVTIMEO is already set to on the socket.
    init(receiveTimeout: Int64) {
        self.receiveTimeout = receiveTimeout
    }

    /// Reads one response from `fd`, giving up at `deadline` (CLOCK_MONOTONIC nanoseconds).
    mutating func readResponse(from fd: Int32, deadline: Int64) -> ReadResult {
        while true {
            switch ResponseParser.parse(buffer, atEndOfStream: false) {
            case .complete(let response, let consumed):
                buffer.removeFirst(consumed)
                return .response(response)
            case .invalid(let reason):
                return .failed("bad response: \(reason)")
            case .incomplete:
                break
            }

            let remaining = deadline - monotonicNanoseconds()
            guard remaining > 0 else { return .timeout }
            // A millisecond of slack avoids a setsockopt per request: the timeout set when the
            // request started is within microseconds of the remaining time.
            if abs(remaining - receiveTimeout) > 1_000_000 {
                setTimeout(fd, SO_RCVTIMEO, nanoseconds: remaining)
                receiveTimeout = remaining
            }

            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                continue
            }
            if count == 0 {
                return endOfStream()
            }
            let code = errno
            switch code {
            case EINTR, EAGAIN:
                // EAGAIN is SO_RCVTIMEO expiring; the deadline check above decides.
                continue
            case ECONNRESET:
                // A reset may discard bytes still queued for us, so even a body delimited by the
                // close cannot be trusted complete.
                return buffer.isEmpty ? .unanswered(.reset) : .truncated(.reset)
            default:
                return .failed("recv: \(errnoName(code))")
            }
        }
    }

    /// The server closed the connection: complete only if the response's framing says so.
    private mutating func endOfStream() -> ReadResult {
        if buffer.isEmpty { return .unanswered(.eof) }
        switch ResponseParser.parse(buffer, atEndOfStream: true) {
        case .complete(let response, let consumed):
            buffer.removeFirst(consumed)
            return .response(response)
        case .invalid(let reason):
            return .failed("bad response: \(reason)")
        case .incomplete:
            return .truncated(.eof)
        }
    }
}
