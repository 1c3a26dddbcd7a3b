/// ByteStream is what a connection's code reads and writes: the socket itself or, in a build
/// with the TLS trait, a TLS session over it. Both are non-blocking, and a call that cannot go on
/// says which readiness of the socket to wait for, so parsing, keep-alive, limits, timeouts and
/// the drain run the same code over either.
struct ByteStream {
    let socket: Socket
    #if TLS
    /// The TLS session, or nil for plain HTTP.
    let tls: TLSSession?
    #endif

    enum Step {
        /// This many bytes were read or written.
        case done(Int)
        /// The peer closed its side (a read of 0, or the TLS session's end).
        case end
        case waitReadable
        case waitWritable
        case failed
    }

    #if TLS
    init(socket: Socket, tls: TLSSession?) {
        self.socket = socket
        self.tls = tls
    }

    /// The same socket without TLS, for discarding whatever the peer still sends.
    var plain: ByteStream { ByteStream(socket: socket, tls: nil) }

    /// Whether a read that returned less than asked means the socket is empty. Not so under
    /// TLS: the session may hold the rest of a record.
    var shortReadEmpties: Bool { tls == nil }
    #else
    init(socket: Socket) {
        self.socket = socket
    }

    var plain: ByteStream { self }

    var shortReadEmpties: Bool { true }
    #endif

    var fd: Int32 { socket.fd }

    @inline(__always)
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Step {
        #if TLS
        if let tls { return tls.read(into: buffer) }
        #endif
        do {
            guard let count = try socket.read(into: buffer) else { return .waitReadable }
            return count == 0 ? .end : .done(count)
        } catch {
            return .failed
        }
    }

    @inline(__always)
    func write(_ bytes: UnsafeRawBufferPointer) -> Step {
        #if TLS
        if let tls { return tls.write(bytes) }
        #endif
        do {
            guard let count = try socket.write(bytes) else { return .waitWritable }
            return .done(count)
        } catch {
            return .failed
        }
    }

    /// Ends our side: TLS's close_notify first, then the TCP half-close.
    func shutdownWrite() {
        #if TLS
        tls?.close()
        #endif
        socket.shutdownWrite()
    }
}
