import CServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Socket is a non-blocking TCP socket: a file descriptor and the calls made on it. It owns no
/// state beyond the descriptor, so copies are cheap; whoever created it closes it once.
public struct Socket: Sendable, Hashable {
    public let fd: Int32

    public init(fd: Int32) { self.fd = fd }

    /// Creates a listening socket bound to `address`.
    public static func listen(on address: SocketAddress, backlog: Int32 = 4096) throws(SystemError) -> Socket {
        let fd = socket(address.family, Platform.streamSocket | Platform.socketFlags, 0)
        guard fd >= 0 else { throw .last("socket") }
        let socket = Socket(fd: fd)
        do throws(SystemError) {
            // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT.
            // SO_REUSEPORT is deliberately not set: a second server on the same port must fail.
            try socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            let bound = address.withSockAddr { bind(fd, $0, $1) }
            guard bound == 0 else { throw SystemError.last("bind") }
            guard systemListen(fd, backlog) == 0 else { throw SystemError.last("listen") }
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    /// Accepts one pending connection, already non-blocking. Returns nil when none is pending.
    public func accept() throws(SystemError) -> (Socket, SocketAddress?)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let client = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { csystem_accept(fd, $0, &length) }
        }
        if client >= 0 { return (Socket(fd: client), SocketAddress(storage: storage)) }
        let error = Platform.errno
        if error == EAGAIN || error == EWOULDBLOCK || error == EINTR || error == ECONNABORTED { return nil }
        throw SystemError(call: "accept", errno: error)
    }

    /// The address this socket is bound to; tells which port `0` picked.
    public func localAddress() throws(SystemError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, let address = SocketAddress(storage: storage) else { throw .last("getsockname") }
        return address
    }

    public func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw .last("setsockopt")
        }
    }

    /// Reads into `buffer`. Returns the byte count (0 at end of stream), or nil if it would block.
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int? {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            let error = Platform.errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw SystemError(call: "recv", errno: error)
        }
    }

    /// Writes from `bytes`. Returns how many were written, or nil if none could be without blocking.
    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> Int? {
        while true {
            let n = send(fd, bytes.baseAddress, bytes.count, Platform.sendFlags)
            if n >= 0 { return n }
            let error = Platform.errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw SystemError(call: "send", errno: error)
        }
    }

    /// Stops sending: the peer reads end of stream after what was already written.
    public func shutdownWrite() {
        _ = systemShutdown(fd, Int32(SHUT_WR))
    }

    /// Makes the next ``close()`` reset the connection (SO_LINGER with a zero timeout) instead
    /// of leaving unsent data queued in the kernel for a peer that is not reading: used when
    /// a write times out or the drain deadline passes, so a stuck client holds no memory.
    public func setAbortiveClose() {
        var option = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    }

    public func close() {
        _ = systemClose(fd)
    }
}

// `listen`, `shutdown` and `close` are shadowed by Socket's own methods inside the type.
@inline(__always) func systemListen(_ fd: Int32, _ backlog: Int32) -> Int32 { listen(fd, backlog) }
@inline(__always) func systemShutdown(_ fd: Int32, _ how: Int32) -> Int32 { shutdown(fd, how) }
@inline(__always) func systemClose(_ fd: Int32) -> Int32 { close(fd) }
