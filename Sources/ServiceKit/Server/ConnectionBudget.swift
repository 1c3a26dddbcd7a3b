#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// ConnectionBudget sizes the default connection cap to the container's memory limit, as Go
/// services size GOMEMLIMIT to it: `--max-connections` / `MAX_CONNECTIONS` not given, a cgroup
/// memory limit set, the cap is what the limit holds at the worst per-connection cost.
///
/// The figures below are the one place the per-connection costs live: `deploy/check_memory.py`
/// reads them from this file (keep each a `static let name: Type = <integer product>` on one
/// line) and Benchmarks/conn-memory.py measures what they stand for (README, "Memory per
/// connection"). They cover every state a connection can be in without a request body: a
/// body costs up to `--max-body-bytes` while it is read, and what a quarter of the limit holds
/// of those is the room left for them (see ``maxConnections(memoryLimit:tls:)``).
public enum ConnectionBudget {
    /// Plain HTTP's worst state, rounded up: a 16 KiB header that never ends, measured at
    /// 23.7 KiB (the 17 KiB input buffer and the connection's task).
    static let plainBytesPerConnection: Int = 32 * 1024
    /// HTTPS's worst state, rounded up: a 16 KiB header that never ends after a completed
    /// handshake, measured at 36.8 KiB (the same plus the TLS session).
    static let tlsBytesPerConnection: Int = 48 * 1024
    /// The process before its connections: about 17 MiB idle (20 MiB with TLS), plus log and
    /// metrics buffers and the loops' tables.
    static let reserveBytes: Int = 32 * 1024 * 1024
    /// The cap without a memory limit (and the most a limit ever raises it to).
    static let defaultCap: Int = 10_000

    /// The default connection cap for a memory limit (bytes; nil for none): three quarters of
    /// what ``reserveBytes`` leaves, in connections at the worst per-connection figure, between
    /// 1 and ``defaultCap``. The last quarter is room for request bodies and allocator slack.
    /// 128 MiB gives 2,304 plain or 1,536 TLS connections; 512 MiB or more gives 10,000.
    public static func maxConnections(memoryLimit: UInt64?, tls: Bool) -> Int {
        guard let memoryLimit else { return defaultCap }
        let perConnection = tls ? tlsBytesPerConnection : plainBytesPerConnection
        let limit = Int(clamping: memoryLimit)
        let usable = max(0, limit - reserveBytes) / 4 * 3
        return max(1, min(defaultCap, usable / perConnection))
    }

    /// The memory limit of this process's cgroup in bytes, or nil when there is none (or it
    /// cannot be read): cgroup v2's `memory.max` of the process's own cgroup (from
    /// /proc/self/cgroup; in a container with a cgroup namespace that is the mount's root),
    /// else cgroup v1's `memory.limit_in_bytes` likewise.
    public static func cgroupMemoryLimit(root: String = "/sys/fs/cgroup", selfCgroup: String = "/proc/self/cgroup") -> UInt64? {
        let membership = readSmallFile(selfCgroup) ?? ""
        var candidates: [(path: String, v1: Bool)] = []
        if let path = cgroupPath(membership, v2: true) {
            candidates.append((root + path + "/memory.max", false))
        }
        candidates.append((root + "/memory.max", false))
        if let path = cgroupPath(membership, v2: false) {
            candidates.append((root + "/memory" + path + "/memory.limit_in_bytes", true))
        }
        candidates.append((root + "/memory/memory.limit_in_bytes", true))
        for candidate in candidates {
            guard let text = readSmallFile(candidate.path) else { continue }
            return parseLimit(text, v1: candidate.v1)
        }
        return nil
    }

    /// The cgroup path of the v2 hierarchy (`0::/path`) or of v1's memory controller
    /// (`N:...memory...:/path`) in /proc/self/cgroup's text; nil when absent. "/" gives "".
    static func cgroupPath(_ membership: String, v2: Bool) -> String? {
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let matches = v2
                ? fields[0] == "0" && fields[1].isEmpty
                : fields[1].split(separator: ",").contains("memory")
            guard matches else { continue }
            let path = String(fields[2])
            guard path.hasPrefix("/"), !path.contains("/../"), !path.hasSuffix("/..") else { return nil }
            return path == "/" ? "" : path
        }
        return nil
    }

    /// A limit file's value: nil for `max` (v2's "no limit"), for v1's "no limit" (a page-rounded
    /// `Int64.max`, 9223372036854771712, or anything from 2^60 up), and for text that is not a
    /// number; otherwise the bytes.
    static func parseLimit(_ text: String, v1: Bool) -> UInt64? {
        let value = text.trimmingWhitespace
        if !v1 && value == "max" { return nil }
        guard let bytes = UInt64(value), bytes > 0 else { return nil }
        return bytes >= 1 << 60 ? nil : bytes
    }

    /// The first 4 KiB of a file, or nil when it cannot be opened.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress.map { $0 + count }, raw.count - count)
            }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            count += got
        }
        return String(decoding: bytes[..<count], as: UTF8.self)
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
