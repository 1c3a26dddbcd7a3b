import Synchronization
import Testing
@testable import ServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

private func sleep(until instant: ContinuousClock.Instant) {
    while ContinuousClock.now < instant { usleep(2_000) }
}

private func parks(_ server: HTTPServer) -> Int { server.parksTotal.load(ordering: .relaxed) }

/// An idle keep-alive connection is parked (no task, no buffers) after a grace, and must then
/// behave exactly as one whose task is still waiting: served when the client sends again, closed
/// by its timers, and drained like any idle connection.
///
/// The client side of each test runs on a thread of its own (``onOwnThread(_:)``) and polls
/// with blocking sleeps: it must not miss the windows it observes (a parked connection, a
/// drain's linger) when other suites keep the cooperative pool busy, and it must not starve
/// those suites either. A failed check throws ``Check`` with what was expected.
@Suite struct ParkingTests {
    @Test func anIdleConnectionParksAndIsServedWhenItSendsAgain() async throws {
        try await withServer { port, server in
            try await onOwnThread {
                let client = try TestClient(port: port)
                for round in 0..<3 {
                    try client.send(get("/path/\(round)?q=r"))
                    let response = try client.readResponse()
                    try check(response.status == 200 && response.bodyText == "id=\(round) q=r", "round \(round): \(response.bodyText)")
                    try check(eventually { parks(server) == round + 1 }, "round \(round): parked \(parks(server)) times")
                    try check(server.connectionCount == 1, "round \(round): \(server.connectionCount) connections")
                }
                try check(server.parkedConnectionCount == 1, "\(server.parkedConnectionCount) parked")
                // Two pipelined requests wake it at once: both answered, in order.
                try client.send(get("/path/a") + get("/path/b"))
                let first = try client.readResponse().bodyText, second = try client.readResponse().bodyText
                try check(first == "id=a q=-" && second == "id=b q=-", "pipelined: \(first), \(second)")
                // A request that arrives in pieces after the park is read whole.
                try check(eventually { parks(server) == 4 }, "parked \(parks(server)) times, not 4")
                try client.send("GET /path/c HT")
                usleep(30_000)
                try client.send("TP/1.1\r\nHost: test\r\n\r\n")
                let pieces = try client.readResponse().bodyText
                try check(pieces == "id=c q=-", "in pieces: \(pieces)")
            }
        }
    }

    @Test func aBusyLoopParksIdleConnectionsAtOnce() async throws {
        // Requests 10 ms apart: far inside the grace (50 ms or more), so only parking at once
        // parks between them. The same client against the default threshold is the control.
        for eager in [true, false] {
            try await withServer(configure: { $0.eventLoops = 1 }) { port, server in
                if eager { server.eagerParkAbove.store(0, ordering: .relaxed) }
                try await onOwnThread {
                    let client = try TestClient(port: port)
                    for round in 0..<5 {
                        try client.send(get("/path/\(round)"))
                        let text = try client.readResponse().bodyText
                        try check(text == "id=\(round) q=-", "round \(round): \(text)")
                        usleep(10_000)
                    }
                    let parks = parks(server)
                    if eager {
                        // One park per idle moment after a response, and a sixth when the new
                        // connection's task first ran before the client's first request arrived
                        // (it is idle then too; seen once in CI).
                        try check(parks == 5 || parks == 6, "eager: parked \(parks) times in 5 idle moments")
                    } else {
                        // 0 normally; a test thread held up past the grace could add one or two.
                        try check(parks < 5, "grace: parked \(parks) times within 10 ms gaps")
                    }
                }
            }
        }
    }

    @Test func aParkedConnectionThatTheClientClosesIsForgotten() async throws {
        try await withServer { port, server in
            try await onOwnThread {
                var client: TestClient? = try TestClient(port: port)
                try client?.send(get("/health"))
                _ = try client?.readResponse()
                try check(eventually { server.parkedConnectionCount == 1 }, "never parked")
                client = nil  // closes the socket
                try check(eventually { server.connectionCount == 0 }, "\(server.connectionCount) connections left")
                try check(server.parkedConnectionCount == 0, "\(server.parkedConnectionCount) still parked")
            }
        }
    }

    @Test func aParkedConnectionIsClosedAtItsIdleTimeout() async throws {
        try await withServer(configure: { $0.idleTimeout = .seconds(2) }) { port, server in
            try await onOwnThread {
                let client = try TestClient(port: port)
                try client.send(get("/health"))
                _ = try client.readResponse()
                let answered = ContinuousClock.now
                try check(eventually { parks(server) == 1 }, "never parked")
                try check(eventually { server.connectionCount == 0 }, "not closed")
                let closedAfter = ContinuousClock.now - answered
                try check(closedAfter >= .milliseconds(1900), "closed after \(closedAfter), before its idle timeout")
                try check(client.isClosedByServer(), "the client did not see the close")
                try check(server.parkedConnectionCount == 0, "\(server.parkedConnectionCount) still parked")
            }
        }
    }

    @Test func aParkedNewConnectionKeepsTheHeaderTimerItGotAtAccept() async throws {
        try await withServer(configure: { $0.readHeaderTimeout = .seconds(3) }) { port, server in
            try await onOwnThread {
                let connected = ContinuousClock.now
                let client = try TestClient(port: port)
                try check(eventually { server.parkedConnectionCount == 1 }, "never parked")
                // Wake it with a partial request late in its timer: the timer is not restarted,
                // so the 408 comes about 3 s after the connect, not 3 s after these bytes.
                sleep(until: connected + .seconds(2))
                try client.send("GET /health HTTP/1.1\r\n")
                let sent = ContinuousClock.now
                let response = try client.readResponse()
                try check(response.status == 408, "status \(response.status)")
                let after = ContinuousClock.now - sent
                try check(after < .milliseconds(2000), "the header timer restarted: 408 came \(after) after the bytes")
            }
        }
    }

    @Test func theDrainGivesAParkedConnectionItsLingerForOneMoreRequest() async throws {
        let log = CapturedLog()
        try await withServer(log: log, configure: { $0.drainLinger = .seconds(4) }) { port, server in
            let clients = try await onOwnThread { () -> [TestClientBox] in
                let clients = [TestClientBox(try TestClient(port: port)), TestClientBox(try TestClient(port: port))]
                for box in clients {
                    try box.client.send(get("/health"))
                    _ = try box.client.readResponse()
                }
                try check(eventually { server.parkedConnectionCount == 2 }, "\(server.parkedConnectionCount) parked, not 2")
                return clients
            }
            let (talker, silent) = (clients[0], clients[1])
            let started = ContinuousClock.now
            let drained = Task { await server.shutdown(drainTimeout: .seconds(20)) }
            try await onOwnThread {
                try check(eventually { log.lines.contains(where: { $0.contains("shutdown: listener closed; draining") }) },
                          "the drain did not begin")
                try talker.client.send(get("/health"))
                let response = try talker.client.readResponse()
                try check(response.status == 200 && response.header("Connection") == "close",
                          "\(response.status), Connection: \(response.header("Connection") ?? "-")")
                try check(talker.client.isClosedByServer(), "the talker was not closed after its answer")
            }
            let result = await drained.value
            let took = ContinuousClock.now - started
            #expect(result.closedAtDeadline == 0)
            // The silent one was closed at the linger, not left to its idle timeout.
            #expect(took >= .milliseconds(3900), "\(took)")
            #expect(took < .seconds(18), "\(took)")
            #expect(try await onOwnThread { silent.client.isClosedByServer() })
        }
    }

    @Test func theDrainDeadlineClosesParkedConnections() async throws {
        try await withServer(configure: { $0.drainLinger = .seconds(30) }) { port, server in
            let client = try await onOwnThread { () -> TestClientBox in
                let client = try TestClient(port: port)
                try client.send(get("/health"))
                _ = try client.readResponse()
                try check(eventually { server.parkedConnectionCount == 1 }, "never parked")
                return TestClientBox(client)
            }
            let result = await server.shutdown(drainTimeout: .milliseconds(300))
            #expect(result.closedAtDeadline == 1)
            #expect(result.cutRequests == 0)
            #expect(server.connectionCount == 0)
            #expect(server.parkedConnectionCount == 0)
            #expect(try await onOwnThread { client.client.isClosedByServer() })
        }
    }
}

/// Hands a blocking client between the test and its own threads; used by one thread at a time.
final class TestClientBox: @unchecked Sendable {
    let client: TestClient
    init(_ client: TestClient) { self.client = client }
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
