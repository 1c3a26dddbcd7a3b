import Foundation
import Testing
import TestSupport

/// The built `service` executable, run as a child process the way an operator runs it.
@Suite(.serialized) struct ServiceBinaryTests {
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        try ServiceProcess(arguments, environment: environment).finish()
    }

    @Test func servesOnAnEphemeralPortLogsItAndStopsCleanlyOnSIGTERM() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0"])
        let startup = try #require(service.waitForLine(containing: "service started"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(startup.utf8)) as? [String: Any])
        let port = try #require(object["port"] as? Int)
        #expect(port > 0)
        #expect(object["version"] as? String != nil)
        // The program's own lines carry its name (main.swift's `name:`), the executable's name.
        #expect(object["logger"] as? String == serviceExecutableName)
        #expect((object["config"] as? [String: Any])?["max_header_bytes"] as? Int == 16384)

        let client = try TestClient(port: port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.bodyText == #"{"status":"ok"}"#)

        kill(service.process.processIdentifier, SIGTERM)
        let result = service.finish()
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        // Every line is one JSON object; the request was logged.
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
        #expect(lines.contains { $0.contains(#""logger":"access""#) && $0.contains(#""path":"/health""#) })
        #expect(lines.contains { $0.contains("service stopped") })
    }

    @Test func environmentConfiguresAndFlagsWin() throws {
        let service = try ServiceProcess(["--port", "0"], environment: ["PORT": "1", "HOST": "127.0.0.1", "MAX_BODY_BYTES": "1234"])
        let startup = try #require(service.waitForLine(containing: "service started"))
        #expect(startup.contains(#""address":"127.0.0.1:"#))
        #expect(startup.contains(#""max_body_bytes":1234"#))
        kill(service.process.processIdentifier, SIGINT)
        #expect(service.finish().status == 0)
    }

    @Test(arguments: [
        (["--port", "70000"], [:], "--port"),
        ([], ["READ_HEADER_TIMEOUT": "abc"], "READ_HEADER_TIMEOUT"),
        (["--no-such-flag"], [:], "no-such-flag"),
        (["--port", "1", "--port", "70000"], [:], "--port"),
        (["serve"], [:], "serve"),
        (["--log-level", "loud"], [:], "--log-level"),
        ([], ["MAX_CONNECTIONS": "0"], "MAX_CONNECTIONS"),
    ] as [([String], [String: String], String)])
    func badValuesExit2WithOneLineOnStderr(arguments: [String], environment: [String: String], mentions: String) throws {
        let result = try run(arguments, environment: environment)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(mentions), "\(result.stderr)")
    }

    @Test func helpListsEveryOptionWithItsEnvironmentName() throws {
        let result = try run(["--help"])
        #expect(result.status == 0)
        // Help wraps lines to the terminal width; compare with whitespace folded.
        let help = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for name in ["HOST", "PORT", "READ_HEADER_TIMEOUT", "IDLE_TIMEOUT", "MAX_HEADER_BYTES", "MAX_BODY_BYTES",
                     "MAX_CONNECTIONS", "LOG_LEVEL", "DRAIN_TIMEOUT"] {
            #expect(help.contains("env: \(name)"), "\(name)")
        }
        #expect(help.contains("(env: PORT, default: 8080)"))
    }

    @Test func versionPrintsOneLineAndExits0() throws {
        let result = try run(["--version"], environment: ["PORT": "bogus"])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        #expect(result.stdout.hasSuffix(")\n") && result.stdout.split(separator: "\n").count == 1, "\(result.stdout)")
    }

    @Test func addressInUseLogsAJSONErrorAndExits1() throws {
        let first = try ServiceProcess(["--host", "127.0.0.1", "--port", "0"])
        let startup = try #require(first.waitForLine(containing: "service started"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(startup.utf8)) as? [String: Any])
        let port = try #require(object["port"] as? Int)

        let second = try run(["--host", "127.0.0.1", "--port", String(port)])
        #expect(second.status == 1)
        let line = try #require(second.stdout.split(separator: "\n").first { $0.contains("cannot start server") })
        let error = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(error["level"] as? String == "critical")
        #expect((error["error"] as? String)?.contains("Address already in use") == true)

        kill(first.process.processIdentifier, SIGTERM)
        #expect(first.finish().status == 0)
    }

    @Test func anUnusableAddressLogsAJSONErrorAndExits1() throws {
        // 192.0.2.1 (TEST-NET-1) is a valid literal that no interface here has.
        let result = try run(["--host", "192.0.2.1", "--port", "0"])
        #expect(result.status == 1)
        let line = try #require(result.stdout.split(separator: "\n").first { $0.contains("cannot start server") })
        let error = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect((error["error"] as? String)?.contains("bind") == true)
    }

    /// Starts the binary with its stdout set up by `prepare`, on a port picked here, and checks
    /// it serves and stops cleanly on SIGTERM.
    func servesWithStandardOutput(
        _ prepare: (Process, Int) throws -> Void, whileRunning check: (Process) throws -> Void = { _ in }
    ) throws {
        let port = try ServiceProcess.freePort()
        let process = Process()
        try prepare(process, port)
        var response: TestClient.Response?
        for _ in 0..<250 where response == nil && process.isRunning {
            if let client = try? TestClient(port: port) {
                try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
                response = try client.readResponse()
            } else {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        try #require(process.isRunning, "exited with \(process.terminationStatus)")
        #expect(response?.status == 200)
        // Another request, after log writes have failed.
        let again = try TestClient(port: port)
        try again.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try again.readResponse().bodyText == #"{"status":"ok"}"#)
        try check(process)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test func aClosedStandardOutputDoesNotStopTheServer() throws {
        try servesWithStandardOutput { process, port in
            // `exec` replaces the shell, so the process is the service itself, started with fd 1 closed.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "exec \"$0\" --host 127.0.0.1 --port \(port) >&-", ServiceProcess.binary.path]
            try process.run()
        } whileRunning: { process in
            // Descriptor 1 was reopened on /dev/null, so no socket can take that number and
            // receive log lines meant for stdout.
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process.processIdentifier)/fd/1")
            #expect(target == "/dev/null")
        }
    }

    @Test func aStandardOutputNobodyReadsDoesNotStopTheServer() throws {
        try servesWithStandardOutput { process, port in
            let pipe = Pipe()
            process.executableURL = ServiceProcess.binary
            process.arguments = ["--host", "127.0.0.1", "--port", String(port)]
            process.standardOutput = pipe
            try process.run()
            // No reader: every log write from now on fails with EPIPE.
            try pipe.fileHandleForReading.close()
        }
    }
}
