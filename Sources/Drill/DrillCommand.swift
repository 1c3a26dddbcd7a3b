// The `drill` command line: options, validation, and printing what `runDrill` returns.
//
// Exit codes: 0 when no request was lost, 1 when some were (or the drill could not run),
// 2 for a usage error, so a test can assert on the exit code alone and read `--json` for detail.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@main
struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Put keep-alive load on the service, send SIGTERM at a chosen moment, and report what happened to every request.",
        usage: """
        drill --binary <path> [options] [-- <extra service args>]
          drill --port <port> --pid <pid> [options]
          drill --port <port> --signal-command <cmd> [--wait-command <cmd>] [options]
        """,
        discussion: """
        Each connection is one thread with a blocking socket that sends GET <path> over \
        keep-alive, reading every response in full, and reconnects after a response with \
        Connection: close or any failure. After the signal, a refused connect means the \
        listener has closed, and that connection's thread stops.

        Every request ends as exactly one of: ok (a complete 2xx; sent before or after the \
        signal; some with Connection: close), unanswered (the connection closed before any \
        response byte), truncated (closed mid-response), timeout (no complete response within \
        --request-timeout), refused (connect refused or reset after the signal: no request byte left the client) or error (non-2xx, \
        unparseable response, other socket errors, a refused connect before the signal). \
        Lost = unanswered + truncated + timeout + error.

        Durations use Go's syntax: 500ms, 2s, 1m30s.

        Exit status: 0 if no request was lost, 1 if any was (or the drill could not run), \
        2 for a usage error.
        """
    )

    // MARK: Target

    @Option(help: ArgumentHelp("Start this service binary with --host <host> --port 0 (plus any arguments after --), read its port from the startup line, and signal it with kill.", valueName: "path"))
    var binary: String?

    @Option(help: ArgumentHelp("Port of an already running service (with --pid or --signal-command).", valueName: "port"))
    var port: Int?

    @Option(help: ArgumentHelp("Process ID of the running local service to signal with kill; time to exit is seen by polling, its exit code is n/a.", valueName: "pid"))
    var pid: Int32?

    @Option(help: ArgumentHelp("Shell command that sends the signal (run with /bin/sh -c), for a container: e.g. 'podman kill --signal TERM svc'. The signal time is when it starts.", valueName: "command"))
    var signalCommand: String?

    @Option(help: ArgumentHelp("Shell command run after --signal-command that returns when the service has exited, e.g. 'podman wait svc'. The last integer it prints is the exit code; when it returns is the exit time.", valueName: "command"))
    var waitCommand: String?

    // MARK: Load

    @Option(help: ArgumentHelp("Address of the service: an IPv4 or IPv6 literal, or localhost (also the --host given to a --binary service).", valueName: "address"))
    var host = "127.0.0.1"

    @Option(help: ArgumentHelp("Keep-alive connections, one thread each.", valueName: "count"))
    var connections = 64

    @Option(help: ArgumentHelp("Request target for GET.", valueName: "path"))
    var path = "/delay?ms=20"

    @Option(help: ArgumentHelp("How long load runs before the signal.", valueName: "duration"))
    var signalAfter = GoDuration.seconds(2)

    @Option(help: ArgumentHelp("How long load continues after the signal at most; a connection stops early once its connect is refused.", valueName: "duration"))
    var afterSignal = GoDuration.seconds(5)

    @Option(help: ArgumentHelp("Time allowed for a complete response (and for a connect).", valueName: "duration"))
    var requestTimeout = GoDuration.seconds(5)

    @Option(help: ArgumentHelp("How long after the signal to wait for the service to exit; a --binary service still running then is killed.", valueName: "duration"))
    var exitTimeout = GoDuration.seconds(30)

    @Option(help: ArgumentHelp("How long a --binary service has to log its startup line.", valueName: "duration"))
    var startupTimeout = GoDuration.seconds(10)

    // MARK: Output

    @Option(help: ArgumentHelp("Width of a timeline bucket (whole milliseconds).", valueName: "duration"))
    var bucket = GoDuration.milliseconds(100)

    @Option(help: ArgumentHelp("Write every timeline bucket as CSV (t_ms,ok,ok_close,unanswered,truncated,timeout,refused,error) to this file.", valueName: "path"))
    var csv: String?

    @Option(help: ArgumentHelp("Write the timeline as an SVG chart to this file.", valueName: "path"))
    var svg: String?

    @Option(help: ArgumentHelp("Write every request as CSV (worker,connection,request,sent_ms,finished_ms,outcome; times relative to the signal) to this file.", valueName: "path"))
    var records: String?

    @Flag(help: "Also print the summary as one JSON line (the last line of stdout). (default: off)")
    var json = false

    @Flag(help: "Print the service's own log lines (not access-log lines) around the signal; --binary only. (default: off)")
    var showServiceLog = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("Extra arguments for a --binary service, after --, e.g. -- --drain-timeout 5s.", valueName: "service-args"))
    var serviceArguments: [String] = []

    // MARK: Validation

    func validate() throws {
        let modes = [binary != nil, pid != nil, signalCommand != nil].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give exactly one target: --binary PATH, --port N --pid PID, or --port N --signal-command CMD")
        }
        if let binary {
            guard port == nil else { throw ValidationError("--port is read from the service's startup line with --binary; drop it") }
            guard access(binary, X_OK) == 0 else { throw ValidationError("--binary \(binary): not an executable file") }
        } else {
            guard let port else { throw ValidationError("--port is required with --pid or --signal-command") }
            guard (1...65535).contains(port) else { throw ValidationError("--port must be 1...65535") }
            guard serviceArguments.isEmpty else { throw ValidationError("arguments after -- are for a --binary service only") }
        }
        guard (try? ServerAddress.resolve(host: host, port: 1)) != nil else {
            throw ValidationError("--host must be an IPv4 or IPv6 address or localhost")
        }
        if let pid, pid <= 0 {
            throw ValidationError("--pid must be a positive process ID")
        }
        if waitCommand != nil && signalCommand == nil {
            throw ValidationError("--wait-command goes with --signal-command")
        }
        guard (1...10_000).contains(connections) else {
            throw ValidationError("--connections must be 1...10000")
        }
        // The path goes into the request line verbatim: no whitespace or control characters.
        guard path.hasPrefix("/"), !path.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) else {
            throw ValidationError("--path must start with / and contain no spaces or control characters")
        }
        guard requestTimeout.nanoseconds > 0 else { throw ValidationError("--request-timeout must be > 0") }
        guard bucket.nanoseconds >= 1_000_000, bucket.nanoseconds % 1_000_000 == 0 else {
            throw ValidationError("--bucket must be a whole number of milliseconds, at least 1ms")
        }
        guard startupTimeout.nanoseconds > 0 else { throw ValidationError("--startup-timeout must be > 0") }
    }

    /// The options `runDrill` takes. Call after `validate()`.
    var drillOptions: DrillOptions {
        let target: DrillOptions.Target
        if let binary {
            target = .binary(path: binary, arguments: serviceArguments)
        } else if let pid {
            target = .process(port: port ?? 0, pid: pid)
        } else {
            target = .commands(port: port ?? 0, signal: signalCommand ?? "", wait: waitCommand)
        }
        var options = DrillOptions(target: target)
        options.host = host
        options.connections = connections
        options.path = path
        options.signalAfter = signalAfter
        options.afterSignal = afterSignal
        options.requestTimeout = requestTimeout
        options.exitTimeout = exitTimeout
        options.startupTimeout = startupTimeout
        options.bucket = bucket
        return options
    }

    // MARK: Running

    /// Our own entry point rather than ParsableCommand's, for the exit codes: ArgumentParser
    /// exits 64 on a usage error, where the drill (like the service) uses 2.
    static func main() {
        exitProcess(main(arguments: Array(CommandLine.arguments.dropFirst())))
    }

    /// Parses, runs and prints; returns the exit code. Separate from `main()` so tests can call it.
    static func main(arguments: [String]) -> Int32 {
        let command: DrillCommand
        do {
            command = try parse(arguments)
        } catch {
            if exitCode(for: error).isSuccess {
                print(fullMessage(for: error))
                return 0
            }
            printToStandardError("drill: " + message(for: error))
            printToStandardError("Run 'drill --help' for the options.")
            return 2
        }
        return command.execute()
    }

    func execute() -> Int32 {
        let result: DrillResult
        do {
            result = try runDrill(drillOptions, progress: printToStandardError)
        } catch {
            printToStandardError("drill: \(error)")
            return 1
        }

        print(Report.summaryText(result))
        print(Report.timelineText(result))
        let lost = Report.lostText(result.records)
        if !lost.isEmpty {
            print(lost)
        }
        if showServiceLog {
            print(Report.serviceLogText(result))
        }
        var status = result.exitCode
        do {
            if let csv {
                try writeFile(csv, Report.csv(result.timeline))
                printToStandardError("drill: wrote \(csv)")
            }
            if let records {
                try writeFile(records, Report.recordsCSV(result.records))
                printToStandardError("drill: wrote \(records)")
            }
            if let svg {
                try writeFile(svg, SVGChart.render(result))
                printToStandardError("drill: wrote \(svg)")
            }
        } catch {
            printToStandardError("drill: \(error)")
            status = 1
        }
        if json {
            print(Report.json(result))
        }
        fflush(nil)
        return status
    }
}
