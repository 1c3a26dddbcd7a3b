// The whole drill loop against in-process fake servers (a graceful drain loses nothing, a
// reset loses one request per connection), and the three ways of reaching a service process.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import Drill

private func options(connections: Int) -> DrillOptions {
    var options = DrillOptions(target: .process(port: 1, pid: 1))   // unused: the service is injected
    options.connections = connections
    options.path = "/health"
    options.signalAfter = .milliseconds(300)
    options.afterSignal = .seconds(3)
    options.requestTimeout = .seconds(2)
    options.exitTimeout = .seconds(3)
    return options
}

@Suite struct DrillRunTests {
    @Test func gracefulDrainLosesNothing() throws {
        let server = try FakeServer(mode: .graceful)
        defer { server.cleanUp() }
        let result = try runDrill(options(connections: 4), against: server)
        let summary = result.summary
        #expect(summary.lost == 0)
        #expect(summary.okBefore > 0)
        // Each connection got one Connection: close, reconnected, and was refused.
        #expect(summary.okClose == 4)
        #expect(summary.refused == 4)
        #expect(result.exitCode == 0)
        #expect(result.exit.code == 0)
        #expect(result.exitMilliseconds.map { $0 >= 0 && $0 < 3000 } == true)
        #expect(result.connectionsOpened == 4)
        #expect(Report.json(result).contains(#""lost":0"#))
        // The drill stopped on the refusals, long before --after-signal.
        #expect(result.records.map(\.finished).max().map { $0 < 1_000_000_000 } == true)
    }

    @Test func resetConnectionsAreLost() throws {
        let server = try FakeServer(mode: .abrupt)
        defer { server.cleanUp() }
        let result = try runDrill(options(connections: 4), against: server)
        let summary = result.summary
        // Every connection loses the request it had in flight (or was about to send), and its
        // reconnect is refused.
        #expect(summary.lost == 4)
        #expect(summary.unanswered + summary.truncated == 4)
        #expect(summary.refused == 4)
        #expect(result.exitCode == 1)
        let lost = result.records.filter { $0.outcome.isLost }
        // Lost around the signal (in flight at it, or sent just after), on kept-alive connections.
        #expect(lost.allSatisfy { $0.sent >= -100_000_000 && $0.request > 1 })
    }

    @Test func refusedBeforeTheSignalIsAnError() throws {
        // Nothing listens: every connect is refused before the signal, which is an error, not
        // the closed listener the refused class stands for.
        let listener = try Listener()
        let port = listener.port
        close(listener.fd)
        var options = options(connections: 2)
        options.signalAfter = .milliseconds(50)
        options.afterSignal = .milliseconds(100)
        let result = try runDrill(options, against: SilentService(port: port))
        #expect(result.summary.error > 0)
        #expect(result.summary.errorReasons.keys.contains("connection refused before SIGTERM"))
        #expect(result.exitCode == 1)
        // After the signal the same refusal is the closed listener: each worker stops on it.
        #expect(result.summary.refused == 2)
    }
}

/// A "service" whose signal reaches nothing and whose exit is never seen.
private final class SilentService: ServiceUnderTest {
    let port: Int
    init(port: Int) { self.port = port }
    func sendSignal() throws {}
    func startWatchingExit(until deadline: Int64) {}
    func waitForExit(until deadline: Int64) -> ServiceExit { .unknown }
    var logLines: [ServiceLogLine] { [] }
    func cleanUp() {}
}

/// A shell script that prints a startup line like the service's and then sleeps, so the drill's
/// process handling can be tested without the real service.
private func fakeServiceScript(port: Int) throws -> String {
    let path = "/tmp/drill-test-service-\(getpid())-\(port).sh"
    try writeFile(path, "#!/bin/sh\necho '{\"level\":\"info\",\"msg\":\"service started\",\"port\":\(port)}'\necho '{\"msg\":\"request\"}'\nexec sleep 30\n")
    chmod(path, 0o755)
    return path
}

@Suite struct ServiceTargetTests {
    @Test func childServiceReadsThePortAndReportsTheSignal() throws {
        let path = try fakeServiceScript(port: 41999)
        defer { unlink(path) }
        // Tests run in parallel: another test's spawn can briefly hold the just-written script
        // (between its clone and exec), and exec then fails with ETXTBSY. Retry past that.
        var started: ChildService?
        for _ in 0..<50 where started == nil {
            started = try? ChildService(path: path, arguments: ["--extra"], host: "127.0.0.1", startupTimeout: 5_000_000_000)
            if started == nil { sleep(nanoseconds: 10_000_000) }
        }
        let child = try #require(started)
        defer { child.cleanUp() }
        #expect(child.port == 41999)
        let signalAt = monotonicNanoseconds()
        try child.sendSignal()
        let exit = child.waitForExit(until: signalAt + 5_000_000_000)
        #expect(exit.code == 128 + SIGTERM)
        #expect(exit.note == "killed by signal \(SIGTERM)")
        #expect(exit.exitedAt.map { $0 >= signalAt } == true)
        // The access-log line is not kept; the startup line is.
        #expect(child.logLines.map(\.text).contains { $0.contains("service started") })
        #expect(!child.logLines.map(\.text).contains { $0.contains(#""msg":"request""#) })
    }

    @Test func childServiceThatExitsEarlyIsAnError() {
        #expect(throws: DrillError.self) {
            _ = try ChildService(path: "/bin/false", arguments: [], host: "127.0.0.1", startupTimeout: 5_000_000_000)
        }
    }

    @Test func localProcessExitIsSeenEvenAsAZombie() throws {
        // The test is the sleeper's parent and does not reap it, so after SIGTERM it is a zombie
        // that kill(pid, 0) still finds: the /proc check must see through that.
        let sleeper = try spawnProcess(path: "/bin/sleep", arguments: ["30"], captureStandardOutput: false)
        defer { _ = waitForChild(sleeper.pid) }
        let service = LocalProcessService(port: 1, pid: sleeper.pid)
        let signalAt = monotonicNanoseconds()
        try service.sendSignal()
        service.startWatchingExit(until: signalAt + 5_000_000_000)
        let exit = service.waitForExit(until: signalAt + 5_000_000_000)
        #expect(exit.code == nil)
        #expect(exit.exitedAt != nil)
    }

    @Test func commandsSignalAndWait() throws {
        let sleeper = try spawnProcess(path: "/bin/sleep", arguments: ["30"], captureStandardOutput: false)
        let service = CommandService(port: 1, signalCommand: "kill -TERM \(sleeper.pid)",
                                     waitCommand: "while [ \"$(cut -d' ' -f3 /proc/\(sleeper.pid)/stat)\" != Z ]; do sleep 0.01; done; echo exited; echo 143")
        defer {
            service.cleanUp()
            _ = waitForChild(sleeper.pid)
        }
        let signalAt = monotonicNanoseconds()
        try service.sendSignal()
        service.startWatchingExit(until: signalAt + 5_000_000_000)
        let exit = service.waitForExit(until: signalAt + 5_000_000_000)
        #expect(exit.code == 143)
        #expect(exit.exitedAt != nil)
    }

    @Test func aFailingSignalCommandStopsTheDrill() {
        let service = CommandService(port: 1, signalCommand: "exit 3", waitCommand: nil)
        #expect(throws: DrillError.self) { try service.sendSignal() }
    }
}
