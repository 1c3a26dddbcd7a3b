import Synchronization

/// LogSink is where log lines go: a file descriptor (normally standard output) plus a buffer.
///
/// Every line is appended whole under a lock, so lines from many threads never interleave, and
/// written in the order they were appended.
///
/// Threads that called ``beginBatchingOnCurrentThread()`` (the server's event loops) only
/// buffer; their loop calls ``flush()`` once per iteration, so under load many access-log lines
/// leave in one `write(2)`. On every other thread ``append(line:)`` writes at once, so startup
/// lines and lines from background work are never held back.
///
/// The sink never closes its file descriptor and never traps on a write error: lines it cannot
/// write (a closed pipe, a bad descriptor, a reader that stays stalled, or a buffer past its cap)
/// are dropped and counted in ``droppedLines`` and ``droppedBytes``.
public final class LogSink: Sendable {
    /// The process-wide sink for standard output.
    public static let standardOutput = LogSink(fileDescriptor: 1)

    /// The descriptor lines are written to. The sink does not own it and never closes it.
    public let fileDescriptor: Int32
    /// Buffered bytes past which even a batching thread writes at once.
    public let flushThreshold: Int
    /// Buffered bytes past which new lines are dropped, so a descriptor that cannot be written
    /// does not make the buffer grow without bound.
    public let maxBufferedBytes: Int

    /// Lines appended and not yet handed to a writer.
    private let pending: Mutex<[UInt8]>
    /// The second buffer of the double-buffering scheme, owned by whichever thread is writing.
    /// Holding this lock across the swap and the `write(2)` calls keeps writes in append
    /// order across threads, while appends go on into `pending` during a slow write.
    private let writer: Mutex<[UInt8]>
    /// Mirrors `pending.count` so that the flush of an idle event-loop iteration is one load.
    private let bufferedBytes = Atomic<Int>(0)
    private let droppedLineCount = Atomic<Int>(0)
    private let droppedByteCount = Atomic<Int>(0)

    /// How long one flush waits, without progress, for a non-blocking descriptor to become
    /// writable before it drops the rest. Short, because the caller is usually an event loop.
    private static let maxStallMilliseconds = 250
    /// A writer buffer bigger than this after a burst is released instead of kept for reuse.
    private static let retainedCapacityLimit = 256 * 1024

    /// Creates a sink writing to `fileDescriptor`.
    ///
    /// - Parameters:
    ///   - flushThreshold: buffered bytes past which a batching thread writes at once (64 KiB).
    ///   - maxBufferedBytes: buffered bytes past which new lines are dropped (1 MiB).
    public init(fileDescriptor: Int32, flushThreshold: Int = 64 * 1024, maxBufferedBytes: Int = 1024 * 1024) {
        self.fileDescriptor = fileDescriptor
        self.flushThreshold = max(1, flushThreshold)
        self.maxBufferedBytes = max(1, maxBufferedBytes)
        self.pending = Mutex([])
        self.writer = Mutex([])
    }

    /// A sink going away writes what batching threads left in it rather than lose it.
    deinit {
        flush()
    }

    /// Lines dropped because they could not be written or did not fit in the buffer.
    public var droppedLines: Int { droppedLineCount.load(ordering: .relaxed) }
    /// Bytes dropped for the same reasons, including the written-off tail of a partly written line.
    public var droppedBytes: Int { droppedByteCount.load(ordering: .relaxed) }

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
        let count = lines.count
        guard count > 0 else { return }
        let bytes = lines.assumingMemoryBound(to: UInt8.self)
        let needsNewline = bytes[count - 1] != UInt8(ascii: "\n")
        let size = needsNewline ? count + 1 : count
        let limit = maxBufferedBytes

        let buffered: Int? = pending.withLock { buffer in
            guard buffer.count + size <= limit else { return nil }
            buffer.append(contentsOf: bytes)
            if needsNewline { buffer.append(UInt8(ascii: "\n")) }
            bufferedBytes.store(buffer.count, ordering: .releasing)
            return buffer.count
        }
        guard let buffered else {
            recordDrop(lines: max(lineCount, 1), bytes: size)
            return
        }
        if buffered >= flushThreshold || !LogSink.isBatchingOnCurrentThread {
            flush()
        }
    }

    /// Appends one complete line; see the `UnsafeRawBufferPointer` overload.
    public func append(line: [UInt8]) {
        line.withUnsafeBytes { append(line: $0) }
    }

    // MARK: Flushing

    /// Writes everything buffered. Cheap when nothing is buffered, so an event loop can call it
    /// on every iteration.
    public func flush() {
        guard bufferedBytes.load(ordering: .acquiring) > 0 else { return }
        writer.withLock { output in
            pending.withLock { buffer in
                swap(&buffer, &output)
                bufferedBytes.store(0, ordering: .releasing)
            }
            guard !output.isEmpty else { return }
            writeOrDrop(output)
            if output.capacity > LogSink.retainedCapacityLimit {
                output = []
            } else {
                output.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Writes all of `bytes`, retrying partial writes and EINTR and waiting briefly on EAGAIN.
    /// On any other error it drops what is left and counts it.
    private func writeOrDrop(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            var stalledMilliseconds = 0
            while offset < raw.count {
                let written = write(fileDescriptor, base + offset, raw.count - offset)
                if written > 0 {
                    offset += written
                    stalledMilliseconds = 0
                    continue
                }
                // write(2) returning 0 for a non-empty buffer makes no progress; treat it as a
                // failure rather than spin.
                let error = written < 0 ? errno : EIO
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK, stalledMilliseconds < LogSink.maxStallMilliseconds {
                    stalledMilliseconds += waitUntilWritable(
                        timeoutMilliseconds: LogSink.maxStallMilliseconds - stalledMilliseconds
                    )
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

    /// Polls the descriptor for writability and returns how long that took, at least 1 ms so
    /// the caller's stall budget always runs out.
    private func waitUntilWritable(timeoutMilliseconds: Int) -> Int {
        let start = LogSink.monotonicMilliseconds()
        var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
        _ = poll(&descriptor, 1, Int32(clamping: timeoutMilliseconds))
        return max(1, LogSink.monotonicMilliseconds() - start)
    }

    private static func monotonicMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
    }

    private func recordDrop(lines: Int, bytes: Int) {
        droppedLineCount.add(lines, ordering: .relaxed)
        droppedByteCount.add(bytes, ordering: .relaxed)
    }

    // MARK: Batching threads

    /// The thread-specific key of the batching flag; nil if the process ran out of keys, in
    /// which case batching is off and every append writes at once (correct, just slower).
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

    /// Undoes ``beginBatchingOnCurrentThread()``: appends on this thread write at once again.
    /// The caller should ``flush()`` what the thread buffered.
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
