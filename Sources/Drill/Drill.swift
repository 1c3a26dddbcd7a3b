// The drill as a library function: start (or find) the service, put keep-alive load on it,
// signal it at the chosen moment, and account for every request. `DrillCommand` is a thin
// command line around `runDrill`; tests can call it directly with `@testable import Drill`.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Everything a drill run needs; the defaults are the command line's.
struct DrillOptions: Equatable, Sendable {
    enum Target: Equatable, Sendable {
        /// Start this binary with `--host <host> --port 0` plus `arguments`; signal it with kill
        /// and collect its exit code with waitpid.
        case binary(path: String, arguments: [String])
        /// A running local service: signal `pid` with kill, see its exit by polling.
        case process(port: Int, pid: Int32)
        /// A container: run `signal` with /bin/sh at the chosen moment and, if given, `wait`
        /// afterwards; the last integer `wait` prints is the exit code.
        case commands(port: Int, signal: String, wait: String?)
    }

    var target: Target
    var host = "127.0.0.1"
    var connections = 64
    var path = "/delay?ms=20"
    /// Load runs this long before the signal.
    var signalAfter = GoDuration.seconds(2)
    /// Load continues at most this long after the signal (less, once every worker is refused).
    var afterSignal = GoDuration.seconds(5)
    var requestTimeout = GoDuration.seconds(5)
    var bucket = GoDuration.milliseconds(100)
    /// How long after the signal the drill waits for the service to exit.
    var exitTimeout = GoDuration.seconds(30)
    /// How long a started binary has to print its startup line.
    var startupTimeout = GoDuration.seconds(10)

    init(target: Target) {
        self.target = target
    }
}

/// Everything a drill observed.
struct DrillResult: Sendable {
    var options: DrillOptions
    var port: Int
    var summary: Summary
    var timeline: Timeline
    var exit: ServiceExit
    /// Milliseconds from the signal to the observed exit, when it was observed.
    var exitMilliseconds: Double?
    /// Connections opened over the run (the workers' first ones plus every reconnect).
    var connectionsOpened: Int
    /// The service's non-access log lines, with their time relative to the signal in ms.
    var serviceLog: [(milliseconds: Double, text: String)]
    /// Every request, in each worker's order, with times relative to the signal in ns.
    var records: [RequestRecord]

    /// 0 if no request was lost, 1 otherwise (the command's exit code).
    var exitCode: Int32 { summary.lost == 0 ? 0 : 1 }
}

/// Runs one drill. Progress lines (service started, signal sent, waiting) go to `progress`.
/// Throws `DrillError` when the drill itself cannot run: the service does not start, a thread
/// cannot be created, the signal cannot be delivered.
func runDrill(_ options: DrillOptions, progress: (String) -> Void = { _ in }) throws -> DrillResult {
    let service: any ServiceUnderTest
    switch options.target {
    case .binary(let path, let arguments):
        let child = try ChildService(path: path, arguments: arguments, host: options.host,
                                     startupTimeout: options.startupTimeout.nanoseconds)
        progress("drill: started \(path) as pid \(child.pid), listening on port \(child.port)")
        service = child
    case .process(let port, let pid):
        service = LocalProcessService(port: port, pid: pid)
    case .commands(let port, let signal, let wait):
        service = CommandService(port: port, signalCommand: signal, waitCommand: wait)
    }
    defer { service.cleanUp() }
    return try runDrill(options, against: service, progress: progress)
}

/// Runs one drill against a service already set up (the target in `options` is not used): the
/// seam for tests, which drive the load loop against an in-process fake server.
func runDrill(_ options: DrillOptions, against service: any ServiceUnderTest,
              progress: (String) -> Void = { _ in }) throws -> DrillResult {
    let address = try ServerAddress.resolve(host: options.host, port: service.port)
    ensureDescriptorLimit(options.connections + 64)

    let control = DrillControl()
    let configuration = WorkerConfiguration(address: address, path: options.path,
                                            requestTimeout: options.requestTimeout.nanoseconds)
    let workers = (0..<options.connections).map {
        LoadWorker(index: Int32($0), configuration: configuration, control: control)
    }
    var threads: [JoinableThread] = []
    let loadStart = monotonicNanoseconds()
    do {
        for worker in workers {
            threads.append(try startThread { worker.run() })
        }
    } catch {
        control.stop()
        threads.forEach { $0.join() }
        throw error
    }
    progress("drill: \(options.connections) connections on \(address.text) GET \(options.path); SIGTERM in \(options.signalAfter)")

    sleep(untilMonotonic: loadStart + options.signalAfter.nanoseconds)
    // Stamped before the signal leaves, so that no request sent after it is counted "before".
    let signalAt = monotonicNanoseconds()
    control.signalAt.store(signalAt, ordering: .sequentiallyConsistent)
    control.stopAt.store(signalAt + options.afterSignal.nanoseconds, ordering: .sequentiallyConsistent)
    do {
        try service.sendSignal()
    } catch {
        control.stop()
        threads.forEach { $0.join() }
        throw error
    }
    service.startWatchingExit(until: signalAt + options.exitTimeout.nanoseconds)
    progress("drill: SIGTERM sent; load continues up to \(options.afterSignal) or until every connection is refused")

    threads.forEach { $0.join() }
    let exit = service.waitForExit(until: signalAt + options.exitTimeout.nanoseconds)

    var records: [RequestRecord] = []
    records.reserveCapacity(workers.reduce(0) { $0 + $1.records.count })
    for worker in workers {
        records.append(contentsOf: worker.records)
    }
    let summary = Summary(records: records, signalAt: signalAt)
    let timeline = Timeline(records: records, signalAt: signalAt, bucketNanoseconds: options.bucket.nanoseconds)
    let relative = records.map {
        var record = $0
        record.sent -= signalAt
        record.finished -= signalAt
        return record
    }
    return DrillResult(
        options: options,
        port: service.port,
        summary: summary,
        timeline: timeline,
        exit: exit,
        exitMilliseconds: exit.exitedAt.map { Double($0 - signalAt) / 1_000_000 },
        connectionsOpened: workers.reduce(0) { $0 + $1.connectionsOpened },
        serviceLog: service.logLines.map { (Double($0.time - signalAt) / 1_000_000, $0.text) },
        records: relative
    )
}
