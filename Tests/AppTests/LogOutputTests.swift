import Foundation
import Testing
import TestSupport

/// Standard output that nobody reads (a blocking pipe, as under Docker's blocking log mode or a
/// slow log driver) must cost log lines, never the server: no event loop, probe or signal waits
/// on log output.
@Suite(.serialized) struct LogOutputTests {
    /// Each access-log line carries this user agent: about 3.1 KB a line.
    static let userAgent = String(repeating: "U", count: 3000)

    /// Starts the service with a stdout nobody reads and returns it with its port, once it
    /// accepts connections (its startup line is stuck in the pipe with the rest).
    func startStalled() throws -> (ServiceProcess, Int) {
        let port = try ServiceProcess.freePort()
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "\(port)"], holdingOutput: true)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? TestClient(port: port)) != nil { return (service, port) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw TestClient.Failure(description: "the service never listened on \(port)")
    }

    /// Sends `count` keep-alive requests on one connection, each logged with a 3 KB user agent,
    /// far more log output than the pipe (64 KiB) and the sink's buffer (1 MiB) hold. Every one
    /// must be answered: a loop blocked in write(2) would stop answering after the first few.
    func flood(_ port: Int, count: Int = 1500) throws {
        let client = try TestClient(port: port, timeout: 5)
        for _ in 0..<count {
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\nUser-Agent: \(Self.userAgent)\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
    }

    func droppedLines(_ port: Int) throws -> Int? {
        let client = try TestClient(port: port, timeout: 3)
        try client.send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let body = try client.readResponse().bodyText
        let sample = body.split(separator: "\n").first { $0.hasPrefix("log_lines_dropped_total ") }
        return sample.flatMap { Int($0.split(separator: " ").last ?? "") }
    }

    @Test func aStalledStdoutLeavesProbesAnsweredAndSIGTERMStillExits() throws {
        let (service, port) = try startStalled()
        try flood(port)
        // A new connection and the probe are answered within the client's 3 s timeout.
        let probe = try TestClient(port: port, timeout: 3)
        try probe.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try probe.readResponse().status == 200)
        let dropped = try #require(try droppedLines(port))
        #expect(dropped > 0, "1500 lines of 3 KB cannot all have fit")

        let signalled = Date()
        service.signal(SIGTERM)
        // The drain closes the idle connections at once; the last log lines get 1 s to leave.
        #expect(service.waitForExit(timeout: 10), "SIGTERM did not end a process whose stdout is stalled")
        #expect(Date().timeIntervalSince(signalled) < 5)
        service.startReading()
        let result = service.finish()
        #expect(result.status == 0)
        // What did come out is whole lines: the service's own startup line among them.
        #expect(result.stdout.hasSuffix("\n"))
        #expect(result.stdout.contains(#""msg":"service started""#))
    }

    @Test func droppedLinesAreReportedOnceOutputFlowsAgain() throws {
        let (service, port) = try startStalled()
        try flood(port)
        let dropped = try #require(try droppedLines(port))
        #expect(dropped > 0)

        service.startReading()
        let warning = try #require(service.waitForLine(containing: "log lines dropped"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(warning.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        let reported = try #require(object["dropped_lines"] as? Int)
        // Scraped before the reader came back, so nothing more was dropped after it.
        #expect(reported == dropped)
        #expect(try #require(object["dropped_bytes"] as? Int) > dropped * 3000)

        // Output flows: new lines arrive, and one report covered all the drops.
        try flood(port, count: 1)
        #expect(service.waitForLine(containing: #""status":200"#) != nil)
        service.signal(SIGTERM)
        #expect(service.waitForExit(timeout: 10))
        let result = service.finish()
        #expect(result.status == 0)
        #expect(result.stdout.components(separatedBy: "log lines dropped").count == 2)
    }
}
