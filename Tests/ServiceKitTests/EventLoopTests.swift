import Testing
@testable import ServiceKit

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
}
