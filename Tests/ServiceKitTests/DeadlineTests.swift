import Foundation
import Synchronization
import Testing
@testable import ServiceKit

/// Deadline: past it the handler is cancelled and the client gets a 503 at once, even from a
/// handler that ignores cancellation; within it, the handler's answer is untouched.
@Suite struct DeadlineTests {
    /// What the handlers saw.
    final class Observed: Sendable {
        let started = Atomic<Int>(0)
        let cancelled = Atomic<Int>(0)
        /// Set by `/stubborn` when it finally returns: whether its task was cancelled by then.
        let stubbornSawCancel = Mutex<Bool?>(nil)
        /// Set by a test once its request was answered.
        let answered = Atomic<Bool>(false)
    }

    /// `/sleep` sleeps a minute on its loop; `/stubborn` waits for `gate`, which ignores
    /// cancellation; `/fast`, `/teapot` and `/fail` answer at once.
    func router(_ observed: Observed, gate: Gate = Gate(), timeout: Duration = .milliseconds(100)) -> Router {
        var router = Router()
        router.group("/d", middleware: [Deadline(timeout)]) { group in
            group.get("/sleep") { _ in
                observed.started.add(1, ordering: .relaxed)
                do {
                    try await EventLoop.sleep(for: .seconds(60))
                } catch {
                    observed.cancelled.add(1, ordering: .relaxed)
                    throw error
                }
                return .text("woke")
            }
            group.get("/stubborn") { _ in
                observed.started.add(1, ordering: .relaxed)
                await gate.wait()
                observed.stubbornSawCancel.withLock { $0 = Task.isCancelled }
                return .text("late")
            }
            group.get("/fast") { _ in Response(status: 201, headers: ["X-Fast": "yes"], body: Array("quick".utf8)) }
            group.get("/teapot") { _ in throw HTTPError(status: 418, reason: "short and stout", headers: ["X-Tea": "1"]) }
            group.get("/fail") { _ in throw TestFailure() }
        }
        return router
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<600 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }

    /// `router`'s answer to `request` and how long it took, dispatched on an event loop of its
    /// own as the server dispatches: the deadline's timer is the loop's, not the cooperative
    /// pool's, which other suites' blocking clients can hold up for seconds.
    func respondOnLoop(_ router: Router, _ request: Request) async throws -> (Response, Duration) {
        let loop = try EventLoop(index: 0)
        defer { loop.stop() }
        return await Task(executorPreference: loop) {
            let started = ContinuousClock.now
            let response = await router.respond(to: request)
            return (response, ContinuousClock.now - started)
        }.value
    }

    @Test func aHandlerPastTheDeadlineIsCancelledAndAnswered503() async throws {
        let observed = Observed()
        let (response, elapsed) = try await respondOnLoop(router(observed), Request("GET", "/d/sleep", id: "late-1"))
        #expect(response.status == 503)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"request deadline passed","status":503}"#)
        #expect(response.headers["Content-Type"] == "application/json")
        #expect(response.headers["X-Request-ID"] == "late-1")
        #expect(elapsed >= .milliseconds(100), "not before the deadline")
        #expect(elapsed < .seconds(3))
        try await waitUntil { observed.cancelled.load(ordering: .relaxed) == 1 }
        #expect(observed.cancelled.load(ordering: .relaxed) == 1, "the handler's task saw the cancellation")
    }

    /// A handler that ignores its cancellation is waited for (the contract ``Deadline``
    /// documents), and still answered with the 503 once it returns.
    @Test func aHandlerThatIgnoresCancellationGets503WhenItReturns() async throws {
        let observed = Observed()
        let gate = Gate()
        let router = router(observed, gate: gate)
        let answer = Task {
            defer { observed.answered.store(true, ordering: .relaxed) }
            return await router.respond(to: Request("GET", "/d/stubborn"))
        }
        try await gate.waitForArrivals(1)
        try await Task.sleep(for: .milliseconds(400))
        let answeredEarly = observed.answered.load(ordering: .relaxed)
        #expect(!answeredEarly, "the handler still runs")
        gate.open()
        let response = await answer.value
        #expect(response.status == 503, "its own answer came after the deadline")
        #expect(response.body == Array(#"{"error":"request deadline passed","status":503}"#.utf8))
        #expect(observed.stubbornSawCancel.withLock { $0 } == true, "its task was cancelled at the deadline")
    }

    @Test func aHandlerWithinTheDeadlineIsUntouched() async throws {
        let router = router(Observed())
        let fast = await router.respond(to: Request("GET", "/d/fast"))
        #expect(fast.status == 201)
        #expect(fast.headers["X-Fast"] == "yes")
        #expect(fast.body == Array("quick".utf8))

        let teapot = await router.respond(to: Request("GET", "/d/teapot"))
        #expect(teapot.status == 418)
        #expect(teapot.headers["X-Tea"] == "1")
        #expect(String(decoding: teapot.body, as: UTF8.self) == #"{"error":"short and stout","status":418}"#)

        let failed = await router.respond(to: Request("GET", "/d/fail"))
        #expect(failed.status == 500)
    }

    @Test func aZeroTimeoutMeansNoDeadline() async throws {
        let gate = Gate()
        let observed = Observed()
        let router = router(observed, gate: gate, timeout: .zero)
        let answer = Task { await router.respond(to: Request("GET", "/d/stubborn")) }
        try await gate.waitForArrivals(1)
        // Well past any timer tick, the request is still running.
        try await Task.sleep(for: .milliseconds(300))
        #expect(observed.stubbornSawCancel.withLock { $0 } == nil)
        gate.open()
        let response = await answer.value
        #expect(response.status == 200)
        #expect(response.body == Array("late".utf8))
        #expect(observed.stubbornSawCancel.withLock { $0 } == false)
    }

    @Test func cancellingTheRequestCancelsTheHandler() async throws {
        let observed = Observed()
        let router = router(observed, timeout: .seconds(60))
        let answer = Task { await router.respond(to: Request("GET", "/d/sleep")) }
        try await waitUntil { observed.started.load(ordering: .relaxed) == 1 }
        answer.cancel()
        try await waitUntil { observed.cancelled.load(ordering: .relaxed) == 1 }
        #expect(observed.cancelled.load(ordering: .relaxed) == 1)
        // The handler's CancellationError comes back through the dispatch, well before 60 s.
        #expect(await answer.value.status == 500)
    }

    /// Through a real server: the 503 arrives on the wire, the connection stays usable, and
    /// the one log line carries the request ID.
    @Test func endToEndThe503ArrivesAndIsLoggedWithTheRequestID() async throws {
        let observed = Observed()
        let log = CapturedLog()
        try await withServer(router: router(observed), log: log) { port, _ in
            let client = try TestClient(port: port)
            let started = ContinuousClock.now
            try client.send(get("/d/sleep", "X-Request-ID: deadline-e2e\r\n"))
            let response = try client.readResponse()
            #expect(ContinuousClock.now - started < .seconds(3))
            #expect(response.status == 503)
            #expect(response.bodyText == #"{"error":"request deadline passed","status":503}"#)
            #expect(response.header("X-Request-ID") == "deadline-e2e")
            try await waitUntil { observed.cancelled.load(ordering: .relaxed) == 1 }
            #expect(observed.cancelled.load(ordering: .relaxed) == 1)

            try client.send(get("/d/fast"))
            #expect(try client.readResponse().status == 201, "the connection serves on")

            let warnings = log.lines.filter { $0.contains(#""msg":"request deadline passed""#) }
            #expect(warnings.count == 1)
            let line = try #require(warnings.first)
            #expect(line.contains(#""request_id":"deadline-e2e""#))
            #expect(line.contains(#""deadline":"100ms""#))
            #expect(line.contains(#""route":"/d/sleep""#))
            #expect(line.contains(#""level":"warning""#))
        }
    }
}
