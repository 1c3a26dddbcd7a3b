// The service under test, in its three forms: a binary the drill starts itself, a running local
// process, or a container reached through commands. Each knows its port, how to deliver the
// signal and how to learn when (and with what code) the service exited.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the service ended, as far as the drill could tell.
struct ServiceExit: Equatable, Sendable {
    /// The exit code (128 + signal if a signal ended it); nil when unknown.
    var code: Int32?
    /// When the exit was observed (CLOCK_MONOTONIC ns); nil if it was not.
    var exitedAt: Int64?
    /// A remark for the report, such as "killed by signal 9" or "did not exit within 30s".
    var note: String?

    static let unknown = ServiceExit(code: nil, exitedAt: nil, note: nil)
}

/// One line the service logged that is not an access-log line, with when the drill read it.
struct ServiceLogLine: Equatable, Sendable {
    var time: Int64
    var text: String
}

/// What the orchestrator needs from the service under test.
protocol ServiceUnderTest: AnyObject {
    var port: Int { get }
    /// Delivers the shutdown signal; throws if it could not be delivered.
    func sendSignal() throws
    /// Starts observing the exit in the background; called right after `sendSignal`.
    func startWatchingExit(until deadline: Int64)
    /// Waits until the exit is known or `deadline` passes.
    func waitForExit(until deadline: Int64) -> ServiceExit
    /// Log lines (not access-log lines) the service printed, when the drill reads its stdout.
    var logLines: [ServiceLogLine] { get }
    /// Releases what the target holds; a child still running is killed.
    func cleanUp()
}

// MARK: - A binary the drill starts

/// The startup line's port: `"port":N` in the JSON line whose msg is "service started".
func startupPort(in line: String) -> Int? {
    guard line.contains(#""msg":"service started""#) else { return nil }
    guard let range = line.firstRange(of: #""port":"#) else { return nil }
    let digits = line[range.upperBound...].drop { $0 == " " }.prefix { $0.isASCII && $0.isNumber }
    guard let port = Int(digits), (1...65535).contains(port) else { return nil }
    return port
}

/// The service as the drill's own child: `binary --host 127.0.0.1 --port 0 [extra args]`.
final class ChildService: ServiceUnderTest {
    private struct State {
        var port: Int?
        var lines: [ServiceLogLine] = []
        var termination: (status: TerminationStatus, at: Int64)?
        /// The reader reached EOF on the child's stdout: every line it logged is in `lines`.
        var outputEnded = false
    }

    /// Shared with the stdout and waitpid threads, hence a Mutex.
    private let state = Locked(State())
    let pid: pid_t
    let port: Int
    private var threads: [JoinableThread] = []
    private var cleanedUp = false

    /// The log lines kept for the report: enough for a shutdown's story, bounded so that a
    /// chatty service cannot grow the drill's memory.
    static let maxLogLines = 2000

    /// Starts the binary and waits (up to `startupTimeout` ns) for its startup line.
    init(path: String, arguments: [String], host: String, startupTimeout: Int64) throws {
        let process = try spawnProcess(path: path, arguments: ["--host", host, "--port", "0"] + arguments,
                                       captureStandardOutput: true)
        pid = process.pid
        let state = self.state

        // stdout is drained for the whole run, not just until the startup line: a service that
        // logs every request would otherwise block on a full pipe and look like it hung.
        if let fd = process.standardOutput {
            let reader = try? startThread {
                var pending: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 64 * 1024)
                let accessLine = Array(#""msg":"request""#.utf8)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { break }
                    let now = monotonicNanoseconds()
                    pending.append(contentsOf: chunk[0..<count])
                    guard let lastNewline = pending.lastIndex(of: UInt8(ascii: "\n")) else { continue }
                    for line in pending[..<lastNewline].split(separator: UInt8(ascii: "\n")) where !line.contains(accessLine) {
                        let text = String(decoding: line, as: UTF8.self)
                        state.withLock { state in
                            if state.port == nil, let port = startupPort(in: text) {
                                state.port = port
                            }
                            if state.lines.count < Self.maxLogLines {
                                state.lines.append(ServiceLogLine(time: now, text: text))
                            }
                        }
                    }
                    pending.removeFirst(lastNewline + 1)
                }
                close(fd)
                state.withLock { $0.outputEnded = true }
            }
            if let reader { threads.append(reader) }
        }

        // waitpid from the start, so that a crash before the signal is seen too, and the exit
        // time is the moment waitpid returns rather than the next poll.
        let childPID = pid
        if let waiter = try? startThread({
            if let status = waitForChild(childPID) {
                let now = monotonicNanoseconds()
                state.withLock { $0.termination = (status, now) }
            }
        }) {
            threads.append(waiter)
        }
        guard threads.count == 2 else {
            kill(pid, SIGKILL)
            throw DrillError("cannot start the threads that watch the service")
        }

        let deadline = monotonicNanoseconds() + startupTimeout
        var found: Int?
        while monotonicNanoseconds() < deadline {
            let (announced, termination) = state.withLock { ($0.port, $0.termination) }
            if let announced { found = announced; break }
            if let termination {
                port = 0
                cleanUp()
                throw DrillError("the service exited (\(Self.describe(termination.status))) before its startup line")
            }
            sleep(nanoseconds: 2_000_000)
        }
        guard let found else {
            port = 0
            cleanUp()
            throw DrillError("no \"service started\" line with a port within \(GoDuration(nanoseconds: startupTimeout))")
        }
        port = found
    }

    func sendSignal() throws {
        guard kill(pid, SIGTERM) == 0 else {
            throw DrillError("kill(\(pid), SIGTERM): \(errnoName(errno))")
        }
    }

    func startWatchingExit(until deadline: Int64) {
        // The waitpid thread has been watching since the start.
    }

    func waitForExit(until deadline: Int64) -> ServiceExit {
        while true {
            if let termination = state.withLock({ $0.termination }) {
                // The last lines (the shutdown's own story) may still sit in the pipe behind a
                // burst of access-log lines; give the reader a moment to reach EOF.
                let readerDeadline = monotonicNanoseconds() + 2_000_000_000
                while !state.withLock({ $0.outputEnded }) && monotonicNanoseconds() < readerDeadline {
                    sleep(nanoseconds: 1_000_000)
                }
                let note: String? = if case .signaled(let signal) = termination.status { "killed by signal \(signal)" } else { nil }
                return ServiceExit(code: termination.status.shellExitCode, exitedAt: termination.at, note: note)
            }
            if monotonicNanoseconds() >= deadline {
                kill(pid, SIGKILL)
                return ServiceExit(code: nil, exitedAt: nil, note: "did not exit in time; killed with SIGKILL")
            }
            sleep(nanoseconds: 1_000_000)
        }
    }

    var logLines: [ServiceLogLine] { state.withLock { $0.lines } }

    func cleanUp() {
        guard !cleanedUp else { return }
        cleanedUp = true
        if state.withLock({ $0.termination == nil }) {
            kill(pid, SIGKILL)
        }
        // Both threads end once the child is gone: waitpid returns and its stdout reaches EOF.
        threads.forEach { $0.join() }
    }

    deinit { cleanUp() }

    static func describe(_ status: TerminationStatus) -> String {
        switch status {
        case .exited(let code): "exit code \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}

// MARK: - A running local process

/// A service someone else started: signaled with kill, its exit seen by polling (exit code
/// unknown, since only a parent can collect it).
final class LocalProcessService: ServiceUnderTest {
    let port: Int
    let pid: pid_t
    private let exitedAt = Locked<Int64?>(nil)
    private var watcher: JoinableThread?

    init(port: Int, pid: pid_t) {
        self.port = port
        self.pid = pid
    }

    func sendSignal() throws {
        guard kill(pid, SIGTERM) == 0 else {
            throw DrillError("kill(\(pid), SIGTERM): \(errnoName(errno))")
        }
    }

    func startWatchingExit(until deadline: Int64) {
        let pid = self.pid, exitedAt = self.exitedAt
        // A 1 ms poll: the only way to see a non-child's exit without pidfd privileges games.
        watcher = try? startThread {
            while monotonicNanoseconds() < deadline {
                if !processIsRunning(pid) {
                    let now = monotonicNanoseconds()
                    exitedAt.withLock { $0 = now }
                    return
                }
                sleep(nanoseconds: 1_000_000)
            }
        }
    }

    func waitForExit(until deadline: Int64) -> ServiceExit {
        watcher?.join()
        watcher = nil
        if let time = exitedAt.withLock({ $0 }) {
            return ServiceExit(code: nil, exitedAt: time, note: nil)
        }
        return ServiceExit(code: nil, exitedAt: nil, note: "still running when the drill stopped watching")
    }

    var logLines: [ServiceLogLine] { [] }

    func cleanUp() {
        watcher?.join()
        watcher = nil
    }
}

// MARK: - A container, through commands

/// The last integer in a command's output (`podman wait` prints the exit code on a line of its
/// own; other tools print more around it).
func lastInteger(in text: String) -> Int32? {
    var result: Int32?
    var current = ""
    for character in text + " " {
        if character.isASCII && character.isNumber {
            current.append(character)
        } else {
            if !current.isEmpty, let value = Int32(current) { result = value }
            current = ""
        }
    }
    return result
}

/// A service reached through shell commands: `--signal-command` delivers the signal (`podman
/// kill --signal TERM svc`) and the optional `--wait-command` returns when the service has
/// exited (`podman wait svc`), printing its exit code.
final class CommandService: ServiceUnderTest {
    let port: Int
    let signalCommand: String
    let waitCommand: String?
    private let result = Locked<(code: Int32?, at: Int64, status: TerminationStatus)?>(nil)
    private var waiter: (thread: JoinableThread, pid: pid_t)?

    init(port: Int, signalCommand: String, waitCommand: String?) {
        self.port = port
        self.signalCommand = signalCommand
        self.waitCommand = waitCommand
    }

    func sendSignal() throws {
        let (status, _) = try runShellCommand(signalCommand)
        guard status == .exited(0) else {
            let description = status.map(ChildService.describe) ?? "unknown status"
            throw DrillError("signal command failed (\(description)): \(signalCommand)")
        }
    }

    func startWatchingExit(until deadline: Int64) {
        guard let waitCommand else { return }
        do {
            // Its own process group, so that giving up kills the command the shell started too
            // (which holds the output pipe this thread reads to its end).
            let child = try spawnProcess(path: "/bin/sh", arguments: ["-c", waitCommand],
                                         captureStandardOutput: true, newProcessGroup: true)
            let result = self.result
            let thread = try startThread {
                var output: [UInt8] = []
                if let fd = child.standardOutput {
                    output = readToEnd(fd)
                    close(fd)
                }
                let status = waitForChild(child.pid)
                let now = monotonicNanoseconds()
                // A wait command killed at the deadline has told us nothing.
                guard let status, case .exited = status else { return }
                result.withLock { $0 = (lastInteger(in: String(decoding: output, as: UTF8.self)), now, status) }
            }
            waiter = (thread, child.pid)
        } catch {
            printToStandardError("drill: wait command: \(error)")
        }
    }

    func waitForExit(until deadline: Int64) -> ServiceExit {
        guard let waiter else { return .unknown }
        while monotonicNanoseconds() < deadline {
            if let done = result.withLock({ $0 }) {
                let note: String? = done.status == .exited(0) ? nil : "wait command: \(ChildService.describe(done.status))"
                return ServiceExit(code: done.code, exitedAt: done.at, note: note)
            }
            sleep(nanoseconds: 1_000_000)
        }
        kill(-waiter.pid, SIGKILL)
        return ServiceExit(code: nil, exitedAt: nil, note: "wait command did not return in time")
    }

    var logLines: [ServiceLogLine] { [] }

    func cleanUp() {
        guard let waiter else { return }
        if result.withLock({ $0 == nil }) {
            kill(-waiter.pid, SIGKILL)
        }
        waiter.thread.join()
        self.waiter = nil
    }
}
