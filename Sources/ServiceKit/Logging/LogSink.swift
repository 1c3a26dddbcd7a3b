import Synchronization
import CServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// LogSink is where log lines go: a file descriptor (normally standard output) plus a buffer
/// and a writer thread of its own.
///
/// Every line is appended whole under a lock, so lines from many threads never interleave, and
/// written in the order they were appended.
///
/// Only the sink's writer thread calls `write(2)`. Standard output is usually a blocking pipe
/// (Docker's blocking log mode, a slow log driver, `service | tee`), and a reader that stops
/// reading would otherwise stop whichever thread writes: an event loop, and with it every
/// connection on it, the probes and the signal handling. Appending never waits for output:
/// while the writer is stuck, lines wait in the buffer up to ``maxBufferedBytes``, and lines
/// past that are dropped and counted (``droppedLines``, ``droppedBytes``). Once output flows
/// again the sink reports the drops through ``onDrops(_:)`` (the JSON handler's bootstrap makes
/// that one warning line).
///
/// Threads that called ``beginBatchingOnCurrentThread()`` (the server's event loops) only
/// buffer; their loop calls ``flush()`` once per iteration, so under load many access-log lines
/// go out in one `write(2)`. On every other thread ``append(line:)`` hands the line to the
/// writer at once, so startup lines and lines from background work are never held back.
/// ``flush(waitingUpTo:)`` waits, within a bound, until what was appended is written: for the
/// last lines before the process exits.
///
/// The sink never closes its file descriptor and never traps on a write error: lines it cannot
/// write (a closed pipe, a bad descriptor) are dropped and counted.
public final class LogSink: Sendable {
    /// The process-wide sink for standard output.
    public static let standardOutput = LogSink(fileDescriptor: 1)

    /// The descriptor lines are written to. The sink does not own it and never closes it.
    public var fileDescriptor: Int32 { writer.fileDescriptor }
    /// Buffered bytes past which even a batching thread hands its lines to the writer.
    public let flushThreshold: Int
    /// Buffered bytes past which new lines are dropped, so a descriptor that cannot be written
    /// does not make the buffer grow without bound.
    public var maxBufferedBytes: Int { writer.maxBufferedBytes }

    private let writer: LogWriter

    /// Creates a sink writing to `fileDescriptor`. Its writer thread starts with the first line.
    ///
    /// - Parameters:
    ///   - flushThreshold: buffered bytes past which a batching thread flushes at once (64 KiB).
    ///   - maxBufferedBytes: buffered bytes past which new lines are dropped (1 MiB).
    public init(fileDescriptor: Int32, flushThreshold: Int = 64 * 1024, maxBufferedBytes: Int = 1024 * 1024) {
        self.flushThreshold = max(1, flushThreshold)
        self.writer = LogWriter(fileDescriptor: fileDescriptor, maxBufferedBytes: max(1, maxBufferedBytes))
    }

    /// A sink going away writes what it holds (waiting at most a second for a stalled reader)
    /// and ends its writer thread.
    deinit {
        _ = writer.flush(waitingUpTo: 1_000_000_000)
        writer.stop()
    }

    /// Lines dropped because they could not be written or did not fit in the buffer.
    public var droppedLines: Int { writer.droppedLineCount.load(ordering: .relaxed) }
    /// Bytes dropped for the same reasons, including the written-off tail of a partly written line.
    public var droppedBytes: Int { writer.droppedByteCount.load(ordering: .relaxed) }

    /// Sets what the writer calls, on its own thread, after a write that follows drops: with the
    /// lines and bytes dropped since the last report. At most once a second, so a reader that
    /// keeps falling behind costs a line a second, not a line per batch. Lines the body logs to
    /// this sink are written after the batch that succeeded.
    public func onDrops(_ body: @escaping @Sendable (_ lines: Int, _ bytes: Int) -> Void) {
        writer.dropReporter.withLock { $0 = body }
    }

    // MARK: Appending

    /// Appends one complete line. The caller includes the trailing `\n`; one is added if missing
    /// so that two calls can never run together into one line.
    public func append(line: UnsafeRawBufferPointer) {
        append(lines: line, count: 1)
    }

    /// Appends `count` complete lines in one go (the bytes of each, `\n` included), under one
    /// lock: how an event loop hands over the access-log lines of one iteration. A batch that
    /// does not fit is dropped whole and counted as `count` lines.
    public func append(lines: UnsafeRawBufferPointer, count lineCount: Int) {
        guard let buffered = writer.append(lines, lineCount: lineCount) else { return }
        if buffered >= flushThreshold || !LogSink.isBatchingOnCurrentThread {
            writer.wake()
        }
    }

    /// Appends one complete line; see the `UnsafeRawBufferPointer` overload.
    public func append(line: [UInt8]) {
        line.withUnsafeBytes { append(line: $0) }
    }

    // MARK: Flushing

    /// Hands everything buffered to the writer thread and returns at once. Cheap when nothing
    /// is buffered (one atomic load), so an event loop can call it on every iteration.
    public func flush() {
        writer.wake()
    }

    /// Hands everything buffered to the writer and waits until it has been written (or dropped),
    /// but no longer than `timeout`. Returns false if the timeout ran out first: the reader is
    /// stalled, and what is still buffered may never be written.
    @discardableResult
    public func flush(waitingUpTo timeout: Duration) -> Bool {
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(clamping: max(0, seconds)).multipliedReportingOverflow(by: 1_000_000_000)
        let total = nanoseconds.overflow ? Int.max / 2 : nanoseconds.partialValue + Int(max(0, attoseconds / 1_000_000_000))
        return writer.flush(waitingUpTo: total)
    }

    // MARK: Batching threads

    /// The thread-specific key of the batching flag; nil if the process ran out of keys, in
    /// which case batching is off and every append wakes the writer (correct, just slower).
    private static let batchingKey: pthread_key_t? = {
        var key = pthread_key_t()
        return pthread_key_create(&key, nil) == 0 ? key : nil
    }()

    /// Marks the calling thread as one that flushes its sinks itself, once per loop iteration.
    ///
    /// From now on ``append(line:)`` on this thread only buffers (until ``flushThreshold``), for
    /// every sink. The thread must call ``flush()`` on the sinks it logs to regularly, and
    /// before it exits.
    public static func beginBatchingOnCurrentThread() {
        guard let key = batchingKey else { return }
        _ = pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
    }

    /// Undoes ``beginBatchingOnCurrentThread()``: appends on this thread go to the writer at
    /// once again. The caller should ``flush()`` what the thread buffered.
    public static func endBatchingOnCurrentThread() {
        guard let key = batchingKey else { return }
        _ = pthread_setspecific(key, nil)
    }

    /// Whether the calling thread called ``beginBatchingOnCurrentThread()``.
    public static var isBatchingOnCurrentThread: Bool {
        guard let key = batchingKey else { return false }
        return pthread_getspecific(key) != nil
    }
}

/// LogWriter is a sink's buffer and the thread that writes it out. The thread holds a reference
/// to it (not to the sink), so a sink can go away and stop its thread.
final class LogWriter: @unchecked Sendable {
    let fileDescriptor: Int32
    let maxBufferedBytes: Int

    /// Lines appended and not yet taken by the writer thread.
    private let pending = Mutex<[UInt8]>([])
    /// Mirrors the pending byte count, so that the flush of an idle event-loop iteration is one
    /// load and appenders never wait for the writer.
    private let bufferedBytes = Atomic<Int>(0)
    /// Bytes ever appended, and bytes the writer has written or dropped: a waiting flush waits
    /// for the second to reach what the first was when it began.
    private let appendedTotal = Atomic<Int>(0)
    private let settledTotal = Atomic<Int>(0)
    let droppedLineCount = Atomic<Int>(0)
    let droppedByteCount = Atomic<Int>(0)
    private let reportedLines = Atomic<Int>(0)
    private let reportedBytes = Atomic<Int>(0)
    private let lastReport = Atomic<Int>(0)
    let dropReporter = Mutex<(@Sendable (Int, Int) -> Void)?>(nil)

    /// Set when the writer has been asked to look at the buffer and has not yet taken it: at
    /// most one semaphore post per batch, however many appenders ask.
    private let signalled = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    /// 0: no thread yet; 1: running; -1: the thread could not be started, so appenders write
    /// themselves (blocking the appender is better than losing every line).
    private let threadState = Atomic<Int>(0)
    private let semaphore: UnsafeMutablePointer<sem_t>

    /// A writer buffer bigger than this after a burst is released instead of kept for reuse.
    private static let retainedCapacityLimit = 256 * 1024
    /// Drops are reported at most this often.
    private static let reportIntervalNanoseconds = 1_000_000_000

    init(fileDescriptor: Int32, maxBufferedBytes: Int) {
        self.fileDescriptor = fileDescriptor
        self.maxBufferedBytes = maxBufferedBytes
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    /// Adds lines to the buffer; returns the buffered byte count, or nil if they were dropped.
    func append(_ lines: UnsafeRawBufferPointer, lineCount: Int) -> Int? {
        let count = lines.count
        guard count > 0 else { return nil }
        let bytes = lines.assumingMemoryBound(to: UInt8.self)
        let needsNewline = bytes[count - 1] != UInt8(ascii: "\n")
        let size = needsNewline ? count + 1 : count
        let limit = maxBufferedBytes
        let buffered: Int? = pending.withLock { buffer in
            guard buffer.count + size <= limit else { return nil }
            buffer.append(contentsOf: bytes)
            if needsNewline { buffer.append(UInt8(ascii: "\n")) }
            bufferedBytes.store(buffer.count, ordering: .releasing)
            appendedTotal.add(size, ordering: .relaxed)
            return buffer.count
        }
        if buffered == nil { recordDrop(lines: max(lineCount, 1), bytes: size) }
        return buffered
    }

    /// Asks the writer thread to write what is buffered, starting it if need be.
    @inline(__always)
    func wake() {
        guard bufferedBytes.load(ordering: .acquiring) > 0 else { return }
        guard !signalled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if threadState.load(ordering: .acquiring) != 1 {
            startThreadIfNeeded()
            if threadState.load(ordering: .acquiring) == -1 {
                signalled.store(false, ordering: .releasing)
                writeBuffered()
                return
            }
        }
        sem_post(semaphore)
    }

    /// See ``LogSink/flush(waitingUpTo:)``.
    func flush(waitingUpTo timeoutNanoseconds: Int) -> Bool {
        let target = appendedTotal.load(ordering: .acquiring)
        wake()
        let deadline = Self.monotonicNanoseconds() + timeoutNanoseconds
        // Polled in steps from 20 µs doubling to 1 ms: the last lines before an exit are
        // usually written within microseconds, and the exit should not wait a whole millisecond.
        var step = 20_000
        while settledTotal.load(ordering: .acquiring) < target {
            if Self.monotonicNanoseconds() >= deadline { return false }
            var pause = timespec(tv_sec: 0, tv_nsec: step)
            nanosleep(&pause, nil)
            step = min(step * 2, 1_000_000)
        }
        return true
    }

    /// Ends the writer thread once it has written what it holds (the sink is going away).
    func stop() {
        stopping.store(true, ordering: .releasing)
        if threadState.load(ordering: .acquiring) == 1 { sem_post(semaphore) }
    }

    private func startThreadIfNeeded() {
        guard threadState.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged else {
            // Another thread is starting it: wait for the outcome (a few microseconds).
            while threadState.load(ordering: .acquiring) == 2 { sched_yield() }
            return
        }
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = csystem_thread_start({ raw in
            guard let raw else { return }
            Unmanaged<LogWriter>.fromOpaque(raw).takeRetainedValue().run()
        }, context)
        if result != 0 {
            Unmanaged<LogWriter>.fromOpaque(context).release()
            threadState.store(-1, ordering: .releasing)
        } else {
            threadState.store(1, ordering: .releasing)
        }
    }

    /// The writer thread: sleeps until woken, writes the buffer, repeats until stopped.
    private func run() {
        while true {
            while sem_wait(semaphore) != 0 && errno == EINTR {}
            repeat {
                signalled.store(false, ordering: .releasing)
                writeBuffered()
                reportDropsIfAny()
            } while stopping.load(ordering: .acquiring) && bufferedBytes.load(ordering: .acquiring) > 0
            if stopping.load(ordering: .acquiring) { return }
        }
    }

    /// Takes the buffer and writes it. Only one thread does this at a time: the writer thread,
    /// or appenders in turn when no thread could be started.
    private func writeBuffered() {
        writing.withLock { output in
            pending.withLock { buffer in
                swap(&buffer, &output)
                bufferedBytes.store(0, ordering: .releasing)
            }
            guard !output.isEmpty else { return }
            writeOrDrop(output)
            settledTotal.add(output.count, ordering: .releasing)
            if output.capacity > Self.retainedCapacityLimit {
                output = []
            } else {
                output.removeAll(keepingCapacity: true)
            }
        }
    }
    /// The buffer being written, kept between batches for its capacity.
    private let writing = Mutex<[UInt8]>([])

    /// Writes all of `bytes`, retrying partial writes and EINTR, and waiting as long as it takes
    /// on EAGAIN (a non-blocking descriptor): this thread is the only one that waits for the
    /// reader. On any other error it drops what is left and counts it.
    private func writeOrDrop(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = write(fileDescriptor, base + offset, raw.count - offset)
                if written > 0 {
                    offset += written
                    continue
                }
                // write(2) returning 0 for a non-empty buffer makes no progress; treat it as a
                // failure rather than spin.
                let error = written < 0 ? errno : EIO
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK {
                    var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&descriptor, 1, 1000)
                    continue
                }
                let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                // Lines end in "\n", so counting them in the rest counts a partly written line
                // as dropped too.
                var lines = 0
                for byte in rest where byte == UInt8(ascii: "\n") { lines += 1 }
                recordDrop(lines: max(lines, 1), bytes: rest.count)
                return
            }
        }
    }

    private func recordDrop(lines: Int, bytes: Int) {
        droppedLineCount.add(lines, ordering: .relaxed)
        droppedByteCount.add(bytes, ordering: .relaxed)
    }

    /// After a batch went out, tells the reporter about lines dropped since its last report.
    private func reportDropsIfAny() {
        let lines = droppedLineCount.load(ordering: .relaxed)
        let bytes = droppedByteCount.load(ordering: .relaxed)
        let newLines = lines - reportedLines.load(ordering: .relaxed)
        guard newLines > 0 else { return }
        let now = Self.monotonicNanoseconds()
        let last = lastReport.load(ordering: .relaxed)
        guard last == 0 || now - last >= Self.reportIntervalNanoseconds else { return }
        // A write that failed outright (a closed pipe) is not output flowing again.
        guard fileDescriptorAcceptsWrites() else { return }
        let newBytes = bytes - reportedBytes.load(ordering: .relaxed)
        reportedLines.store(lines, ordering: .relaxed)
        reportedBytes.store(bytes, ordering: .relaxed)
        lastReport.store(now, ordering: .relaxed)
        if let reporter = dropReporter.withLock({ $0 }) { reporter(newLines, newBytes) }
    }

    /// Whether a write to the descriptor could succeed now: it is valid and has a reader.
    private func fileDescriptorAcceptsWrites() -> Bool {
        var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
        guard poll(&descriptor, 1, 0) >= 0 else { return false }
        return descriptor.revents & Int16(POLLERR | POLLNVAL | POLLHUP) == 0
    }

    static func monotonicNanoseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)
    }
}
