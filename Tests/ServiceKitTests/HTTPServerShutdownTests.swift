import Foundation
import Testing
@testable import ServiceKit

/// The drain, in process: each step of ``HTTPServer/shutdown(shutdownDelay:drainTimeout:)``.
@Suite struct HTTPServerShutdownTests {
    /// Waits (without blocking a thread) until the drain has marked every loop draining.
    func waitForDraining(_ log: CapturedLog) async throws {
        for _ in 0..<1000 where !log.lines.contains(where: { $0.contains("shutdown: listener closed; draining") }) {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func aRequestInFlightFinishesWithConnectionClose() async throws {
        let gate = Gate()
        let log = CapturedLog()
        try await withServer(router: testRouter(gate: gate), log: log) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/gate"))
            try await gate.waitForArrivals(1)
            let drained = Task { await server.shutdown(drainTimeout: .seconds(5)) }
            try await waitForDraining(log)
            gate.open()
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == "through the gate")
            #expect(response.header("Connection") == "close")
            #expect(client.isClosedByServer())
            let result = await drained.value
            #expect(result == DrainResult(closedAtDeadline: 0, cutRequests: 0, forced: false))
            #expect(server.connectionCount == 0)
        }
    }

    @Test func anIdleKeepAliveConnectionGetsItsNextRequestAnsweredWithClose() async throws {
        let log = CapturedLog()
        try await withServer(log: log, configure: { $0.drainLinger = .seconds(5) }) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            #expect(try client.readResponse().header("Connection") == nil)
            let drained = Task { await server.shutdown(drainTimeout: .seconds(10)) }
            try await waitForDraining(log)
            #expect(throws: TestClient.Failure.self) { _ = try TestClient(port: port) }
            // The client was about to send its next request when the drain began: it is
            // answered, not cut off.
            try client.send(get("/path/next"))
            let response = try client.readResponse()
            #expect(response.bodyText == "id=next q=-")
            #expect(response.header("Connection") == "close")
            #expect(client.isClosedByServer())
            #expect(await drained.value.closedAtDeadline == 0)
        }
    }

    @Test func aSilentIdleConnectionIsClosedAfterTheLinger() async throws {
        try await withServer(configure: { $0.drainLinger = .milliseconds(300) }) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            _ = try client.readResponse()
            let started = ContinuousClock.now
            let result = await server.shutdown(drainTimeout: .seconds(10))
            let took = ContinuousClock.now - started
            #expect(result.closedAtDeadline == 0)
            #expect(took >= .milliseconds(250), "\(took)")
            // Loose: other tests' blocking reads can starve the cooperative pool the drain polls
            // on. Without the linger the connection would wait out its 120 s idle timeout.
            #expect(took < .seconds(30), "\(took)")
            #expect(client.isClosedByServer())
        }
    }

    @Test func aZeroLingerDoesNotWaitForIdleConnections() async throws {
        try await withServer(configure: { $0.drainLinger = .zero; $0.idleTimeout = .seconds(60) }) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            _ = try client.readResponse()
            let started = ContinuousClock.now
            let result = await server.shutdown(drainTimeout: .seconds(30))
            // Were a zero linger taken as "no linger", the idle connection would be left to its
            // 60 s idle timeout and the drain would run to its 30 s deadline. (The bound is loose:
            // other tests blocking the cooperative pool slow the drain's own polling.)
            #expect(ContinuousClock.now - started < .seconds(25))
            #expect(result.closedAtDeadline == 0)
            #expect(client.isClosedByServer())
        }
    }

    @Test func thePreDrainDelayKeepsServingWhileReadinessSaysDraining() async throws {
        try await withServer(configure: { $0.shutdownDelay = .milliseconds(600) }) { port, server in
            #expect(server.readiness.isReady)
            let drained = Task { await server.shutdown(drainTimeout: .seconds(5)) }
            for _ in 0..<500 where server.readiness.isReady { try await Task.sleep(for: .milliseconds(2)) }
            #expect(!server.readiness.isReady)
            #expect(server.readiness.isDraining)
            // New connections are still accepted and served, with keep-alive, during the delay.
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Connection") == nil)
            await drained.value
            #expect(throws: TestClient.Failure.self) { _ = try TestClient(port: port) }
        }
    }

    @Test func theDeadlineCutsStuckRequestsAndLogsThem() async throws {
        let gate = Gate()  // never opened: the handler is stuck
        Abandoned.keep(gate)  // and so is its task, after the drain gave up on it
        let log = CapturedLog()
        try await withServer(router: testRouter(gate: gate), log: log) { port, server in
            let stuck = try TestClient(port: port)
            try stuck.send(get("/gate", "X-Request-ID: stuck-1\r\n"))
            try await gate.waitForArrivals(1)
            let started = ContinuousClock.now
            let result = await server.shutdown(drainTimeout: .milliseconds(300))
            let took = ContinuousClock.now - started
            #expect(result == DrainResult(closedAtDeadline: 1, cutRequests: 1, forced: false))
            #expect(took >= .milliseconds(250), "\(took)")
            // The gate ignores cancellation, so the server waits its one second for the task
            // before giving up on it: deadline plus a second, plus slack for other tests that
            // block the cooperative pool. ShutdownTests checks the bound on the real process.
            #expect(took < .seconds(15), "the deadline ends the drain: \(took)")
            // The client sees the connection reset, not a response.
            #expect((try? stuck.readResponse()) == nil)
        }
        let cut = log.lines.filter { $0.contains(#""msg":"shutdown: request cut""#) }
        #expect(cut.count == 1)
        #expect(cut.first?.contains(#""request_id":"stuck-1""#) == true)
        #expect(cut.first?.contains(#""path":"/gate""#) == true)
        #expect(cut.first?.contains(#""method":"GET""#) == true)
    }

    @Test func forceShutdownCutsTheDrainShort() async throws {
        let gate = Gate()  // never opened: the handler is stuck
        Abandoned.keep(gate)  // and so is its task, after the drain gave up on it
        try await withServer(router: testRouter(gate: gate)) { port, server in
            let stuck = try TestClient(port: port)
            try stuck.send(get("/gate"))
            try await gate.waitForArrivals(1)
            let started = ContinuousClock.now
            let drained = Task { await server.shutdown(shutdownDelay: .seconds(30), drainTimeout: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(100))
            server.forceShutdown()
            let result = await drained.value
            #expect(result == DrainResult(closedAtDeadline: 1, cutRequests: 1, forced: true))
            // Without the force the drain would take its 30 s delay and 30 s deadline; the gate
            // ignores cancellation, so the server also waits its one second for that task.
            #expect(ContinuousClock.now - started < .seconds(15))
        }
    }

    @Test func everyStepIsLoggedWithCounts() async throws {
        let log = CapturedLog()
        try await withServer(log: log, configure: { $0.shutdownDelay = .milliseconds(50) }) { port, server in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            _ = try client.readResponse()
            await server.shutdown(drainTimeout: .seconds(5))
        }
        let messages = log.lines.compactMap { line -> String? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["logger"] as? String == "server" else { return nil }
            return object["msg"] as? String
        }
        #expect(messages == [
            "shutdown: started; readiness answers 503",
            "shutdown: pre-drain delay over",
            "shutdown: listener closed; draining",
            "shutdown: drained",
            "shutdown: done",
        ])
        let listenerClosed = try #require(log.lines.first { $0.contains("listener closed") })
        #expect(listenerClosed.contains(#""idle_connections":1"#))
        #expect(listenerClosed.contains(#""active_connections":0"#))
    }
}
