#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// SystemError is a failed system call: its name and errno.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// The error of the last call, from the thread's errno.
    static func last(_ call: String) -> SystemError {
        SystemError(call: call, errno: Platform.errno)
    }

    /// The C library's text for the errno, with the number: `Connection refused (errno 111)`.
    public var message: String {
        let text = strerror(errno).map { String(cString: $0) } ?? "unknown error"
        return "\(text) (errno \(errno))"
    }

    public var description: String { "\(call): \(message)" }
}
