// Socket helpers for the drill's tests: canned server bytes through a socketpair, a loopback TCP
// pair (for resets, which only TCP has), and a small in-process HTTP server whose shutdown
// behaviour a test chooses.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import Drill

/// Writes `bytes` as the "server" end of a socketpair, optionally closes it (EOF), and reads one
/// response with the drill's reader from the other end.
func readCanned(_ bytes: [UInt8], thenClose: Bool = true, timeout: Int64 = 2_000_000_000) -> ReadResult {
    var ends: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else {
        Issue.record("socketpair failed: \(errno)")
        return .failed("socketpair")
    }
    defer { close(ends[0]) }
    if !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
        #expect(written == bytes.count)
    }
    if thenClose {
        close(ends[1])
    }
    defer { if !thenClose { close(ends[1]) } }
    var reader = ResponseReader(receiveTimeout: timeout)
    setTimeout(ends[0], SO_RCVTIMEO, nanoseconds: timeout)
    return reader.readResponse(from: ends[0], deadline: monotonicNanoseconds() + timeout)
}

func readCanned(_ text: String, thenClose: Bool = true, timeout: Int64 = 2_000_000_000) -> ReadResult {
    readCanned(Array(text.utf8), thenClose: thenClose, timeout: timeout)
}

/// A listening TCP socket on 127.0.0.1 with an ephemeral port.
struct Listener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DrillError("socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 128) == 0 else { close(fd); throw DrillError("bind/listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func acceptOne() -> Int32 {
        // accept4 is not visible to Swift without _GNU_SOURCE; the tests spawn nothing that
        // could inherit the descriptor between the two calls anyway.
        let connection = accept(fd, nil, nil)
        if connection >= 0 { _ = fcntl(connection, F_SETFD, FD_CLOEXEC) }
        return connection
    }

    var address: ServerAddress {
        get throws { try ServerAddress.resolve(host: "127.0.0.1", port: port) }
    }
}

/// Closes `fd` with an RST instead of a FIN (SO_LINGER with a zero timeout).
func resetConnection(_ fd: Int32) {
    var option = linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    close(fd)
}

func sendText(_ fd: Int32, _ text: String) {
    _ = sendAll(fd, Array(text.utf8))
}

/// Reads from `fd` until a blank line ends a request head; false at EOF or error.
func readRequestHead(_ fd: Int32, buffer: inout [UInt8]) -> Bool {
    let end = Array("\r\n\r\n".utf8)
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        if let range = buffer.firstRange(of: end) {
            buffer.removeSubrange(..<range.upperBound)
            return true
        }
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<count])
    }
}

/// A minimal keep-alive HTTP server on its own threads, standing in for the service. On the
/// drill's signal it either drains gracefully (listener closed at once, so new connects are
/// refused; every open connection's next request answered with Connection: close) or resets
/// every connection the way a crash would.
final class FakeServer: ServiceUnderTest, @unchecked Sendable {
    enum Mode { case graceful, abrupt }

    let listener: Listener
    let mode: Mode
    private let state = Locked<(draining: Bool, open: [Int32], exitedAt: Int64?)>((false, [], nil))
    private var threads: [JoinableThread] = []
    private let handlers = Locked<[JoinableThread]>([])

    var port: Int { listener.port }

    init(mode: Mode) throws {
        listener = try Listener()
        self.mode = mode
        let listener = self.listener, state = self.state, handlers = self.handlers, mode = self.mode
        threads.append(try startThread {
            while true {
                let fd = listener.acceptOne()
                guard fd >= 0 else { return }   // the listener was shut down
                state.withLock { $0.open.append(fd) }
                let graceful = mode == .graceful
                guard let handler = try? startThread({ FakeServer.serve(fd, graceful: graceful, state: state) }) else {
                    close(fd)
                    continue
                }
                handlers.withLock { $0.append(handler) }
            }
        })
    }

    /// Answers requests on `fd`. A graceful server answers the first request it reads after
    /// the signal with Connection: close; an abrupt one never does (its connections are cut
    /// instead, so that every connection loses exactly the request it had in flight).
    private static func serve(_ fd: Int32, graceful: Bool, state: Locked<(draining: Bool, open: [Int32], exitedAt: Int64?)>) {
        var buffer: [UInt8] = []
        defer {
            let emptied = state.withLock { state -> Bool in
                state.open.removeAll { $0 == fd }
                return state.draining && state.open.isEmpty
            }
            close(fd)
            if emptied {
                let now = monotonicNanoseconds()
                state.withLock { if $0.exitedAt == nil { $0.exitedAt = now } }
            }
        }
        while readRequestHead(fd, buffer: &buffer) {
            let draining = graceful && state.withLock { $0.draining }
            let body = #"{"status":"ok"}"#
            let connection = draining ? "close" : "keep-alive"
            sendText(fd, "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: \(connection)\r\n\r\n\(body)")
            if draining { return }
        }
    }

    func sendSignal() throws {
        // Closing the listener first means a reconnect is refused, never queued and dropped.
        let open = state.withLock { state -> [Int32] in
            state.draining = true
            return state.open
        }
        shutdown(listener.fd, Int32(SHUT_RDWR))
        if mode == .abrupt {
            // Wake each handler blocked in recv; the FIN reaches the client as EOF.
            for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
        if open.isEmpty {
            let now = monotonicNanoseconds()
            state.withLock { $0.exitedAt = now }
        }
    }

    func startWatchingExit(until deadline: Int64) {}

    func waitForExit(until deadline: Int64) -> ServiceExit {
        while monotonicNanoseconds() < deadline {
            if let time = state.withLock({ $0.exitedAt }) {
                return ServiceExit(code: 0, exitedAt: time, note: nil)
            }
            sleep(nanoseconds: 1_000_000)
        }
        return .unknown
    }

    var logLines: [ServiceLogLine] { [] }

    func cleanUp() {
        _ = state.withLock { state -> Bool in
            state.draining = true
            for fd in state.open { shutdown(fd, Int32(SHUT_RDWR)) }
            return true
        }
        shutdown(listener.fd, Int32(SHUT_RDWR))
        threads.forEach { $0.join() }
        threads = []
        handlers.withLock { $0 }.forEach { $0.join() }
        handlers.withLock { $0 = [] }
        close(listener.fd)
    }
}
