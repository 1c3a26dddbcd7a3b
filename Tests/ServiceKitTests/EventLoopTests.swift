import Synchronization
import Testing
@testable import ServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite struct EventLoopTests {
    @Test func runsClosuresAndJobsOnItsOwnThread() async throws {
        let loop = try EventLoop(index: 0)
        defer { loop.stop() }
        let onLoop = await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: loop.inLoop) }
        }
        #expect(onLoop)
        let inTask = await Task(executorPreference: loop) { loop.inLoop }.value
        #expect(inTask)
    }

    @Test func aLoopSleepEndsAtItsDeadlineOrAtOnceWhenCancelledLeavingNothingBehind() async throws {
        let loop = try EventLoop(index: 0)
        defer { loop.stop() }
        let sleepers = {
            await withCheckedContinuation { continuation in loop.execute { continuation.resume(returning: loop.sleepers.count) } }
        }

        let short = ContinuousClock.now
        try await Task(executorPreference: loop) { try await EventLoop.sleep(for: .milliseconds(100)) }.value
        #expect(ContinuousClock.now - short >= .milliseconds(100))

        let long = Task(executorPreference: loop) { () async -> Bool in
            do {
                try await EventLoop.sleep(for: .seconds(60))
                return false
            } catch {
                return error is CancellationError
            }
        }
        for _ in 0..<500 where await sleepers() == 0 { try await Task.sleep(for: .milliseconds(2)) }
        #expect(await sleepers() == 1)
        let cancelled = ContinuousClock.now
        long.cancel()
        #expect(await long.value, "the sleep did not throw CancellationError")
        // Long before the 60 s deadline (loose: this test's own wake-ups run on the cooperative
        // pool, which other tests' blocking clients can hold for seconds).
        #expect(ContinuousClock.now - cancelled < .seconds(30))
        #expect(await sleepers() == 0, "the cancelled sleeper stayed with the loop")

        // Already cancelled before it sleeps: throws without waiting.
        let early = Task(executorPreference: loop) { () async -> Bool in
            withUnsafeCurrentTask { $0?.cancel() }
            return (try? await EventLoop.sleep(for: .seconds(60))) == nil
        }
        #expect(await early.value)
        #expect(await sleepers() == 0)
    }

    @Test func aStoppedLoopWritesNothingToItsOldDescriptorNumbers() async throws {
        let loop = try EventLoop(index: 0)
        let wakeFD = loop.wakeFD
        loop.stop()
        for _ in 0..<500 where !loop.isStopped { try await Task.sleep(for: .milliseconds(2)) }
        #expect(loop.isStopped)
        // The eventfd's number is free again; the next pipe may well get it.
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        loop.execute {}
        Abandoned.keep(Task(executorPreference: loop) { 1 })  // enqueued and dropped, never run
        var byte: UInt8 = 0
        let reused = fds.contains(wakeFD)
        let read = read(fds[0], &byte, 1)
        #expect(read < 0, "a stopped loop wrote to descriptor \(wakeFD) (reused by the pipe: \(reused))")
    }

    @Test func everyClosureExecuteTakesRunsOnceAndAStoppedLoopTakesNone() async throws {
        let loop = try EventLoop(index: 0)
        let counts = Mutex((taken: 0, ran: 0))
        // A chain of closures, each queueing the next, started just as the loop stops: the
        // links queued during the loop's last drain of its queue are still taken, and must
        // still run (a scrape waiting on one would otherwise wait forever).
        @Sendable func link(_ remaining: Int) {
            counts.withLock { $0.ran += 1 }
            guard remaining > 0 else { return }
            if loop.execute({ link(remaining - 1) }) { counts.withLock { $0.taken += 1 } }
        }
        loop.execute {
            loop.stop()
            link(10)
        }
        for _ in 0..<500 where !loop.isStopped { try await Task.sleep(for: .milliseconds(2)) }
        #expect(loop.isStopped)
        let (taken, ran) = counts.withLock { $0 }
        #expect(ran == taken + 1, "every closure taken ran once")
        #expect(taken < 10, "the stopped loop refused the rest of the chain")
        #expect(!loop.execute { counts.withLock { $0.ran += 100 } })
        #expect(counts.withLock { $0.ran } == ran)
    }
}

@Suite struct DeadlineArithmeticTests {
    /// What `Duration.components` says, the way deadlines were computed before.
    static func reference(_ duration: Duration) -> UInt64? {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (sum, overflow2) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflow2 ? nil : sum
    }

    @Test("nanoseconds(_:) agrees with Duration.components, sub-nanoseconds dropped, nil past UInt64.max")
    func nanosecondsMatchComponents() {
        let cases: [Duration] = [
            .zero, .nanoseconds(1), .nanoseconds(999), .milliseconds(50), .seconds(10), .seconds(120),
            .seconds(3600) + .nanoseconds(7), .seconds(18_446_744_073) + .nanoseconds(709_551_615),
            .seconds(18_446_744_073) + .nanoseconds(709_551_616), .seconds(Int64.max), .seconds(-1),
            Duration(secondsComponent: 0, attosecondsComponent: 500_000_000),
            Duration(secondsComponent: 5, attosecondsComponent: 123_456_789_987_654_321),
        ]
        for duration in cases {
            #expect(EventLoop.nanoseconds(duration) == Self.reference(duration), "\(duration)")
        }
        #expect(EventLoop.nanoseconds(.seconds(18_446_744_073) + .nanoseconds(709_551_615)) == .max)
    }

    @Test("a deadline is now plus the duration; none for zero or less; none past the clock's range")
    func deadlines() {
        let before = EventLoop.now()
        let deadline = EventLoop.deadline(after: .seconds(10))
        #expect(deadline >= before + 10_000_000_000 && deadline < EventLoop.now() + 10_000_000_000 + 1)
        #expect(EventLoop.deadline(after: .zero) == .max)
        #expect(EventLoop.deadline(after: .seconds(-3)) == .max)
        #expect(EventLoop.deadline(after: .seconds(Int64.max)) == .max)
        #expect(EventLoop.deadline(after: .zero, orNow: true) <= EventLoop.now())
    }
}
