// The few POSIX helpers the drill needs: a monotonic clock, plain threads, errno names, process
// spawning and file writing. The drill uses no Foundation so that its numbers come from the same
// syscalls a reader can reason about, and so that it builds the same way as the rest of the
// package (including the fully static build CI does).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

// MARK: - C library differences

/// Constants Glibc imports as enum cases and Musl as plain integers.
enum Libc {
    #if canImport(Glibc)
    static let streamSocket = Int32(SOCK_STREAM.rawValue)
    static let closeOnExec = Int32(SOCK_CLOEXEC.rawValue)
    #else
    static let streamSocket = Int32(SOCK_STREAM)
    static let closeOnExec = Int32(SOCK_CLOEXEC)
    #endif
}

// MARK: - Clock

/// Nanoseconds on CLOCK_MONOTONIC. Every timestamp the drill records comes from here, so that a
/// wall-clock step (NTP) in the middle of a drill cannot reorder events around the signal.
@inline(__always)
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Sleeps until the monotonic clock reaches `deadline` (absolute, so a late wake-up does not
/// push later deadlines back the way a chain of relative sleeps would).
func sleep(untilMonotonic deadline: Int64) {
    guard deadline > 0 else { return }
    var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    // clock_nanosleep returns the error number itself rather than setting errno.
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
}

func sleep(nanoseconds: Int64) {
    sleep(untilMonotonic: monotonicNanoseconds() + nanoseconds)
}

// MARK: - Errors

/// A failure of the drill itself (not of a request): the service would not start, a signal
/// could not be sent, a thread could not be created. Printed as one line; the drill exits 1.
struct DrillError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A short, stable name for an errno value, used as an `error` reason so that reasons group
/// well in the summary ("ECONNRESET" rather than a locale-dependent sentence).
func errnoName(_ code: Int32) -> String {
    switch code {
    case EPIPE: "EPIPE"
    case ECONNRESET: "ECONNRESET"
    case ECONNREFUSED: "ECONNREFUSED"
    case ECONNABORTED: "ECONNABORTED"
    case ETIMEDOUT: "ETIMEDOUT"
    case EAGAIN: "EAGAIN"
    case EINPROGRESS: "EINPROGRESS"
    case EADDRNOTAVAIL: "EADDRNOTAVAIL"
    case EADDRINUSE: "EADDRINUSE"
    case ENETUNREACH: "ENETUNREACH"
    case EHOSTUNREACH: "EHOSTUNREACH"
    case EMFILE: "EMFILE"
    case ENFILE: "ENFILE"
    case ENOBUFS: "ENOBUFS"
    case ENOMEM: "ENOMEM"
    case EBADF: "EBADF"
    case EINVAL: "EINVAL"
    case ENOTCONN: "ENOTCONN"
    case ESRCH: "ESRCH"
    case EPERM: "EPERM"
    default: "errno \(code)"
    }
}

// MARK: - Threads

/// Carries a Swift closure through pthread_create's single `void *` argument.
private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// A joinable OS thread. The load model is one blocking thread per connection, so the drill uses
/// pthreads directly rather than Swift concurrency, whose cooperative pool has one thread per
/// core and would serialize blocking sockets.
struct JoinableThread {
    fileprivate let handle: pthread_t

    /// Waits for the thread to return. Call exactly once.
    func join() {
        pthread_join(handle, nil)
    }
}

/// Starts `body` on a new thread with a modest stack (a drill may run hundreds of them).
func startThread(_ body: @escaping @Sendable () -> Void) throws -> JoinableThread {
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, 512 * 1024)

    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    // Glibc's pthread_t is an integer, Musl's a pointer (imported as optional).
    #if canImport(Glibc)
    var handle = pthread_t()
    #else
    var handle: pthread_t?
    #endif
    let result = pthread_create(&handle, &attributes, { argument in
        guard let argument else { return nil }
        Unmanaged<ThreadBody>.fromOpaque(argument).takeRetainedValue().run()
        return nil
    }, context)
    guard result == 0 else {
        // The thread never started, so the closure's retain is ours to drop.
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        throw DrillError("cannot start a thread: \(errnoName(result))")
    }
    #if canImport(Glibc)
    return JoinableThread(handle: handle)
    #else
    guard let handle else { throw DrillError("cannot start a thread") }
    return JoinableThread(handle: handle)
    #endif
}

// MARK: - Processes

/// A child process started with posix_spawn.
struct SpawnedProcess {
    var pid: pid_t
    /// The read end of a pipe on the child's stdout, when it was captured.
    var standardOutput: Int32?
}

/// Starts `path` with `arguments` (argv[1...]) and the drill's environment. With
/// `captureStandardOutput` the child's stdout is a pipe whose read end is returned; the caller
/// must keep reading it, or the child blocks once the pipe buffer (64 KiB) is full.
///
/// With `newProcessGroup` the child leads a process group of its own, so that `kill(-pid, …)`
/// also reaches whatever it started (a shell's command).
func spawnProcess(path: String, arguments: [String], captureStandardOutput: Bool,
                  newProcessGroup: Bool = false) throws -> SpawnedProcess {
    var pipeEnds: [Int32] = [-1, -1]
    if captureStandardOutput {
        // Close-on-exec: the pipe must reach only this child's fd 1, not every later child (a
        // signal or wait command inheriting the write end would keep the pipe open forever).
        // pipe2 is not visible to Swift without _GNU_SOURCE; pipe plus fcntl is racy only
        // against a spawn on another thread, and the drill spawns from one thread at a time.
        guard pipe(&pipeEnds) == 0 else {
            throw DrillError("pipe: \(errnoName(errno))")
        }
        _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)
    }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if captureStandardOutput {
        // dup2 onto fd 1 clears FD_CLOEXEC on the copy, so only fd 1 survives the exec.
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
    }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // The child starts with default dispositions for the signals a shutdown is about, whatever
    // the shell that started the drill had ignored.
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGTERM)
    sigaddset(&defaults, SIGINT)
    sigaddset(&defaults, SIGPIPE)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
    if newProcessGroup {
        posix_spawnattr_setpgroup(&attributes, 0)
        flags |= Int32(POSIX_SPAWN_SETPGROUP)
    }
    posix_spawnattr_setflags(&attributes, Int16(flags))

    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }

    var pid = pid_t()
    let result = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
    if captureStandardOutput {
        close(pipeEnds[1])
    }
    guard result == 0 else {
        if captureStandardOutput { close(pipeEnds[0]) }
        throw DrillError("cannot start \(path): \(errnoName(result))")
    }
    return SpawnedProcess(pid: pid, standardOutput: captureStandardOutput ? pipeEnds[0] : nil)
}

/// What waitpid reported: an exit status, or the number of the signal that ended the process.
enum TerminationStatus: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)

    /// Decodes a raw wait status (the WIFEXITED/WEXITSTATUS/WTERMSIG macros, which Swift does
    /// not import).
    init(rawWaitStatus status: Int32) {
        if status & 0x7f == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(status & 0x7f)
        }
    }

    /// The exit code as a shell reports it: 128 + signal for a signaled process.
    var shellExitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }
}

/// Blocks until the child `pid` ends and returns how it ended (nil if it is not our child).
func waitForChild(_ pid: pid_t) -> TerminationStatus? {
    var status: Int32 = 0
    while true {
        let result = waitpid(pid, &status, 0)
        if result == pid { return TerminationStatus(rawWaitStatus: status) }
        if result < 0 && errno == EINTR { continue }
        return nil
    }
}

/// Runs `/bin/sh -c command` to completion and returns its status and everything it printed on
/// stdout (stderr passes through to the drill's stderr, where an operator sees it).
func runShellCommand(_ command: String) throws -> (status: TerminationStatus?, output: String) {
    let child = try spawnProcess(path: "/bin/sh", arguments: ["-c", command], captureStandardOutput: true)
    var output: [UInt8] = []
    if let fd = child.standardOutput {
        output = readToEnd(fd)
        close(fd)
    }
    return (waitForChild(child.pid), String(decoding: output, as: UTF8.self))
}

/// Reads `fd` until end of file.
func readToEnd(_ fd: Int32) -> [UInt8] {
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count > 0 {
            output.append(contentsOf: chunk[0..<count])
        } else if count < 0 && errno == EINTR {
            continue
        } else {
            return output
        }
    }
}

/// True while `pid` exists and is not a zombie. A zombie has exited but is not yet reaped by its
/// parent (for example a test harness that started the service and has not called wait yet);
/// kill(pid, 0) still succeeds on it, so /proc is consulted too.
func processIsRunning(_ pid: pid_t) -> Bool {
    if kill(pid, 0) != 0 && errno == ESRCH {
        return false
    }
    // /proc/PID/stat is "PID (comm) STATE ...": the state follows the last ')'. comm may itself
    // contain ')' or spaces, hence the last one.
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return true }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 512)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return true }
    let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let close = line.lastIndex(of: ")") else { return true }
    let state = line[line.index(after: close)...].drop { $0 == " " }.first
    return state != "Z" && state != "X"
}

// MARK: - Files and standard streams

/// Writes `text` to `path`, replacing the file.
func writeFile(_ path: String, _ text: String) throws {
    // "e": close-on-exec, so a child spawned meanwhile does not inherit the open file (a script
    // written here and executed later would fail with ETXTBSY while any process holds it).
    guard let file = fopen(path, "we") else {
        throw DrillError("cannot write \(path): \(errnoName(errno))")
    }
    let bytes = Array(text.utf8)
    let written = fwrite(bytes, 1, bytes.count, file)
    let closed = fclose(file)
    guard written == bytes.count, closed == 0 else {
        throw DrillError("cannot write \(path): short write")
    }
}

/// One line on stderr, for progress and problems, so that stdout carries only the report.
func printToStandardError(_ line: String) {
    // write(2) rather than fputs(stderr): one syscall per line keeps lines from different
    // threads whole, and the C stream globals are not concurrency-safe in Swift 6.
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let count = bytes.withUnsafeBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return write(2, base + offset, raw.count - offset)
        }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { return }
        offset += count
    }
}

/// Flushes stdout (print's buffer) and exits the process with `code`.
func exitProcess(_ code: Int32) -> Never {
    fflush(nil)
    exit(code)
}

/// Makes room for `needed` descriptors (one socket per connection plus a few), raising the soft
/// limit toward the hard one; a default soft limit of 1024 would otherwise cap `--connections`.
func ensureDescriptorLimit(_ needed: Int) {
    var limit = rlimit()
    guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return }
    guard limit.rlim_cur < rlim_t(needed) else { return }
    limit.rlim_cur = min(limit.rlim_max, rlim_t(needed))
    setrlimit(RLIMIT_NOFILE_VALUE, &limit)
}

#if canImport(Glibc)
// Glibc imports RLIMIT_NOFILE as an enum case of __rlimit_resource, Musl as an Int32.
private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
private let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif

// MARK: - Shared state

/// A value behind a mutex, as a class so that threads can share it (Mutex itself cannot be
/// copied into a closure).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result {
        mutex.withLock { body(&$0) }
    }
}
