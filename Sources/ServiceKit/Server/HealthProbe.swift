import GoDuration

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// HealthProbe is the `-health-check` self-probe: one `GET` over loopback to the running
/// server, with a deadline on every step, so a `FROM scratch` image needs no curl.
public enum HealthProbe {
    /// Why a probe failed, in one line for the container runtime's health log.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The address to probe for a server configured to listen on `host`: the loopback address
    /// of the same family for a wildcard (`0.0.0.0` → `127.0.0.1`, `::` → `::1`), the address
    /// itself otherwise. No name is ever resolved.
    public static func target(host: String, port: Int) -> SocketAddress? {
        switch host {
        case "0.0.0.0", "": return SocketAddress(host: "127.0.0.1", port: port)
        case "::", "[::]": return SocketAddress(host: "::1", port: port)
        default: return SocketAddress(host: host, port: port)
        }
    }

    /// Sends `GET path` to `address` and succeeds on a 2xx answer: a complete status line (see
    /// ``statusCode(_:)``) with a status from 200 to 299.
    ///
    /// - Parameter timeout: for the whole exchange: connect, send, and the status line.
    public static func check(_ address: SocketAddress, path: String = "/health", timeout: Duration) -> Result<Void, Failure> {
        exchange(address, path: path, timeout: timeout, tls: nil)
    }

    #if TLS
    /// The same over TLS. With `trusting` (the server's own certificate file) the server must
    /// present that certificate, or one that chains to it; with nil nothing is verified. No host
    /// name is checked: the probe dials an address of its own host.
    public static func checkTLS(
        _ address: SocketAddress, path: String = "/health", timeout: Duration, trusting caFile: String?
    ) -> Result<Void, Failure> {
        let context: TLSClientContext
        do {
            context = try TLSClientContext(trusting: caFile)
        } catch {
            return .failure(Failure(description: "TLS: \(error)"))
        }
        return exchange(address, path: path, timeout: timeout, tls: context)
    }

    typealias ClientTLS = TLSClientContext
    #else
    typealias ClientTLS = Never
    #endif

    private static func exchange(
        _ address: SocketAddress, path: String, timeout: Duration, tls: ClientTLS?
    ) -> Result<Void, Failure> {
        let deadline = EventLoop.deadline(after: timeout, orNow: true)
        let fd = socket(address.family, Platform.streamSocket | Platform.socketFlags, 0)
        guard fd >= 0 else { return .failure(Failure(description: "socket: \(SystemError.last("socket"))")) }
        defer { _ = systemClose(fd) }

        // Connect, without blocking past the deadline.
        let connected = address.withSockAddr { connect(fd, $0, $1) }
        if connected != 0 {
            let error = Platform.errno
            guard error == EINPROGRESS else { return .failure(Failure(description: "connect to \(address): \(describe(error))")) }
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else {
                return .failure(Failure(description: "connect to \(address): timed out after \(timeout.goString)"))
            }
            var status: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &status, &length)
            if status != 0 { return .failure(Failure(description: "connect to \(address): \(describe(status))")) }
        }

        let stream: ByteStream
        #if TLS
        var session: TLSSession?
        if let tls {
            guard let made = TLSSession(client: tls, fd: fd) else {
                return .failure(Failure(description: "TLS: cannot set up a session"))
            }
            session = made
            handshake: while true {
                switch made.handshake() {
                case .done:
                    break handshake
                case .waitReadable:
                    guard wait(fd, for: Int16(POLLIN), until: deadline) else {
                        return .failure(Failure(description: "TLS handshake with \(address): timed out after \(timeout.goString)"))
                    }
                case .waitWritable:
                    guard wait(fd, for: Int16(POLLOUT), until: deadline) else {
                        return .failure(Failure(description: "TLS handshake with \(address): timed out after \(timeout.goString)"))
                    }
                case .failed(let reason):
                    return .failure(Failure(description: "TLS handshake with \(address) failed: \(reason)"))
                case .plaintextHTTP:
                    return .failure(Failure(description: "TLS handshake with \(address) failed: not a TLS server"))
                }
            }
        }
        stream = ByteStream(socket: Socket(fd: fd), tls: session)
        #else
        stream = ByteStream(socket: Socket(fd: fd))
        #endif

        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nUser-Agent: service-health-check\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            switch request.withUnsafeBytes({ stream.write(UnsafeRawBufferPointer(rebasing: $0[sent...])) }) {
            case .done(let n):
                sent += n
            case let step where step.isWait:
                guard wait(fd, for: step.pollEvents, until: deadline) else {
                    return .failure(Failure(description: "sending to \(address): timed out after \(timeout.goString)"))
                }
            default:
                return .failure(Failure(description: "sending to \(address): \(describe(Platform.errno))"))
            }
        }

        // Read up to the end of the status line, and no further than it may reach.
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while !received.prefix(maxStatusLineBytes).contains(UInt8(ascii: "\n")) {
            guard received.count < maxStatusLineBytes else {
                return .failure(Failure(description: "\(address) sent no status line end within \(maxStatusLineBytes) bytes"))
            }
            switch chunk.withUnsafeMutableBytes({ stream.read(into: $0) }) {
            case .done(let n):
                received.append(contentsOf: chunk[0..<n])
            case .end:
                return .failure(Failure(description: received.isEmpty
                    ? "\(address) closed the connection without an answer"
                    : "\(address) closed the connection before the end of its status line"))
            case let step where step.isWait:
                guard wait(fd, for: step.pollEvents, until: deadline) else {
                    return .failure(Failure(description: "no answer from \(address) within \(timeout.goString)"))
                }
            default:
                return .failure(Failure(description: "reading from \(address): \(describe(Platform.errno))"))
            }
        }
        let line = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        guard let status = statusCode(received) else {
            return .failure(Failure(description: "\(address) did not answer HTTP: \(String(line.prefix(80)).debugDescription)"))
        }
        guard (200...299).contains(status) else {
            return .failure(Failure(description: "GET \(path) on \(address) answered \(String(line.dropFirst(9).prefix(80)).debugDescription)"))
        }
        return .success(())
    }

    /// The longest status line read, its CRLF included.
    static let maxStatusLineBytes = 1024

    /// The status code of a response that starts with a complete status line (RFC 9112 §4),
    /// within ``maxStatusLineBytes``; nil for anything else:
    ///
    ///     status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
    ///
    /// with HTTP-version `HTTP/1.0` or `HTTP/1.1`, a status code of three digits, and a reason
    /// of HTAB, SP, visible ASCII and obs-text.
    static func statusCode(_ response: [UInt8]) -> Int? {
        let prefix = Array("HTTP/1.".utf8)
        guard response.count >= 14, Array(response[0..<7]) == prefix,
              response[7] == UInt8(ascii: "0") || response[7] == UInt8(ascii: "1"),
              response[8] == UInt8(ascii: " "), response[12] == UInt8(ascii: " ")
        else { return nil }
        var status = 0
        for byte in response[9..<12] {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            status = status * 10 + Int(byte - UInt8(ascii: "0"))
        }
        var i = 13
        while i < min(response.count, maxStatusLineBytes - 1) {
            let byte = response[i]
            if byte == UInt8(ascii: "\r") {
                return i + 1 < response.count && response[i + 1] == UInt8(ascii: "\n") ? status : nil
            }
            guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else { return nil }
            i += 1
        }
        return nil
    }

    /// Polls `fd` for `events` until the monotonic `deadline`; false on timeout.
    private static func wait(_ fd: Int32, for events: Int16, until deadline: UInt64) -> Bool {
        while true {
            let now = EventLoop.now()
            guard now < deadline else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let milliseconds = Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
            let result = poll(&entry, 1, milliseconds)
            if result > 0 { return true }
            if result < 0 && Platform.errno != EINTR { return true }  // the next call reports the error
        }
    }

    private static func describe(_ error: Int32) -> String {
        SystemError(call: "", errno: error).message
    }
}

extension ByteStream.Step {
    var isWait: Bool {
        switch self {
        case .waitReadable, .waitWritable: true
        default: false
        }
    }

    /// What to poll for before trying again.
    var pollEvents: Int16 {
        if case .waitWritable = self { Int16(POLLOUT) } else { Int16(POLLIN) }
    }
}
