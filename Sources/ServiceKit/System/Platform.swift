// The one place that knows which C library this is. Glibc today; Musl in the static Linux SDK.
// Each ServiceKit file imports the C library itself; none of it is re-exported, so an
// application's code sees only ServiceKit's own API (and HTTP1's).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
#error("ServiceKit runs on Linux: it needs Glibc or Musl")
#endif

enum Platform {
    #if canImport(Glibc)
    static let streamSocket = Int32(SOCK_STREAM.rawValue)
    static let socketFlags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
    #else
    static let streamSocket = SOCK_STREAM
    static let socketFlags = Int32(SOCK_NONBLOCK | SOCK_CLOEXEC)
    #endif
    // Glibc imports these as enum cases, Musl as Int32 macros.
    #if canImport(Glibc)
    static let nofileLimit = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    static let usageSelf = __rusage_who_t(RUSAGE_SELF.rawValue)
    #else
    static let nofileLimit = RLIMIT_NOFILE
    static let usageSelf = RUSAGE_SELF
    #endif
    static let sendFlags = Int32(MSG_NOSIGNAL)
    static let tcpProtocol = Int32(IPPROTO_TCP)

    static var errno: Int32 {
        #if canImport(Glibc)
        Glibc.errno
        #else
        Musl.errno
        #endif
    }
}
