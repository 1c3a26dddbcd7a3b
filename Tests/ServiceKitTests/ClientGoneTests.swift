import Foundation
import Synchronization
import Testing
@testable import ServiceKit

/// A client that closes or resets its connection while its handler runs: the handler's task
/// is cancelled, the slot is freed at once, and the request is logged and counted as 499, not
/// as a server error.
@Suite struct ClientGoneTests {
    /// What the `/wait` handler saw: how many started, and when each was cancelled.
    final class Observed: Sendable {
        let started = Atomic<Int>(0)
        let cancelled = Mutex<[ContinuousClock.Instant]>([])
    }

    /// `/wait` sleeps up to 60 s and records its cancellation; `/stubborn` ignores cancellation
    /// and answers after 200 ms.
    func router(_ observed: Observed) -> Router {
        var router = testRouter()
        router.get("/wait") { _ in
            observed.started.add(1, ordering: .relaxed)
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                observed.cancelled.withLock { $0.append(.now) }
                throw error
            }
            return .text("waited")
        }
        router.get("/stubborn") { _ in
            let until = ContinuousClock.now + .milliseconds(200)
            while ContinuousClock.now < until { await Task.yield() }
            return .text("done anyway, cancelled: \(Task.isCancelled)")
        }
        return router
    }


    @Test func aClientThatClosesCancelsItsHandlerAtOnceAndIsLoggedAs499() async throws {
        let observed = Observed()
        let log = CapturedLog()
        let metrics = TestMetrics()
        try await withServer(router: router(observed), log: log, metrics: metrics) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/wait", "X-Request-ID: gone-1\r\n"))
            try await waitUntil { observed.started.load(ordering: .relaxed) == 1 }
            let closed = ContinuousClock.now
            shutdown(client.fd, Int32(SHUT_RDWR))
            try await waitUntil { !observed.cancelled.withLock { $0.isEmpty } }
            let cancelledAt = try #require(observed.cancelled.withLock { $0.first })
            // Within a loop iteration of the FIN, not at a timeout: a generous bound for a busy machine.
            #expect(cancelledAt - closed < .seconds(5))
            try await waitUntil { server.connectionCount == 0 }
            #expect(server.connectionCount == 0)

            let lines = log.lines
            let access = try #require(lines.first { $0.contains(#""request_id":"gone-1""#) })
            #expect(access.contains(#""status":499"#))
            #expect(access.contains(#""path":"/wait""#))
            #expect(!lines.contains { $0.contains("handler failed") }, "a client leaving is not a server error")
            await server.collectMetrics()
            #expect(metrics.value(ServerMetrics.Name.requests, ["method": "GET", "route": "/wait", "status_class": "4xx"]) == 1)
            #expect(metrics.value(ServerMetrics.Name.requests, ["method": "GET", "route": "/wait", "status_class": "5xx"]) == nil)
        }
    }

    /// The reproduction from the outside attack: fire-and-forget slow requests must not hold
    /// every slot of a small connection cap, fail the probes, or make the drain incomplete.
    @Test func fireAndForgetRequestsDoNotHoldTheConnectionSlots() async throws {
        let observed = Observed()
        let log = CapturedLog()
        try await withServer(router: router(observed), log: log, configure: { $0.maxConnections = 20 }) { port, server in
            for _ in 0..<20 {
                // Connected, sent, closed as the client goes out of scope.
                try TestClient(port: port).send(get("/wait"))
            }
            // Each handler starts (already cancelled if the FIN came with its request) and stops.
            try await waitUntil {
                observed.started.load(ordering: .relaxed) == 20 && observed.cancelled.withLock { $0.count } == 20
                    && server.connectionCount == 0
            }
            #expect(observed.cancelled.withLock { $0.count } == 20)
            #expect(server.connectionCount == 0)
            let probe = try TestClient(port: port)
            try probe.send(get("/health"))
            #expect(try probe.readResponse().status == 200)
            shutdown(probe.fd, Int32(SHUT_RDWR))
            let result = await server.shutdown(drainTimeout: .seconds(2))
            #expect(result == DrainResult(closedAtDeadline: 0, cutRequests: 0, forced: false))
            #expect(!log.lines.contains { $0.contains("handler failed") || $0.contains("request cut") })
        }
    }

    /// A client that half-closes after its request is, on TCP, indistinguishable from one that
    /// closed: its handler is cancelled too (Go and nginx do the same). One that ignores the
    /// cancellation still has its response written, and the half-closed client reads it.
    @Test func aHalfClosedClientCancelsTheHandlerButAStubbornHandlerIsStillAnswered() async throws {
        let observed = Observed()
        let log = CapturedLog()
        try await withServer(router: router(observed), log: log) { port, _ in
            let waiting = try TestClient(port: port)
            try waiting.send(get("/wait"))
            waiting.shutdownWrite()
            try await waitUntil { !observed.cancelled.withLock { $0.isEmpty } }
            #expect(observed.cancelled.withLock { $0.count } == 1)
            #expect(try waiting.readUntilClose().isEmpty, "a cancelled handler writes nothing")

            let stubborn = try TestClient(port: port)
            try stubborn.send(get("/stubborn"))
            stubborn.shutdownWrite()
            let response = try stubborn.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == "done anyway, cancelled: true")
            #expect(response.header("Connection") == "close")
        }
    }

    /// A request pipelined behind the running one means the client is still there: its FIN
    /// ends the connection only after both are answered.
    @Test func aPipelinedRequestKeepsTheFirstHandlerRunning() async throws {
        let observed = Observed()
        try await withServer(router: router(observed)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/slow?ms=100") + get("/health", "Connection: close\r\n"))
            client.shutdownWrite()
            let first = try client.readResponse()
            #expect(first.status == 200)
            #expect(first.bodyText == "slept 100")
        }
    }
}
