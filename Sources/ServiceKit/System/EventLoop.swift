import Synchronization
import CServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// EventLoop is one thread that waits on epoll and runs the tasks whose sockets it watches.
///
/// It is a `TaskExecutor`: a connection's task is started with this loop as its executor
/// preference, so the task's code (read, parse, handle, write) runs on the same thread that
/// learns its socket is ready. A prototype of this design measured the thread hop this avoids
/// at 30 to 40% of throughput.
///
/// Methods marked "loop thread only" touch state without locks and must be called from code
/// running on this loop (a task with this loop as its executor preference).
public final class EventLoop: TaskExecutor, @unchecked Sendable {
    /// Why a wait ended.
    public enum WaitResult: Sendable, Equatable {
        case ready
        case timedOut
        /// The descriptor was deregistered or the loop is stopping.
        case cancelled
    }

    struct Waiter {
        var continuation: UnsafeContinuation<WaitResult, Never>
        /// Monotonic nanoseconds; `UInt64.max` for none.
        var deadline: UInt64
    }

    struct Slot {
        var read: Waiter?
        var write: Waiter?
        /// Monotonic deadline of a parked descriptor (see ``park(_:deadline:)``); 0 when not parked.
        var parkedUntil: UInt64 = 0
        /// The ``pollGeneration`` in which a read last emptied the descriptor's receive queue;
        /// `UInt64.max` once a hang-up was reported (see ``noteHangup(_:)``), 0 for neither.
        var drainedIn: UInt64 = 0
    }

    struct Sleeper {
        var id: UInt64
        var deadline: UInt64
        var continuation: UnsafeContinuation<Bool, Never>
    }

    struct Remote {
        var jobs: [UnownedJob] = []
        var closures: [@Sendable () -> Void] = []
        var wakePending = false
        /// Set when the loop has exited and closed its descriptors: later work is dropped, and
        /// nothing writes to a descriptor number that may by now belong to something else.
        var closed = false
    }

    /// How often deadlines are checked while any wait has one. Timeouts fire up to this late.
    public static let timerResolutionNanoseconds: UInt64 = 50_000_000

    public let index: Int
    let epollFD: Int32
    let wakeFD: Int32
    let remote = Mutex(Remote())

    // Loop thread only. `@exclusivity(unchecked)`: these are touched for every request, and the
    // runtime's dynamic exclusivity checks on class properties cost about a third of user-space
    // time in the prototype; all access is confined to the loop thread by construction.
    @exclusivity(unchecked) var jobs: [UnownedJob] = []
    @exclusivity(unchecked) var spareJobs: [UnownedJob] = []
    @exclusivity(unchecked) var slots: [Slot] = []
    @exclusivity(unchecked) var waitsWithDeadline = 0
    /// Tasks sleeping on this loop: resumed with true at their deadline, false when cancelled
    /// (``sleep(for:)``) or when the loop stops.
    @exclusivity(unchecked) var sleepers: [Sleeper] = []
    @exclusivity(unchecked) var nextSleeperID: UInt64 = 0
    @exclusivity(unchecked) var nextSweep: UInt64 = 0
    @exclusivity(unchecked) var running = true
    /// Called once per loop iteration, after the ready tasks ran (the log sink flushes here).
    @exclusivity(unchecked) var afterIteration: [() -> Void] = []
    /// Told when a parked descriptor becomes readable, its park deadline passes, or its wait
    /// is cancelled (see ``park(_:deadline:)``). Set once, before anything is parked.
    @exclusivity(unchecked) public var parkedHandler: ((Int32, WaitResult) -> Void)?
    /// Told when epoll reports a hang-up, a half-close or an error on a descriptor that no
    /// task is waiting to read and that is not parked: a peer that left while its request's
    /// handler runs. Set once, before anything is registered.
    @exclusivity(unchecked) public var hangupHandler: ((Int32) -> Void)?
    /// Per-loop state the HTTP server keeps here so its hot path needs no locks.
    @exclusivity(unchecked) public var serverState: AnyObject?
    /// Bumped before every `epoll_wait`; see ``noteDrained(_:)``.
    @exclusivity(unchecked) var pollGeneration: UInt64 = 1
    /// When the loop must run an iteration (and its hooks) even with nothing to do; 0 for never.
    @exclusivity(unchecked) var wakeUpBy: UInt64 = 0

    let stopped = Mutex(false)

    /// Creates the loop and starts its thread.
    public init(index: Int) throws(SystemError) {
        self.index = index
        epollFD = csystem_epoll_create()
        guard epollFD >= 0 else { throw .last("epoll_create1") }
        wakeFD = csystem_eventfd()
        guard wakeFD >= 0 else {
            let error = SystemError.last("eventfd")
            _ = systemClose(epollFD)
            throw error
        }
        guard csystem_epoll_add(epollFD, wakeFD, csystem_EPOLLIN | csystem_EPOLLET, UInt64(wakeFD)) == 0 else {
            let error = SystemError.last("epoll_ctl")
            _ = systemClose(epollFD)
            _ = systemClose(wakeFD)
            throw error
        }
        jobs.reserveCapacity(64)
        spareJobs.reserveCapacity(64)
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = csystem_thread_start({ context in
            guard let context else { return }
            let loop = Unmanaged<EventLoop>.fromOpaque(context).takeRetainedValue()
            loop.run()
        }, context)
        guard result == 0 else {
            Unmanaged<EventLoop>.fromOpaque(context).release()
            _ = systemClose(epollFD)
            _ = systemClose(wakeFD)
            throw SystemError(call: "pthread_create", errno: result)
        }
    }

    /// Whether the calling thread is this loop's thread.
    @inline(__always)
    public var inLoop: Bool {
        csystem_current_loop() == Unmanaged.passUnretained(self).toOpaque()
    }

    /// The loop running the calling thread, if any.
    public static var current: EventLoop? {
        guard let pointer = csystem_current_loop() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(pointer).takeUnretainedValue()
    }

    // MARK: TaskExecutor

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if inLoop {
            jobs.append(job)
            return
        }
        remote.withLock { remote in
            guard !remote.closed else { return }
            remote.jobs.append(job)
            // The wake-up is written under the lock, so it can never race the loop closing
            // its eventfd.
            if !remote.wakePending { signal() }
            remote.wakePending = true
        }
    }

    /// Runs `body` on the loop thread soon. Safe from any thread.
    ///
    /// - Returns: whether `body` was taken, false once the loop has stopped. A body taken runs
    ///   exactly once, even when the loop is stopping.
    @discardableResult
    public func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        remote.withLock { remote in
            guard !remote.closed else { return false }
            remote.closures.append(body)
            if !remote.wakePending { signal() }
            remote.wakePending = true
            return true
        }
    }

    private func signal() {
        var one: UInt64 = 1
        _ = systemWrite(wakeFD, &one, 8)
    }

    /// Stops the loop after its current iteration; its thread exits. Waits still pending are
    /// resumed with `.cancelled` first so their tasks can finish.
    public func stop() {
        execute { [self] in
            running = false
        }
    }

    // MARK: Descriptors (loop thread only)

    /// Watches `fd` for readiness, edge-triggered: callers read or write until EAGAIN before
    /// waiting, so an edge is never missed.
    public func register(_ fd: Int32) throws(SystemError) {
        let events = csystem_EPOLLIN | csystem_EPOLLOUT | csystem_EPOLLRDHUP | csystem_EPOLLET
        guard csystem_epoll_add(epollFD, fd, events, UInt64(fd)) == 0 else { throw .last("epoll_ctl") }
        if Int(fd) >= slots.count {
            slots.append(contentsOf: repeatElement(Slot(), count: Int(fd) + 1 - slots.count + 64))
        }
        slots[Int(fd)].drainedIn = 0
    }

    /// Stops watching `fd` (before it is closed) and cancels any wait on it.
    public func deregister(_ fd: Int32) {
        _ = csystem_epoll_del(epollFD, fd)
        if Int(fd) < slots.count { slots[Int(fd)].drainedIn = 0 }
        cancelWaits(fd)
    }

    /// Ends any wait on `fd` with `.cancelled`: used to close idle connections on shutdown.
    /// A parked descriptor is reported to ``parkedHandler`` as `.cancelled`.
    public func cancelWaits(_ fd: Int32) {
        guard Int(fd) < slots.count else { return }
        if slots[Int(fd)].parkedUntil != 0 {
            unpark(fd, .cancelled)
        }
        if let waiter = slots[Int(fd)].read {
            slots[Int(fd)].read = nil
            finish(waiter, .cancelled)
        }
        if let waiter = slots[Int(fd)].write {
            slots[Int(fd)].write = nil
            finish(waiter, .cancelled)
        }
    }

    /// Suspends until `fd` is readable (or has an error or hang-up), or the deadline passes.
    ///
    /// `nonisolated(nonsending)`, as are the waits below: the wait runs on the caller's executor
    /// (this loop) instead of hopping to the generic one and back, which cost about 500
    /// instructions per keep-alive request under callgrind (12,690 against 13,119 with the
    /// access log off).
    ///
    /// - Parameter deadline: monotonic nanoseconds (``EventLoop/now()``), or `UInt64.max`.
    nonisolated(nonsending) public func waitReadable(_ fd: Int32, deadline: UInt64 = .max) async -> WaitResult {
        guard Int(fd) < slots.count, slots[Int(fd)].read == nil else { return .cancelled }
        return await withUnsafeContinuation { continuation in
            slots[Int(fd)].read = Waiter(continuation: continuation, deadline: deadline)
            if deadline != .max { waitsWithDeadline += 1 }
        }
    }

    /// Suspends until `fd` is writable (or has an error), or the deadline passes.
    nonisolated(nonsending) public func waitWritable(_ fd: Int32, deadline: UInt64 = .max) async -> WaitResult {
        guard Int(fd) < slots.count, slots[Int(fd)].write == nil else { return .cancelled }
        return await withUnsafeContinuation { continuation in
            slots[Int(fd)].write = Waiter(continuation: continuation, deadline: deadline)
            if deadline != .max { waitsWithDeadline += 1 }
        }
    }

    /// Watches `fd` for readability with no task waiting: when it becomes readable (or has an
    /// error or hang-up), when `deadline` passes, or when its wait is cancelled, the loop calls
    /// ``parkedHandler`` with the descriptor and why, once. Loop thread only.
    ///
    /// This is how an idle keep-alive connection costs no task: a suspended task keeps its
    /// async frame and its allocator slab (about 6 KiB here) for as long as it waits, while a
    /// parked descriptor is one slot entry. The caller must have read until EAGAIN just before
    /// parking (on this thread, with no suspension in between), as with any wait here.
    public func park(_ fd: Int32, deadline: UInt64) {
        guard Int(fd) < slots.count, slots[Int(fd)].read == nil, slots[Int(fd)].parkedUntil == 0 else { return }
        // 0 means "not parked"; a deadline of 0 has passed anyway.
        slots[Int(fd)].parkedUntil = max(deadline, 1)
        if deadline != .max { waitsWithDeadline += 1 }
    }

    private func unpark(_ fd: Int32, _ result: WaitResult) {
        let deadline = slots[Int(fd)].parkedUntil
        slots[Int(fd)].parkedUntil = 0
        if deadline != .max { waitsWithDeadline -= 1 }
        parkedHandler?(fd, result)
    }

    // MARK: Drained descriptors (loop thread only)

    /// Records that a read on `fd` just emptied its receive queue (it returned less than it
    /// asked for).
    ///
    /// Until this loop next calls `epoll_wait`, a read on `fd` would find nothing new: any byte
    /// that arrives later raises a new edge, which that `epoll_wait` reports. So a caller that
    /// sees ``isDrained(_:)`` can wait (or park) at once instead of making a `recv` that fails
    /// with EAGAIN: one syscall of three per keep-alive request, as nginx does with EPOLLRDHUP.
    ///
    /// Not after the peer's FIN or an error was reported (``noteHangup(_:)``): its edge may
    /// have come before the read, which then returned the last bytes, and the end of stream or
    /// the error still waits to be read with no new edge to come. (nginx's `pending_eof`.)
    @inline(__always)
    public func noteDrained(_ fd: Int32) {
        guard Int(fd) < slots.count, slots[Int(fd)].drainedIn != .max else { return }
        slots[Int(fd)].drainedIn = pollGeneration
    }

    /// Records that epoll reported a hang-up, a half-close or an error on `fd`: from now until
    /// ``deregister(_:)``, reads on it are never skipped.
    @inline(__always)
    func noteHangup(_ fd: Int32) {
        guard Int(fd) < slots.count else { return }
        slots[Int(fd)].drainedIn = .max
    }

    /// Whether epoll reported a hang-up, a half-close or an error on `fd` since it was
    /// registered.
    @inline(__always)
    public func sawHangup(_ fd: Int32) -> Bool {
        Int(fd) < slots.count && slots[Int(fd)].drainedIn == .max
    }

    /// Whether a read on `fd` emptied its receive queue since this loop last polled.
    @inline(__always)
    public func isDrained(_ fd: Int32) -> Bool {
        Int(fd) < slots.count && slots[Int(fd)].drainedIn == pollGeneration
    }

    /// Suspends the calling task until `deadline` (monotonic nanoseconds), on this loop.
    public func sleep(until deadline: UInt64) async {
        _ = await withUnsafeContinuation { continuation in
            sleepers.append(Sleeper(id: takeSleeperID(), deadline: deadline, continuation: continuation))
        }
    }

    /// Suspends the calling task for `duration`, on the event loop it runs on; throws
    /// `CancellationError` as soon as the task is cancelled. From a task on no loop, this is
    /// `Task.sleep(for:)`.
    ///
    /// For handlers, which run on a loop: a cancelled `Task.sleep` throws at once too, but on
    /// Linux the sleep's own timer task (about 5 KiB) stays until the original deadline, so 3,000
    /// handlers whose clients left in the middle of a one-minute sleep held 14 MiB for that minute.
    /// A cancelled sleep here is gone with its task.
    public static func sleep(for duration: Duration) async throws {
        guard let loop = current else {
            try await Task.sleep(for: duration)
            return
        }
        try await loop.cancellableSleep(until: deadline(after: duration, orNow: true))
    }

    /// The calling task sleeps on this loop until `deadline`, or until it is cancelled (loop
    /// thread only).
    nonisolated(nonsending) func cancellableSleep(until deadline: UInt64) async throws {
        if !(await interruptibleSleep(until: deadline, id: takeSleeperID())) { throw CancellationError() }
    }

    /// The calling task sleeps on this loop until `deadline`; returns true then, false when
    /// the task is cancelled or ``wake(sleeper:)`` ends the sleep first (loop thread only).
    /// `id` is from ``takeSleeperID()``.
    nonisolated(nonsending) func interruptibleSleep(until deadline: UInt64, id: UInt64) async -> Bool {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(returning: false)
                } else {
                    sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                }
            }
        } onCancel: {
            // Any thread may cancel; the sleepers are the loop's. A cancellation from the loop
            // itself also comes back through `execute`, after the sleeper was registered.
            execute { [self] in wake(sleeper: id) }
        }
    }

    /// Ends the sleep of ``interruptibleSleep(until:id:)`` with `id` now, if it still sleeps
    /// (loop thread only).
    func wake(sleeper id: UInt64) {
        guard let index = sleepers.firstIndex(where: { $0.id == id }) else { return }
        sleepers.remove(at: index).continuation.resume(returning: false)
    }

    func takeSleeperID() -> UInt64 {
        nextSleeperID &+= 1
        return nextSleeperID
    }

    /// Runs `body` at the end of every loop iteration (loop thread only).
    public func addIterationHook(_ body: @escaping () -> Void) {
        afterIteration.append(body)
    }

    /// Makes the loop run an iteration, and so its hooks, by `deadline` (monotonic nanoseconds)
    /// even if nothing else happens by then: for a hook that has work it put off. The earliest
    /// of several requests wins. Loop thread only.
    public func wakeUp(by deadline: UInt64) {
        if wakeUpBy == 0 || deadline < wakeUpBy { wakeUpBy = max(deadline, 1) }
    }

    @inline(__always)
    private func finish(_ waiter: Waiter, _ result: WaitResult) {
        if waiter.deadline != .max { waitsWithDeadline -= 1 }
        waiter.continuation.resume(returning: result)
    }

    /// Monotonic time in nanoseconds.
    @inline(__always)
    public static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    /// A deadline `duration` from now; `UInt64.max` for a zero or negative duration ("none"),
    /// or now itself when `orNow` is set.
    public static func deadline(after duration: Duration, orNow: Bool = false) -> UInt64 {
        guard duration > .zero else { return orNow ? now() : .max }
        guard let nanos = nanoseconds(duration) else { return .max }
        let (sum, overflow) = now().addingReportingOverflow(nanos)
        return overflow ? .max : sum
    }

    /// Whole nanoseconds in a positive `duration`; nil past `UInt64.max`.
    ///
    /// One 128-by-64-bit division of the attosecond count (a single `div` instruction) rather
    /// than `Duration.components`, whose 128-bit arithmetic cost about 400 instructions per
    /// request here (a deadline is computed for every request).
    static func nanoseconds(_ duration: Duration) -> UInt64? {
        let attoseconds = duration.attoseconds
        guard attoseconds > 0 else { return 0 }
        let high = UInt64(truncatingIfNeeded: attoseconds >> 64)
        // The quotient fits in 64 bits exactly when the high word is below the divisor.
        guard high < 1_000_000_000 else { return nil }
        return UInt64(1_000_000_000).dividingFullWidth((high: high, low: UInt64(truncatingIfNeeded: attoseconds))).quotient
    }

    // MARK: The loop

    private func run() {
        csystem_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        let capacity = 256
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        let data = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        defer {
            events.deallocate()
            data.deallocate()
        }
        let executor = asUnownedTaskExecutor()

        while running {
            // Ready tasks first. A bounded number of rounds keeps I/O from starving behind
            // tasks that keep re-enqueueing each other.
            var rounds = 0
            while !jobs.isEmpty && rounds < 4 {
                swap(&jobs, &spareJobs)
                for job in spareJobs { job.runSynchronously(on: executor) }
                spareJobs.removeAll(keepingCapacity: true)
                rounds += 1
            }
            for hook in afterIteration { hook() }

            var timeout: Int32 = -1
            if !jobs.isEmpty {
                timeout = 0
            } else if waitsWithDeadline > 0 || !sleepers.isEmpty {
                let now = Self.now()
                if nextSweep <= now { nextSweep = now + Self.timerResolutionNanoseconds }
                timeout = Int32((nextSweep - now + 999_999) / 1_000_000)
            }
            if wakeUpBy != 0 {
                // The hooks just ran: a wake-up that is due now has had its iteration.
                let now = Self.now()
                if wakeUpBy <= now {
                    wakeUpBy = 0
                } else {
                    let milliseconds = Int32(min((wakeUpBy - now + 999_999) / 1_000_000, 60_000))
                    timeout = timeout < 0 ? milliseconds : min(timeout, milliseconds)
                }
            }
            pollGeneration &+= 1
            let count = csystem_epoll_wait(epollFD, events, data, Int32(capacity), timeout)
            if count < 0 && Platform.errno != EINTR { break }
            for i in 0..<max(Int(count), 0) {
                let fd = Int32(truncatingIfNeeded: data[i])
                if fd == wakeFD {
                    drainRemote()
                    continue
                }
                guard Int(fd) < slots.count else { continue }
                let flags = events[i]
                if flags & (csystem_EPOLLERR | csystem_EPOLLHUP | csystem_EPOLLRDHUP) != 0 { noteHangup(fd) }
                if flags & (csystem_EPOLLIN | csystem_EPOLLERR | csystem_EPOLLHUP | csystem_EPOLLRDHUP) != 0 {
                    if let waiter = slots[Int(fd)].read {
                        slots[Int(fd)].read = nil
                        finish(waiter, .ready)
                    } else if slots[Int(fd)].parkedUntil != 0 {
                        unpark(fd, .ready)
                    } else if flags & (csystem_EPOLLERR | csystem_EPOLLHUP | csystem_EPOLLRDHUP) != 0 {
                        hangupHandler?(fd)
                    }
                }
                if flags & (csystem_EPOLLOUT | csystem_EPOLLERR | csystem_EPOLLHUP) != 0,
                   let waiter = slots[Int(fd)].write {
                    slots[Int(fd)].write = nil
                    finish(waiter, .ready)
                }
            }
            if waitsWithDeadline > 0 || !sleepers.isEmpty {
                let now = Self.now()
                if now >= nextSweep {
                    expire(now: now)
                    nextSweep = now + Self.timerResolutionNanoseconds
                }
            }
        }

        // Let every suspended wait finish so its task can clean up.
        for fd in slots.indices { cancelWaits(Int32(fd)) }
        for sleeper in sleepers { sleeper.continuation.resume(returning: false) }
        sleepers.removeAll()
        while !jobs.isEmpty {
            swap(&jobs, &spareJobs)
            for job in spareJobs { job.runSynchronously(on: executor) }
            spareJobs.removeAll(keepingCapacity: true)
        }
        for hook in afterIteration { hook() }
        drainRemote()
        // The handler and the hooks usually refer to state that refers to this loop: break
        // the cycles, or a stopped loop and its server would never be freed.
        parkedHandler = nil
        hangupHandler = nil
        afterIteration = []
        csystem_set_current_loop(nil)
        // Closures queued since the last drain still run (on this thread, after the loop), so
        // a caller that `execute` accepted is never left waiting.
        let late = remote.withLock { remote in
            remote.closed = true
            _ = systemClose(epollFD)
            _ = systemClose(wakeFD)
            defer { remote.closures.removeAll() }
            return remote.closures
        }
        for closure in late { closure() }
        stopped.withLock { $0 = true }
    }

    private func drainRemote() {
        var counter: UInt64 = 0
        _ = systemRead(wakeFD, &counter, 8)
        let (remoteJobs, closures) = remote.withLock { remote in
            defer {
                remote.jobs.removeAll(keepingCapacity: true)
                remote.closures.removeAll()
                remote.wakePending = false
            }
            return (remote.jobs, remote.closures)
        }
        jobs.append(contentsOf: remoteJobs)
        for closure in closures { closure() }
    }

    private func expire(now: UInt64) {
        for fd in slots.indices {
            if let waiter = slots[fd].read, waiter.deadline <= now {
                slots[fd].read = nil
                finish(waiter, .timedOut)
            }
            if let waiter = slots[fd].write, waiter.deadline <= now {
                slots[fd].write = nil
                finish(waiter, .timedOut)
            }
            if slots[fd].parkedUntil != 0 && slots[fd].parkedUntil <= now {
                unpark(Int32(fd), .timedOut)
            }
        }
        if !sleepers.isEmpty {
            var remaining: [Sleeper] = []
            for sleeper in sleepers {
                if sleeper.deadline <= now { sleeper.continuation.resume(returning: true) } else { remaining.append(sleeper) }
            }
            sleepers = remaining
        }
    }

    /// Whether the loop's thread has finished.
    public var isStopped: Bool { stopped.withLock { $0 } }
}

@inline(__always) func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, pointer, count)
}
@inline(__always) func systemRead(_ fd: Int32, _ pointer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, pointer, count)
}
