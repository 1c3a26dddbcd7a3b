import Synchronization
import Testing
@testable import ServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An idle keep-alive connection is parked (no task, no buffers) after a grace, and must then
/// behave exactly as one whose task is still waiting: served when the client sends again, closed
/// by its timers, and drained like any idle connection.
///
/// These tests wait with blocking sleeps rather than `Task.sleep`: other suites' blocking reads
/// can keep the cooperative pool busy for seconds, and a suspended test would miss the window
/// it means to observe. The server's loops run on their own threads either way.
@Suite struct ParkingTests {
    /// Polls until `condition` holds, for up to `seconds`; returns whether it did.
    func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            usleep(5_000)
        }
        return condition()
    }

    func sleep(until instant: ContinuousClock.Instant) {
        while ContinuousClock.now < instant { usleep(2_000) }
    }

    func waitForDraining(_ log: CapturedLog) -> Bool {
        eventually { log.lines.contains(where: { $0.contains("shutdown: listener closed; draining") }) }
    }

    @Test func anIdleConnectionParksAndIsServedWhenItSendsAgain() async throws {
        try await withServer { port, server in
            let client = try TestClient(port: port)
            for round in 0..<3 {
                try client.send(get("/path/\(round)?q=r"))
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.bodyText == "id=\(round) q=r")
                #expect(eventually { server.parksTotal.load(ordering: .relaxed) == round + 1 }, "round \(round)")
                #expect(server.connectionCount == 1)
            }
            #expect(server.parkedConnectionCount == 1)
            // Two pipelined requests wake it at once: both answered, in order.
            try client.send(get("/path/a") + get("/path/b"))
            #expect(try client.readResponse().bodyText == "id=a q=-")
            #expect(try client.readResponse().bodyText == "id=b q=-")
            // A request that arrives in pieces after the park is read whole.
            #expect(eventually { server.parksTotal.load(ordering: .relaxed) == 4 })
            try client.send("GET /path/c HT")
            usleep(30_000)
            try client.send("TP/1.1\r\nHost: test\r\n\r\n")
            #expect(try client.readResponse().bodyText == "id=c q=-")
        }
    }

    @Test func aParkedConnectionThatTheClientClosesIsForgotten() async throws {
        try await withServer { port, server in
            var client: TestClient? = try TestClient(port: port)
            try client?.send(get("/health"))
            _ = try client?.readResponse()
            #expect(eventually { server.parkedConnectionCount == 1 })
            client = nil  // closes the socket
            #expect(eventually { server.connectionCount == 0 })
            #expect(server.parkedConnectionCount == 0)
        }
    }

    @Test func aParkedConnectionIsClosedAtItsIdleTimeout() async throws {
        try await withServer(configure: { $0.idleTimeout = .seconds(2) }) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            _ = try client.readResponse()
            let answered = ContinuousClock.now
            #expect(eventually { server.parksTotal.load(ordering: .relaxed) == 1 })
            #expect(eventually { server.connectionCount == 0 })
            let closedAfter = ContinuousClock.now - answered
            #expect(closedAfter >= .milliseconds(1900), "\(closedAfter)")
            #expect(client.isClosedByServer())
            #expect(server.parkedConnectionCount == 0)
        }
    }

    @Test func aParkedNewConnectionKeepsTheHeaderTimerItGotAtAccept() async throws {
        try await withServer(configure: { $0.readHeaderTimeout = .seconds(3) }) { port, server in
            let connected = ContinuousClock.now
            let client = try TestClient(port: port)
            #expect(eventually { server.parkedConnectionCount == 1 })
            // Wake it with a partial request late in its timer: the timer is not restarted, so
            // the 408 comes about 3 s after the connect, not 3 s after these bytes.
            sleep(until: connected + .seconds(2))
            try client.send("GET /health HTTP/1.1\r\n")
            let sent = ContinuousClock.now
            let response = try client.readResponse()
            #expect(response.status == 408)
            let after = ContinuousClock.now - sent
            #expect(after < .milliseconds(2000), "the header timer restarted: 408 came \(after) after the bytes")
        }
    }

    @Test func theDrainGivesAParkedConnectionItsLingerForOneMoreRequest() async throws {
        let log = CapturedLog()
        try await withServer(log: log, configure: { $0.drainLinger = .seconds(4) }) { port, server in
            let talker = try TestClient(port: port)
            let silent = try TestClient(port: port)
            for client in [talker, silent] {
                try client.send(get("/health"))
                _ = try client.readResponse()
            }
            #expect(eventually { server.parkedConnectionCount == 2 })
            let started = ContinuousClock.now
            let drained = Task { await server.shutdown(drainTimeout: .seconds(20)) }
            #expect(waitForDraining(log))
            try talker.send(get("/health"))
            let response = try talker.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(talker.isClosedByServer())
            let result = await drained.value
            let took = ContinuousClock.now - started
            #expect(result.closedAtDeadline == 0)
            // The silent one was closed at the linger, not left to its idle timeout.
            #expect(took >= .milliseconds(3900), "\(took)")
            #expect(took < .seconds(18), "\(took)")
            #expect(silent.isClosedByServer())
        }
    }

    @Test func theDrainDeadlineClosesParkedConnections() async throws {
        try await withServer(configure: { $0.drainLinger = .seconds(30) }) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            _ = try client.readResponse()
            #expect(eventually { server.parkedConnectionCount == 1 })
            let result = await server.shutdown(drainTimeout: .milliseconds(300))
            #expect(result.closedAtDeadline == 1)
            #expect(result.cutRequests == 0)
            #expect(server.connectionCount == 0)
            #expect(server.parkedConnectionCount == 0)
            #expect(client.isClosedByServer())
        }
    }
}

@Suite struct EventLoopParkTests {
    /// A socket pair whose first end is non-blocking, closed by `body`'s end.
    func withPair(_ body: (Int32, Int32) async throws -> Void) async throws {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        try await body(fds[0], fds[1])
    }

    /// Parks `fd` on a fresh loop and returns what the handler was told, once.
    func parkAndWait(_ fd: Int32, deadline: UInt64, then act: @escaping @Sendable (EventLoop) -> Void) async throws
        -> [EventLoop.WaitResult]
    {
        let loop = try EventLoop(index: 0)
        defer { loop.stop() }
        let seen = Mutex<[EventLoop.WaitResult]>([])
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            loop.execute {
                loop.parkedHandler = { _, result in
                    let first = seen.withLock { $0.append(result); return $0.count == 1 }
                    if first { done.resume() }
                }
                do { try loop.register(fd) } catch { return }
                loop.park(fd, deadline: deadline)
                act(loop)
            }
        }
        // Anything further would arrive within a few loop iterations.
        try await Task.sleep(for: .milliseconds(150))
        return seen.withLock { $0 }
    }

    @Test func readabilityWakesAParkedDescriptorOnce() async throws {
        try await withPair { fd, peer in
            let seen = try await parkAndWait(fd, deadline: .max) { _ in
                var byte: UInt8 = 1
                _ = write(peer, &byte, 1)
            }
            #expect(seen == [.ready])
        }
    }

    @Test func theDeadlineEndsAPark() async throws {
        try await withPair { fd, _ in
            let started = EventLoop.now()
            let seen = try await parkAndWait(fd, deadline: EventLoop.now() + 100_000_000) { _ in }
            #expect(seen == [.timedOut])
            #expect(EventLoop.now() - started >= 100_000_000)
        }
    }

    @Test func cancellingWaitsEndsAPark() async throws {
        try await withPair { fd, _ in
            let seen = try await parkAndWait(fd, deadline: .max) { loop in loop.cancelWaits(fd) }
            #expect(seen == [.cancelled])
        }
    }
}
