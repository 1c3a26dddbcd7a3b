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

    public var description: String {
        let message = strerror(errno).map { String(cString: $0) } ?? "errno \(errno)"
        return "\(call): \(message) (errno \(errno))"
    }
}
