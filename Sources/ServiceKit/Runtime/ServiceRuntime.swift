import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the application's `build` closure receives: the settings, read and checked, the logger
/// (logging is bootstrapped by then) and the readiness `/ready` reports.
public struct ServiceStartup: Sendable {
    /// Every setting's value, the runtime's and the application's.
    public let settings: Settings
    public let logger: Logger
    /// Hold it not ready while a dependency is unavailable; the server marks it draining at
    /// shutdown.
    public let readiness: Readiness
}

/// What the application gives the runtime to run: its routes and its own services.
public struct ServiceApplication: Sendable {
    /// The application's routes. The runtime adds `/health`, `/ready` and `/metrics`.
    public var router: Router
    /// Services the handlers depend on (a database client, a background job). They start
    /// before the HTTP server and stop after it has drained. A service should conform to
    /// `CustomStringConvertible`: the group names each with `"\(service)"`, which otherwise costs
    /// a reflection lookup at start.
    public var services: [any Service]

    public init(router: Router, services: [any Service] = []) {
        self.router = router
        self.services = services
    }
}

/// The service runtime: reads the command line and environment, answers `--help`, `--version`
/// and `-health-check`, bootstraps JSON logging and Prometheus metrics, then runs the
/// application's routes and services with the HTTP server until SIGTERM or SIGINT, and drains.
///
/// Exit status: 0 after a clean shutdown (and for `--help`, `--version`, a healthy
/// `-health-check`), 1 for a startup failure, a failed health check or an incomplete drain,
/// 2 for a bad command line or setting.
public enum ServiceRuntime {
    /// Makes the application once the settings are read: its routes and services.
    public typealias Build = @Sendable (ServiceStartup) async throws -> ServiceApplication

    /// How long the last log lines may take to leave before the process exits: a reader that
    /// stalled standard output must not keep a stopped service from exiting.
    static let logFlushTimeout: Duration = .seconds(1)

    /// Runs ``main(name:version:revision:settings:arguments:environment:build:)`` on the
    /// cooperative pool with the process's arguments and environment, and exits with its
    /// status; the main thread parks meanwhile.
    ///
    /// Not an async `main`: that hands the main thread to `dispatch_main()`, which exits the
    /// thread, and libdispatch's cleanup of it then opens an eventfd. When that cleanup runs
    /// late (a busy machine) and a connection flood has taken every descriptor by then, the
    /// failed eventfd is a libdispatch crash (SIGILL), so a flood at startup could kill the
    /// process. Nothing here uses the main actor, so the main thread has nothing to run.
    ///
    /// - Parameter settings: the application's own settings; they follow the runtime's in
    ///   `--help` and in the startup log line.
    public static func runAndExit(
        name: String, version: String, revision: String, settings: [AnySetting] = [],
        build: @escaping Build
    ) -> Never {
        let arguments = Array(CommandLine.arguments.dropFirst())
        Task.detached {
            exit(await main(
                name: name, version: version, revision: revision, settings: settings, arguments: arguments,
                environment: ProcessEnvironment.current(), build: build))
        }
        while true { pause() }
    }

    /// Runs the service and returns the process exit status. It bootstraps the process's
    /// logging and metrics systems, which can happen once per process.
    ///
    /// - Parameter arguments: the command line without argv[0].
    public static func main(
        name: String, version: String, revision: String, settings: [AnySetting] = [], arguments: [String],
        environment: [String: String], build: @escaping Build
    ) async -> Int32 {
        let program = Program(name: name, version: version, revision: revision, settings: RuntimeSettings.all + settings)
        return await main(program, arguments: arguments, environment: environment, bootstrapsProcess: true, build: build)
    }

    /// ``main(name:version:revision:settings:arguments:environment:build:)``; without
    /// `bootstrapsProcess` the logging and metrics systems are left as they are (tests run
    /// several services in one process) and the logger is swift-log's default at the level
    /// `--log-level` sets.
    static func main(
        _ program: Program, arguments: [String], environment: [String: String], bootstrapsProcess: Bool,
        build: @escaping Build
    ) async -> Int32 {
        // A client that disconnects while we write must cost an EPIPE, not the process.
        signal(SIGPIPE, SIG_IGN)

        var settings: Settings
        switch program.parse(arguments, environment: environment) {
        case .run(let parsed):
            if parsed.healthCheck { return healthCheck(parsed.settings, name: program.name) }
            settings = parsed.settings
        case .exit(let code, let message, let toStandardError):
            let line = message.hasSuffix("\n") ? message : message + "\n"
            printLine(toStandardError ? "\(program.name): " + line : line, to: toStandardError ? 2 : 1)
            return code
        }

        // Unset, the connection cap is what the container's memory limit holds (the worst case
        // of every connection, as deploy/check_memory.py checks for the shipped manifests).
        let memoryLimit = ConnectionBudget.cgroupMemoryLimit()
        if !settings.isGiven(RuntimeSettings.maxConnections) {
            settings.derive(
                RuntimeSettings.maxConnections,
                ConnectionBudget.maxConnections(memoryLimit: memoryLimit, tls: settings.tlsEnabled))
        }

        let logLevel = settings[RuntimeSettings.logLevel]
        let logger: Logger
        if bootstrapsProcess {
            JSONLogHandler.bootstrap(logLevel: logLevel)
            logger = Logger(label: program.name)
        } else {
            var unbootstrapped = Logger(label: program.name)
            unbootstrapped.logLevel = logLevel
            logger = unbootstrapped
        }
        // Metrics: swift-metrics, bootstrapped with a Prometheus registry that `/metrics` serves,
        // on the main listener or on a port of its own. Bootstrapped before the application is
        // built, so that the metrics of the libraries it sets up land in the same registry.
        let metrics = settings[RuntimeSettings.metrics]
            ? PrometheusMetrics(version: program.version, revision: program.revision) : nil
        if bootstrapsProcess { metrics?.bootstrap() }

        // Span export, in a build with the OTel trait: the tracer is bootstrapped before the
        // application is built, so the spans of the libraries it sets up go there too, and
        // before the server, which takes the bootstrapped tracer.
        var exporters: [any Service] = []
        #if OTel
        if bootstrapsProcess {
            do {
                if let export = try OTelExport.bootstrap(serviceName: program.name, environment: environment, logger: logger) { exporters.append(export) }
            } catch {
                logger.critical("cannot start span export", metadata: ["error": "\(error)"])
                LogSink.standardOutput.flush(waitingUpTo: ServiceRuntime.logFlushTimeout)
                return 1
            }
        }
        #endif

        let run = Run(
            program: program, settings: settings, logger: logger, memoryLimit: memoryLimit, metrics: metrics,
            exporters: exporters)
        return await run.serve(build: build)
    }

    /// `service -health-check`: probes the server these settings describe and prints one
    /// line on failure. Exit 0 on 200, 1 on anything else.
    static func healthCheck(_ settings: Settings, name: String) -> Int32 {
        let server = settings.server
        let timeout = settings[RuntimeSettings.healthCheckTimeout]
        guard let target = HealthProbe.target(host: server.host, port: server.port) else {
            printLine("health check failed: cannot probe host \(server.host)\n", to: 2)
            return 1
        }
        let result: Result<Void, HealthProbe.Failure>
        #if TLS
        if settings.tlsEnabled {
            result = HealthProbe.checkTLS(
                target, timeout: timeout,
                trusting: settings[RuntimeSettings.healthCheckVerify] ? settings[RuntimeSettings.tlsCertFile] : nil)
        } else {
            result = HealthProbe.check(target, timeout: timeout)
        }
        #else
        result = HealthProbe.check(target, timeout: timeout)
        #endif
        switch result {
        case .success:
            return 0
        case .failure(let failure):
            printLine("health check failed: \(failure)\n", to: 2)
            return 1
        }
    }

    /// - Parameter memoryLimit: the cgroup memory limit read at start, in bytes (nil: none).
    static func startupMetadata(
        _ settings: Settings, version: String, revision: String, address: SocketAddress?, memoryLimit: UInt64? = nil
    ) -> Logger.Metadata {
        var config = settings.logMetadata
        // The listener's host and port are the line's own `address` and `port` (the bound
        // port, for `--port 0`); tools read the first `"port":` of the line as that port.
        config["host"] = nil
        config["port"] = nil
        // Where the cap came from: MAX_CONNECTIONS, the cgroup memory limit, or neither.
        config["max_connections_from"] = "\(settings.isGiven(RuntimeSettings.maxConnections) ? "setting" : memoryLimit == nil ? "default" : "memory limit")"
        config["memory_limit_bytes"] = "\(memoryLimit.map(String.init) ?? "none")"
        config["tls"] = .stringConvertible(settings.tlsEnabled)
        return [
            "version": "\(version)",
            "revision": "\(revision)",
            "address": "\(address?.description ?? "-")",
            "port": .stringConvertible(address?.port ?? settings[RuntimeSettings.port]),
            "config": .dictionary(config),
        ]
    }
}

/// One run of the service, from the application's build to the end of the drain.
private struct Run {
    let program: Program
    let settings: Settings
    let logger: Logger
    let memoryLimit: UInt64?
    let metrics: PrometheusMetrics?
    /// Services that send telemetry away (the OTel trait's span export): stopped after the
    /// server and the application's services, so the spans of the last requests leave first.
    let exporters: [any Service]

    /// Logs a failure to start with `error` and returns the exit status, 1.
    func fail(_ message: Logger.Message, _ metadata: Logger.Metadata) -> Int32 {
        logger.critical(message, metadata: metadata)
        LogSink.standardOutput.flush(waitingUpTo: ServiceRuntime.logFlushTimeout)
        return 1
    }

    /// Logs why a listener could not start (address in use, permission denied) and returns
    /// the exit status, 1.
    func cannotStart(_ error: SystemError, port: Int? = nil) -> Int32 {
        fail(port == nil ? "cannot start server" : "cannot start metrics listener", [
            "error": "\(error)", "host": "\(settings[RuntimeSettings.host])",
            "port": "\(port ?? settings[RuntimeSettings.port])",
        ])
    }

    func serve(build: ServiceRuntime.Build) async -> Int32 {
        let logger = logger
        let settings = settings
        #if TLS
        // HTTPS: the pair is loaded (and checked) before anything is built or listens.
        var certificates: TLSCertificates?
        if settings.tlsEnabled {
            do {
                certificates = try TLSCertificates(
                    certificateFile: settings[RuntimeSettings.tlsCertFile], keyFile: settings[RuntimeSettings.tlsKeyFile])
            } catch {
                return fail("cannot load the TLS certificate and key", ["error": "\(error)"])
            }
        }
        #endif

        let readiness = Readiness()
        let application: ServiceApplication
        do {
            application = try await build(ServiceStartup(settings: settings, logger: logger, readiness: readiness))
        } catch {
            return fail("cannot start service", ["error": "\(error)"])
        }
        var router = application.router
        Probes.add(to: &router, readiness: readiness)
        var metricsServer: HTTPServer?
        if let metrics {
            if settings[RuntimeSettings.metricsPort] == 0 {
                router.addProbe("GET", "/metrics", accessLog: settings[RuntimeSettings.metricsAccessLog], metrics.handler)
            } else {
                metricsServer = makeMetricsServer(metrics)
            }
        }
        #if TLS
        let server = HTTPServer(
            configuration: settings.server, router: router, logger: logger, readiness: readiness,
            metricsFactory: metrics?.factory, tls: certificates)
        #else
        let server = HTTPServer(
            configuration: settings.server, router: router, logger: logger, readiness: readiness,
            metricsFactory: metrics?.factory)
        #endif
        metrics?.collect(from: server)
        let (version, revision, memoryLimit) = (program.version, program.revision, memoryLimit)
        server.onRun = { address in
            logger.info("service started", metadata: ServiceRuntime.startupMetadata(
                settings, version: version, revision: revision, address: address, memoryLimit: memoryLimit))
        }

        // Signals are handled here rather than by the group's own option, because a second
        // SIGTERM or SIGINT must force the shutdown and ServiceGroup ignores repeats. Trapping
        // them before the group runs the server means there is no moment when the port is open
        // but a SIGTERM would kill the process instead of draining it, PID 1 included.
        // With TLS, SIGHUP reloads the certificate and key (what cert-manager's renewals need).
        let signals = await settings.tlsEnabled
            ? UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
            : UnixSignalsSequence(trapping: .sigterm, .sigint)
        // Bind the listener and start the loops now rather than when the group runs the server:
        // building and starting the group takes about 1 ms, a quarter of the start (static
        // build), and clients can connect meanwhile. It is safe because the signals are already
        // trapped, and a group asked to shut down before it runs still runs the server and
        // drains it. (`run()` finds the server started and goes on from there.)
        do {
            try metricsServer?.start()
        } catch {
            return cannotStart(error, port: settings[RuntimeSettings.metricsPort])
        }
        do {
            try server.start()
        } catch {
            return cannotStart(error)
        }
        // The group shuts services down in reverse order: the application's services (a
        // database client the handlers use) stop only after the server has drained, then the
        // exporters flush what the last requests recorded, and the metrics listener stops
        // last, so it answers scrapes until then.
        var services: [any Service] = []
        if let metricsServer { services.append(metricsServer) }
        services += exporters
        services += application.services
        services.append(server)
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let signalTask = Task {
            var count = 0
            for await signal in signals {
                #if TLS
                if signal == .sighup {
                    reloadCertificates(certificates)
                    continue
                }
                #endif
                count += 1
                if count == 1 {
                    logger.info("signal received; shutting down gracefully", metadata: ["signal": "\(signal)"])
                    await group.triggerGracefulShutdown()
                } else {
                    logger.warning("second signal received; forcing shutdown", metadata: ["signal": "\(signal)"])
                    server.forceShutdown()
                }
            }
        }
        defer { signalTask.cancel() }
        #if TLS
        // Certificate files that change (a renewal written into a mounted secret) are picked up
        // without a signal, checked every --tls-reload-interval.
        let watcher = Task {
            let interval = settings[RuntimeSettings.tlsReloadInterval]
            guard let certificates, interval > .zero else { return }
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                do {
                    if try certificates.reloadIfChanged() {
                        logger.info("TLS certificate files changed; reloaded, new connections use them", metadata: [
                            "cert_file": "\(settings[RuntimeSettings.tlsCertFile])",
                        ])
                    }
                } catch {
                    logger.error("TLS certificate files changed but do not load; keeping the current pair", metadata: [
                        "error": "\(error)",
                    ])
                }
            }
        }
        defer { watcher.cancel() }
        #endif

        do {
            try await group.run()
        } catch let error as SystemError {
            return cannotStart(error)
        } catch let error as DrainIncompleteError {
            logger.error("service stopped; the drain was incomplete", metadata: [
                "closed_at_deadline": .stringConvertible(error.result.closedAtDeadline),
                "cut_requests": .stringConvertible(error.result.cutRequests),
                "forced": .stringConvertible(error.result.forced),
            ])
            LogSink.standardOutput.flush(waitingUpTo: ServiceRuntime.logFlushTimeout)
            return 1
        } catch {
            logger.error("service stopped with an error", metadata: ["error": "\(error)"])
            LogSink.standardOutput.flush(waitingUpTo: ServiceRuntime.logFlushTimeout)
            return 1
        }
        logger.info("service stopped")
        LogSink.standardOutput.flush(waitingUpTo: ServiceRuntime.logFlushTimeout)
        return 0
    }

    #if TLS
    /// SIGHUP: the certificate and key files are read again and used for new connections; a
    /// pair that does not load leaves the current one in place.
    func reloadCertificates(_ certificates: TLSCertificates?) {
        guard let certificates else { return }
        do {
            try certificates.reload()
            logger.info("TLS certificate reloaded; new connections use it", metadata: [
                "cert_file": "\(certificates.context.certificateFile)",
            ])
        } catch {
            logger.error("TLS certificate reload failed; keeping the current one", metadata: ["error": "\(error)"])
        }
    }
    #endif

    /// The listener `--metrics-port` asks for: `/metrics` alone, on the service's host, with the
    /// main server's timeouts, one event loop and a small connection cap. Its requests are not
    /// counted in the server metrics. It logs its own "metrics listening" line once it runs.
    func makeMetricsServer(_ metrics: PrometheusMetrics) -> HTTPServer {
        var router = Router()
        router.addProbe("GET", "/metrics", accessLog: settings[RuntimeSettings.metricsAccessLog], metrics.handler)
        var configuration = settings.server
        configuration.port = settings[RuntimeSettings.metricsPort]
        configuration.eventLoops = 1
        configuration.maxConnections = 64
        configuration.shutdownDelay = .zero
        configuration.drainTimeout = .seconds(1)
        let server = HTTPServer(configuration: configuration, router: router, logger: logger)
        let (port, logger) = (configuration.port, logger)
        server.onRun = { address in
            logger.info("metrics listening", metadata: [
                "address": "\(address?.description ?? "-")", "port": .stringConvertible(address?.port ?? port),
            ])
        }
        return server
    }
}

/// ServiceGroup names each service with `"\(service)"` when it is configured. Without this
/// conformance that string comes from the runtime's reflection: three failed conformance
/// lookups, a Mirror and the demangler's printer, which fault in about 230 KiB of the static
/// binary's text that nothing else uses (idle RSS 8.70 -> 8.47 MiB).
extension HTTPServer: CustomStringConvertible {
    public var description: String { "ServiceKit.HTTPServer" }
}
