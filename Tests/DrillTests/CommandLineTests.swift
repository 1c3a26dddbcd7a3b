// The command line: durations, defaults, the three target forms and their usage errors, and the
// small parsers for the service's startup line and a wait command's output.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import Drill

@Suite struct GoDurationTests {
    @Test(arguments: [
        ("0", Int64(0)),
        ("500ms", 500_000_000),
        ("2s", 2_000_000_000),
        ("1.5s", 1_500_000_000),
        ("1m30s", 90_000_000_000),
        ("1h", 3_600_000_000_000),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("7ns", 7),
        (".5s", 500_000_000),
        ("+3ms", 3_000_000),
        ("1.0000000001s", 1_000_000_000),
    ])
    func parses(text: String, nanoseconds: Int64) {
        #expect(GoDuration(text)?.nanoseconds == nanoseconds)
    }

    @Test(arguments: ["", "5", "s", ".s", "-1s", "1x", "1 s", "1e3s", "2s ", "3000000h"])
    func rejects(text: String) {
        #expect(GoDuration(text) == nil)
    }

    @Test func printsAFormThatParsesBack() {
        for (nanoseconds, text) in [(Int64(2_000_000_000), "2s"), (100_000_000, "100ms"), (90_000_000_000, "1m30s"),
                                    (1_500_000_000, "1500ms"), (0, "0s"), (3_600_000_000_000, "1h"), (1_500, "1500ns")] {
            let duration = GoDuration(nanoseconds: nanoseconds)
            #expect(duration.description == text)
            #expect(GoDuration(duration.description) == duration)
        }
    }
}

@Suite struct DrillCommandTests {
    @Test func defaults() throws {
        let command = try DrillCommand.parse(["--binary", "/bin/true"])
        let options = command.drillOptions
        #expect(options.target == .binary(path: "/bin/true", arguments: []))
        #expect(options.host == "127.0.0.1")
        #expect(options.connections == 64)
        #expect(options.path == "/delay?ms=20")
        #expect(options.signalAfter == .seconds(2))
        #expect(options.afterSignal == .seconds(5))
        #expect(options.requestTimeout == .seconds(5))
        #expect(options.bucket == .milliseconds(100))
        #expect(command.csv == nil && command.svg == nil && !command.json)
    }

    @Test func binaryWithServiceArguments() throws {
        let command = try DrillCommand.parse(["--binary", "/bin/true", "--connections", "16", "--signal-after", "1s",
                                              "--path", "/health", "--json", "--", "--shutdown-delay", "1s"])
        let options = command.drillOptions
        #expect(options.target == .binary(path: "/bin/true", arguments: ["--shutdown-delay", "1s"]))
        #expect(options.connections == 16)
        #expect(options.signalAfter == .seconds(1))
        #expect(options.path == "/health")
        #expect(command.json)
    }

    @Test func pidAndCommandTargets() throws {
        #expect(try DrillCommand.parse(["--port", "8080", "--pid", "42"]).drillOptions.target == .process(port: 8080, pid: 42))
        let command = try DrillCommand.parse(["--port", "8080", "--signal-command", "podman kill --signal TERM svc",
                                              "--wait-command", "podman wait svc"])
        #expect(command.drillOptions.target == .commands(port: 8080, signal: "podman kill --signal TERM svc", wait: "podman wait svc"))
    }

    @Test(arguments: [
        [String](),                                             // no target
        ["--binary", "/bin/true", "--pid", "3", "--port", "1"], // two targets
        ["--binary", "/nonexistent/service"],                   // not executable
        ["--binary", "/bin/true", "--port", "8080"],            // port comes from the startup line
        ["--pid", "42"],                                        // no port
        ["--port", "8080", "--pid", "0"],
        ["--port", "70000", "--pid", "42"],
        ["--port", "8080", "--pid", "42", "--", "--x"],        // service args without --binary
        ["--port", "8080", "--pid", "42", "--wait-command", "true"],
        ["--binary", "/bin/true", "--connections", "0"],
        ["--binary", "/bin/true", "--path", "health"],
        ["--binary", "/bin/true", "--path", "/a b"],
        ["--binary", "/bin/true", "--bucket", "1500us"],
        ["--binary", "/bin/true", "--signal-after", "2"],
        ["--binary", "/bin/true", "--request-timeout", "0"],
        ["--binary", "/bin/true", "--bogus"],
        ["--binary", "/bin/true", "--host", "example.com"],
    ])
    func usageErrors(arguments: [String]) {
        #expect(throws: (any Error).self) { try DrillCommand.parse(arguments) }
        #expect(DrillCommand.main(arguments: arguments) == 2)
    }

    @Test func hostLiterals() throws {
        #expect(try ServerAddress.resolve(host: "127.0.0.1", port: 8080).text == "127.0.0.1:8080")
        #expect(try ServerAddress.resolve(host: "localhost", port: 80).text == "127.0.0.1:80")
        #expect(try ServerAddress.resolve(host: "::1", port: 80).text == "[::1]:80")
        #expect(try ServerAddress.resolve(host: "[::1]", port: 80).family == AF_INET6)
        #expect(throws: DrillError.self) { try ServerAddress.resolve(host: "example.com", port: 80) }
    }

    @Test func startupLinePort() {
        let line = #"{"time":"2026-11-26T17:46:22.714Z","level":"info","msg":"service started","logger":"service","address":"127.0.0.1:0","config":{"max_header_bytes":16384},"port":41234,"version":"0.1.0-dev"}"#
        #expect(startupPort(in: line) == 41234)
        #expect(startupPort(in: #"{"msg":"request","port":80}"#) == nil)
        #expect(startupPort(in: #"{"msg":"service started"}"#) == nil)
        #expect(startupPort(in: #"{"msg":"service started","port":0}"#) == nil)
    }

    @Test func waitCommandExitCode() {
        #expect(lastInteger(in: "0\n") == 0)
        #expect(lastInteger(in: "svc exited\n137\n") == 137)
        #expect(lastInteger(in: "nothing") == nil)
        #expect(lastInteger(in: "a1b22c") == 22)
    }
}
