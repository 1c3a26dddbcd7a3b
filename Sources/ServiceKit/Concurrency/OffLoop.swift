import Synchronization
import CServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs `body` on ServiceKit's compute threads instead of the event loop, and returns its
/// result to the caller, back on its loop.
///
/// Handlers run on the event loop thread that watches their connection, as one loop serves
/// many connections: while a handler computes, none of that loop's other connections is read
/// or answered (a 78 ms JSON decode holds up `/health` for 78 ms). Nothing preempts a handler,
/// as Go's scheduler would preempt a goroutine. Work that takes more than about a millisecond
/// of CPU (decoding or encoding a large body, hashing a password, compressing, parsing a
/// document) belongs in here:
///
///     let digest = await offLoop { expensiveHash(request.body) }
///
/// The body runs on one of ``ComputePool/shared``'s threads (one per core), which the kernel
/// schedules beside the loops, so the loops keep answering. It costs a thread hop there and
/// back (microseconds): not worth it for small work. Blocking I/O does not belong here either:
/// it would hold one of those few threads.
public func offLoop<T: Sendable, Failure: Error>(
    _ body: @Sendable () throws(Failure) -> T
) async throws(Failure) -> T {
    try await withTaskExecutorPreference(ComputePool.shared) { () async throws(Failure) -> T in
        try body()
    }
}

/// ComputePool is a few threads for CPU-heavy work (``offLoop(_:)``), apart from the event
/// loops and from Swift's global executor: the global executor also runs the service's own
/// tasks (signal handling, the service group), which heavy work must not hold up.
public final class ComputePool: TaskExecutor, @unchecked Sendable {
    /// One thread per online core, started with the first job.
    public static let shared = ComputePool(threads: max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    public let threadCount: Int
    private let queue = Mutex<(jobs: [UnownedJob], started: Bool)>(([], false))
    private let semaphore: UnsafeMutablePointer<sem_t>

    public init(threads: Int) {
        threadCount = max(1, threads)
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let start = queue.withLock { queue in
            queue.jobs.append(job)
            defer { queue.started = true }
            return !queue.started
        }
        if start && startThreads() == 0 {
            // No thread could be started: the work runs here rather than never.
            queue.withLock { $0.started = false }
            while let job = queue.withLock({ $0.jobs.isEmpty ? nil : $0.jobs.removeFirst() }) {
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
            return
        }
        sem_post(semaphore)
    }

    /// Starts the threads; returns how many started.
    private func startThreads() -> Int {
        var started = 0
        for _ in 0..<threadCount {
            let context = Unmanaged.passRetained(self).toOpaque()
            let result = csystem_thread_start({ raw in
                guard let raw else { return }
                Unmanaged<ComputePool>.fromOpaque(raw).takeRetainedValue().run()
            }, context)
            if result == 0 { started += 1 } else { Unmanaged<ComputePool>.fromOpaque(context).release() }
        }
        return started
    }

    /// A pool thread: takes jobs in order, forever (the pool lives as long as the process).
    private func run() {
        let executor = asUnownedTaskExecutor()
        while true {
            while sem_wait(semaphore) != 0 && errno == EINTR {}
            let job: UnownedJob? = queue.withLock { queue in
                queue.jobs.isEmpty ? nil : queue.jobs.removeFirst()
            }
            job?.runSynchronously(on: executor)
        }
    }
}
