#if TLS
import CTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// TLSConfigurationError says why a certificate and key could not be used, in one line.
public struct TLSConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// TLSContext is a certificate chain and private key loaded into OpenSSL, with the server's TLS
/// settings: TLS 1.2 at least, OpenSSL's default cipher suites, no renegotiation, ALPN
/// `http/1.1`.
public final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    public let certificateFile: String
    public let keyFile: String

    /// Loads the pair; throws a one-line reason for a missing, unreadable or malformed file, or
    /// a key that does not match the certificate.
    public init(certificateFile: String, keyFile: String) throws(TLSConfigurationError) {
        for (what, path) in [("certificate", certificateFile), ("private key", keyFile)] {
            guard !path.isEmpty else { throw TLSConfigurationError(description: "no \(what) file given") }
            guard access(path, R_OK) == 0 else {
                let reason = String(cString: strerror(Platform.errno))
                throw TLSConfigurationError(description: "cannot read the \(what) file \(path): \(reason)")
            }
        }
        // OpenSSL writes to sockets with write(2): a peer gone away must cost an EPIPE, not the
        // process (the service ignores SIGPIPE already; a library user may not).
        signal(SIGPIPE, SIG_IGN)
        var error = [CChar](repeating: 0, count: 512)
        guard let pointer = ctls_server_context(certificateFile, keyFile, &error, error.count) else {
            throw TLSConfigurationError(description: text(error) + " (\(certificateFile), \(keyFile))")
        }
        self.pointer = pointer
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    deinit { ctls_context_free(pointer) }

    /// The OpenSSL version linked, for the startup log.
    public static var libraryVersion: String { String(cString: ctls_library_version()) }
}

/// TLSCertificates is the pair a TLS server uses for new connections, replaceable while it runs
/// (``reload()``): connections already open keep the pair they began with.
public final class TLSCertificates: Sendable {
    private let current: Mutex<TLSContext>
    /// What the files looked like when last loaded (or tried), for ``reloadIfChanged()``.
    private let seen: Mutex<[FileStamp?]>

    public init(certificateFile: String, keyFile: String) throws(TLSConfigurationError) {
        let stamps = [FileStamp(certificateFile), FileStamp(keyFile)]
        current = Mutex(try TLSContext(certificateFile: certificateFile, keyFile: keyFile))
        seen = Mutex(stamps)
    }

    /// The pair for a new connection.
    public var context: TLSContext { current.withLock { $0 } }

    /// Loads the files again and uses them for new connections; a pair that does not load
    /// leaves the current one in place and throws why.
    public func reload() throws(TLSConfigurationError) {
        let old = context
        seen.withLock { $0 = [FileStamp(old.certificateFile), FileStamp(old.keyFile)] }
        let new = try TLSContext(certificateFile: old.certificateFile, keyFile: old.keyFile)
        current.withLock { $0 = new }
    }

    /// Reloads if either file changed (inode, size or modification time, following symbolic
    /// links: a Kubernetes secret volume swaps a symlink) since the last load or attempt.
    /// Returns whether it reloaded; throws, once per change, if the changed pair does not load.
    public func reloadIfChanged() throws(TLSConfigurationError) -> Bool {
        let files = context
        let now = [FileStamp(files.certificateFile), FileStamp(files.keyFile)]
        guard seen.withLock({ $0 }) != now else { return false }
        try reload()
        return true
    }
}

/// A file's identity and version as stat(2) reports it.
struct FileStamp: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modifiedSeconds = Int(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }
}

/// The text of a NUL-terminated C buffer.
func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// TLSClientContext is what `-health-check` uses to speak TLS to the running server.
final class TLSClientContext {
    let pointer: OpaquePointer

    /// - Parameter trusting: a PEM file whose certificates the server's must be or chain to;
    ///   nil verifies nothing.
    init(trusting caFile: String?) throws(TLSConfigurationError) {
        var error = [CChar](repeating: 0, count: 512)
        guard let pointer = ctls_client_context(caFile, &error, error.count) else {
            throw TLSConfigurationError(description: text(error))
        }
        self.pointer = pointer
    }

    deinit { ctls_context_free(pointer) }

    /// For tests: a client that offers TLS 1.1 at most.
    func limitToTLS11() { ctls_context_limit_to_tls11(pointer) }
}

/// TLSSession is one connection's TLS state (loop thread only).
final class TLSSession {
    let pointer: OpaquePointer
    /// Keeps the context alive as long as the session refers to it.
    let context: AnyObject
    private(set) var handshakeDone = false

    init?(context: TLSContext, fd: Int32) {
        guard let pointer = ctls_session_new(context.pointer, fd, 1) else { return nil }
        self.pointer = pointer
        self.context = context
    }

    init?(client context: TLSClientContext, fd: Int32) {
        guard let pointer = ctls_session_new(context.pointer, fd, 0) else { return nil }
        self.pointer = pointer
        self.context = context
    }

    deinit { ctls_session_free(pointer) }

    enum HandshakeStep {
        case done
        case waitReadable
        case waitWritable
        /// A plaintext HTTP request came instead of a client hello.
        case plaintextHTTP
        case failed(String)
    }

    func handshake() -> HandshakeStep {
        var error = [CChar](repeating: 0, count: 256)
        switch ctls_handshake(pointer, &error, error.count) {
        case Int32(CTLS_OK):
            handshakeDone = true
            return .done
        case Int32(CTLS_WANT_READ): return .waitReadable
        case Int32(CTLS_WANT_WRITE): return .waitWritable
        case Int32(CTLS_PLAINTEXT_HTTP): return .plaintextHTTP
        default: return .failed(text(error))
        }
    }

    @inline(__always)
    func read(into buffer: UnsafeMutableRawBufferPointer) -> ByteStream.Step {
        Self.step(ctls_read(pointer, buffer.baseAddress, buffer.count))
    }

    @inline(__always)
    func write(_ bytes: UnsafeRawBufferPointer) -> ByteStream.Step {
        guard !bytes.isEmpty else { return .done(0) }
        return Self.step(ctls_write(pointer, bytes.baseAddress, bytes.count))
    }

    @inline(__always)
    static func step(_ result: Int) -> ByteStream.Step {
        if result > 0 { return .done(result) }
        switch result {
        case Int(CTLS_WANT_READ): return .waitReadable
        case Int(CTLS_WANT_WRITE): return .waitWritable
        case Int(CTLS_CLOSED): return .end
        default: return .failed
        }
    }

    /// Sends close_notify (once the handshake is done), without waiting for the peer's.
    func close() {
        ctls_shutdown(pointer)
    }

    var version: String { String(cString: ctls_version(pointer)) }

    var peerSubject: String {
        var out = [CChar](repeating: 0, count: 256)
        ctls_peer_subject(pointer, &out, out.count)
        return text(out)
    }

    var alpn: String {
        var out = [CChar](repeating: 0, count: 32)
        ctls_alpn(pointer, &out, out.count)
        return text(out)
    }
}
#endif
