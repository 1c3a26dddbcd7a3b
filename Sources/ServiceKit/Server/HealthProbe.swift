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

    /// Sends `GET path` to `address` and succeeds on a `200` status line.
    ///
    /// - Parameter timeout: for the whole exchange: connect, send, and the status line.
    public static func check(_ address: SocketAddress, path: String = "/health", timeout: Duration) -> Result<Void, Failure> {
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

        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nUser-Agent: service-health-check\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress.map { $0 + sent }, $0.count - sent, Platform.sendFlags) }
            if n > 0 {
                sent += n
            } else if n < 0 && (Platform.errno == EAGAIN || Platform.errno == EINTR) {
                guard wait(fd, for: Int16(POLLOUT), until: deadline) else {
                    return .failure(Failure(description: "sending to \(address): timed out after \(timeout.goString)"))
                }
            } else {
                return .failure(Failure(description: "sending to \(address): \(describe(Platform.errno))"))
            }
        }

        // Read up to the end of the status line.
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while !received.contains(UInt8(ascii: "\n")) && received.count < 4096 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                received.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                return .failure(Failure(description: "\(address) closed the connection without an answer"))
            } else if Platform.errno == EAGAIN || Platform.errno == EINTR {
                guard wait(fd, for: Int16(POLLIN), until: deadline) else {
                    return .failure(Failure(description: "no answer from \(address) within \(timeout.goString)"))
                }
            } else {
                return .failure(Failure(description: "reading from \(address): \(describe(Platform.errno))"))
            }
        }
        let line = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else {
            return .failure(Failure(description: "\(address) did not answer HTTP: \(String(line.prefix(80)).debugDescription)"))
        }
        guard parts[1] == "200" else {
            return .failure(Failure(description: "GET \(path) on \(address) answered \(parts.dropFirst().joined(separator: " "))"))
        }
        return .success(())
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
