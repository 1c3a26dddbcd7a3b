import Foundation
import Testing
import TestSupport
import ServiceKit

/// SIGTERM, the drain and the self-probe, against the real binary.
@Suite(.serialized) struct ShutdownTests {
    /// A keep-alive connection that has been served once, so the server has certainly
    /// accepted it before the test signals.
    func servedConnection(_ port: Int) throws -> TestClient {
        let client = try TestClient(port: port, timeout: 10)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        guard try client.readResponse().status == 200 else { throw TestClient.Failure(description: "not served") }
        return client
    }

    func get(_ path: String, id: String? = nil) -> String {
        "GET \(path) HTTP/1.1\r\nHost: t\r\n" + (id.map { "X-Request-ID: \($0)\r\n" } ?? "") + "\r\n"
    }

    @Test func requestsInFlightCompleteWithConnectionCloseAndTheExitIs0() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0"])
        let port = try service.waitForPort()
        let clients = try (0..<8).map { _ in try servedConnection(port) }
        for client in clients { try client.send(get("/delay?ms=700")) }
        Thread.sleep(forTimeInterval: 0.2)
        let signalled = Date()
        service.signal(SIGTERM)
        for client in clients {
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == #"{"delayed_ms":700}"#)
            #expect(response.header("Connection") == "close")
        }
        #expect(service.waitForExit(timeout: 10))
        let result = service.finish()
        #expect(result.status == 0)
        // Exits as soon as the last connection is gone, not at the 25 s deadline.
        #expect(Date().timeIntervalSince(signalled) < 5)
        #expect(result.stdout.contains(#""msg":"shutdown: drained""#))
        #expect(result.stdout.contains(#""active_connections":8"#))
    }

    /// Server-Sent Events streams open at the signal learn of the shutdown, send their last
    /// event and end with the terminating chunk; the process exits 0 within the drain linger
    /// (1 s), not at the drain timeout, with no request cut.
    @Test func openEventStreamsEndCleanlyAndTheExitIs0WithinTheLinger() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0"])
        let port = try service.waitForPort()
        let clients = try (0..<8).map { _ in try TestClient(port: port, timeout: 10) }
        for client in clients {
            try client.send(get("/events?count=1000&interval=5000"))
            let head = try client.readHead()
            #expect(head.status == 200)
            #expect(head.header("Content-Type") == "text/event-stream; charset=utf-8")
            #expect(head.header("Transfer-Encoding") == "chunked")
            #expect(String(decoding: try #require(try client.readChunk()), as: UTF8.self) == "id: 1\ndata: {\"n\":1}\n\n")
        }
        let signalled = Date()
        service.signal(SIGTERM)
        for client in clients {
            let last = String(decoding: try #require(try client.readChunk()), as: UTF8.self)
            #expect(last == "event: shutdown\ndata: {\"after\":1}\n\n")
            #expect(try client.readChunk() == nil, "the terminating chunk")
        }
        #expect(service.waitForExit(timeout: 10))
        let took = Date().timeIntervalSince(signalled)
        let result = service.finish()
        #expect(result.status == 0)
        #expect(took < 2.5, "exited after \(took) s")
        #expect(result.stdout.contains(#""msg":"shutdown: drained""#))
        #expect(!result.stdout.contains("request cut"))
    }

    /// With no connection open, a SIGTERM has nothing to wait for: the process exits at once
    /// (about 1.5 ms; Benchmarks/startup.py measures it). The bound is loose so that a busy
    /// machine cannot fail it, yet it catches a drain step that waits out a timeout, or the
    /// one-second linger, when nothing is there to wait for.
    @Test func anIdleServerExitsPromptlyOnSIGTERM() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0"])
        let port = try service.waitForPort()
        // Served once, and closed: the server has accepted a connection and has none left.
        let client = try TestClient(port: port, timeout: 10)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        _ = try client.readUntilClose()
        Thread.sleep(forTimeInterval: 0.1)
        let signalled = Date()
        service.signal(SIGTERM)
        #expect(service.waitForExit(timeout: 10))
        let took = Date().timeIntervalSince(signalled)
        #expect(took < 1, "exited after \(took) s")
        let result = service.finish()
        #expect(result.status == 0)
        #expect(result.stdout.contains(#""msg":"shutdown: drained""#))
    }

    @Test func thePreDrainDelayKeepsServingWhileReadinessIs503() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0", "--shutdown-delay", "1s"])
        let port = try service.waitForPort()
        let ready = try servedConnection(port)
        try ready.send(get("/ready"))
        #expect(try ready.readResponse().status == 200)
        service.signal(SIGTERM)
        #expect(service.waitForLine(containing: "readiness answers 503") != nil)
        // During the delay: readiness 503, liveness 200, new connections accepted and served.
        try ready.send(get("/ready"))
        let draining = try ready.readResponse()
        #expect(draining.status == 503)
        #expect(draining.bodyText == #"{"status":"draining"}"#)
        let fresh = try TestClient(port: port)
        try fresh.send(get("/health"))
        #expect(try fresh.readResponse().status == 200)
        // After it: the listener is closed.
        #expect(service.waitForLine(containing: "listener closed") != nil)
        #expect(throws: TestClient.Failure.self) { _ = try TestClient(port: port) }
        #expect(service.waitForExit(timeout: 10))
        #expect(service.finish().status == 0)
    }

    @Test func theDrainDeadlineCutsStuckRequestsLogsThemAndExits1OnTime() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0", "--drain-timeout", "500ms"])
        let port = try service.waitForPort()
        let stuck = try servedConnection(port)
        try stuck.send(get("/delay?ms=9000", id: "cut-me-1"))
        Thread.sleep(forTimeInterval: 0.2)
        let signalled = Date()
        service.signal(SIGTERM)
        #expect(service.waitForExit(timeout: 5))
        let took = Date().timeIntervalSince(signalled)
        #expect(took >= 0.45, "exited after \(took) s")
        #expect(took < 1.5 + 0.5, "deadline plus a second, with slack: \(took) s")
        let result = service.finish()
        #expect(result.status == 1)
        let cut = try #require(result.stdout.split(separator: "\n").first { $0.contains(#""msg":"shutdown: request cut""#) })
        #expect(cut.contains(#""request_id":"cut-me-1""#))
        #expect(cut.contains(#""path":"/delay""#))
        #expect(cut.contains(#""method":"GET""#))
        #expect(result.stdout.contains(#""msg":"service stopped; the drain was incomplete""#))
    }

    @Test func aSecondSignalForcesTheShutdownAtOnce() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0", "--drain-timeout", "60s"])
        let port = try service.waitForPort()
        let stuck = try servedConnection(port)
        try stuck.send(get("/delay?ms=9000"))
        Thread.sleep(forTimeInterval: 0.2)
        service.signal(SIGTERM)
        #expect(service.waitForLine(containing: "listener closed") != nil)
        let second = Date()
        service.signal(SIGINT)
        #expect(service.waitForExit(timeout: 5))
        #expect(Date().timeIntervalSince(second) < 2)
        let result = service.finish()
        #expect(result.status == 1)
        #expect(result.stdout.contains("second signal received; forcing shutdown"))
        #expect(result.stdout.contains(#""msg":"shutdown: forced; closing connections""#))
    }

    @Test func aSlowlorisConnectionCannotHoldTheProcessPastTheDeadline() throws {
        // --read-header-timeout is long, so only the drain deadline can end this connection.
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0", "--drain-timeout", "400ms",
                                          "--read-header-timeout", "60s"])
        let port = try service.waitForPort()
        let slowloris = try TestClient(port: port, timeout: 10)
        try slowloris.send("GET /health HTTP/1.1\r\nHost: t\r\nX-Trickle: a")
        Thread.sleep(forTimeInterval: 0.2)
        let signalled = Date()
        service.signal(SIGTERM)
        #expect(service.waitForExit(timeout: 5))
        let took = Date().timeIntervalSince(signalled)
        #expect(took < 0.4 + 1 + 0.5, "exited after \(took) s")
        let result = service.finish()
        #expect(result.status == 1, "a connection was closed at the deadline")
        #expect(result.stdout.contains(#""msg":"shutdown: drain deadline passed; closing connections""#))
    }

    @Test func sigtermIsHandledWhenTheServiceIsPID1() throws {
        // unshare --fork makes the service PID 1 of a new PID namespace; the kernel drops
        // signals to such a process unless it has installed a handler.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            Issue.record("unshare (util-linux) is needed for this test")
            return
        }
        let port = try ServiceProcess.freePort()
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", String(port)],
                                         launcher: ["/usr/bin/unshare", "--fork", "--pid", "--mount-proc"])
        #expect(service.waitForLine(containing: "service started") != nil, "stderr: \(service.errorText)")
        // The service is unshare's only child; signal it directly, from outside its namespace.
        let unsharePID = service.process.processIdentifier
        let children = try String(contentsOfFile: "/proc/\(unsharePID)/task/\(unsharePID)/children", encoding: .utf8)
        let servicePID = try #require(children.split(separator: " ").first.flatMap { Int32($0) })
        let status = try String(contentsOfFile: "/proc/\(servicePID)/status", encoding: .utf8)
        let namespacePIDs = status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }
        #expect(namespacePIDs?.split(whereSeparator: \.isWhitespace).last == "1", "\(namespacePIDs ?? "")")

        _ = try servedConnection(port)
        kill(servicePID, SIGTERM)
        #expect(service.waitForExit(timeout: 10))
        let result = service.finish()
        #expect(result.status == 0)
        #expect(result.stdout.contains(#""msg":"shutdown: done""#))
    }
}

/// `service -health-check`, the probe a FROM scratch image's HEALTHCHECK runs.
@Suite(.serialized) struct HealthCheckTests {
    func probe(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String, seconds: Double) {
        let started = Date()
        let result = try ServiceProcess(["-health-check"] + arguments, environment: environment).finish()
        return (result.status, result.stderr, Date().timeIntervalSince(started))
    }

    @Test func healthyServerExits0Quickly() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0"])
        let port = try service.waitForPort()
        let result = try probe(["--host", "127.0.0.1", "--port", String(port)])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        // The port from the environment, as a container's HEALTHCHECK would pass it.
        #expect(try probe([], environment: ["PORT": String(port)]).status == 0)
        service.signal()
        _ = service.finish()
    }

    @Test(.enabled(if: HealthCheckTests.ipv6LoopbackWorks))
    func anIPv6OnlyServerIsProbedOverIPv6Loopback() throws {
        let service = try ServiceProcess(["--host", "::1", "--port", "0"])
        let port = try service.waitForPort()
        #expect(try probe(["--host", "::1", "--port", String(port)]).status == 0)
        // Over 127.0.0.1 nothing listens on that port.
        #expect(try probe(["--host", "127.0.0.1", "--port", String(port)]).status == 1)
        service.signal()
        _ = service.finish()
    }

    static var ipv6LoopbackWorks: Bool {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
        }
    }

    @Test func noServerExits1WithOneLine() throws {
        let port = try ServiceProcess.freePort()
        let result = try probe(["--port", String(port)])
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("Connection refused"), "\(result.stderr)")
    }

    @Test func wrongPortExits1() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0"])
        let port = try service.waitForPort()
        let other = try ServiceProcess.freePort()
        #expect(other != port)
        #expect(try probe([], environment: ["PORT": String(other)]).status == 1)
        service.signal()
        _ = service.finish()
    }

    @Test func aServerThatAcceptsButNeverAnswersExits1AtTheTimeout() throws {
        let result = try RawListener().serving { try probe(["--port", String($0), "--health-check-timeout", "300ms"]) }
        #expect(result.status == 1)
        #expect(result.stderr.contains("no answer"), "\(result.stderr)")
        #expect(result.seconds < 3, "\(result.seconds) s")
    }

    @Test func aNon200AnswerExits1() throws {
        let listener = try RawListener(reply: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        let result = try listener.serving { try probe(["--port", String($0)]) }
        #expect(result.status == 1)
        #expect(result.stderr.contains("503"), "\(result.stderr)")
    }

    /// The issue's reproduction: a listener that sends the start of a 200 and never ends the line.
    @Test func aStatusLineThatNeverEndsExits1() throws {
        let listener = try RawListener(reply: "HTTP/1.1 200 " + String(repeating: "x", count: 5000))
        let result = try listener.serving { try probe(["--port", String($0)]) }
        #expect(result.status == 1)
        #expect(result.stderr.contains("no status line end within 1024 bytes"), "\(result.stderr)")
    }

    /// What the probe takes for a healthy answer: a complete status line (RFC 9112 §4) of
    /// HTTP/1.0 or 1.1, SP, three digits, SP, a reason, CRLF, within 1 KiB, with a 2xx status.
    static let statusLines: [(reply: String, healthy: Bool)] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        ("HTTP/1.0 200 OK\r\n\r\n", true),
        ("HTTP/1.1 204 No Content\r\n\r\n", true),
        ("HTTP/1.1 299 \tany reason, caf\u{E9}\r\n", true),
        ("HTTP/1.1 200 \r\n", true),
        ("HTTP/1.1 200 " + String(repeating: "r", count: 1024 - 15) + "\r\n", true),
        ("HTTP/1.1 200 " + String(repeating: "r", count: 1024 - 14) + "\r\n", false),
        ("HTTP/1.1 200 OK", false),
        ("HTTP/1.1 200 OK\r", false),
        ("HTTP/1.1 200 OK\n\n", false),
        ("HTTP/1.9 200 OK\r\n\r\n", false),
        ("HTTP/1. 200 OK\r\n\r\n", false),
        ("HTTP/1.10 200 OK\r\n\r\n", false),
        ("HTTP/2 200 OK\r\n\r\n", false),
        ("http/1.1 200 OK\r\n\r\n", false),
        ("HTTP/1.1 200\r\n\r\n", false),
        ("HTTP/1.1  200 OK\r\n\r\n", false),
        ("HTTP/1.1 20 OK\r\n\r\n", false),
        ("HTTP/1.1 2000 OK\r\n\r\n", false),
        ("HTTP/1.1 2x0 OK\r\n\r\n", false),
        ("HTTP/1.1 200 O\u{1}K\r\n\r\n", false),
        ("HTTP/1.1 199 Early\r\n\r\n", false),
        ("HTTP/1.1 300 Multiple Choices\r\n\r\n", false),
        ("SSH-2.0-OpenSSH_9.2\r\n", false),
    ]

    @Test(arguments: statusLines)
    func onlyACompleteValid2xxStatusLinePasses(reply: String, healthy: Bool) throws {
        let result = try RawListener(reply: reply).serving { port in
            let address = try #require(SocketAddress(host: "127.0.0.1", port: port))
            return HealthProbe.check(address, timeout: .seconds(3))
        }
        if healthy {
            #expect(throws: Never.self, "\(reply.prefix(40).debugDescription)") { try result.get() }
        } else {
            #expect(throws: HealthProbe.Failure.self, "\(reply.prefix(40).debugDescription)") { try result.get() }
        }
    }
}

/// A loopback listener for probe tests: the kernel completes connections into its backlog, so
/// a client connects; it answers `reply` to each accepted connection, or never answers.
final class RawListener {
    let fd: Int32
    let port: Int

    init(reply: String? = nil) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            close(fd)
            throw TestClient.Failure(description: "listener: errno \(errno)")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        if let reply {
            Thread.detachNewThread {
                while true {
                    let client = accept(fd, nil, nil)
                    if client < 0 { return }
                    var request = [UInt8](repeating: 0, count: 4096)
                    _ = request.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                    _ = Array(reply.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    close(client)
                }
            }
        }
    }

    /// Runs `body` with the listener's port while the listener stays open. Reading `port` alone
    /// does not keep it open: Swift may release a value after its last use, and a port freed
    /// early can be bound by another test's listener and answer this probe with its reply.
    func serving<T>(_ body: (Int) throws -> T) rethrows -> T {
        try withExtendedLifetime(self) { try body(port) }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
