import Logging
import ServiceKit
import ServiceLifecycle
import UnixSignals

/// App wires configuration, logging, routes and the server together, in the order
/// ardanlabs/service uses: read config, build the logger, then run until told to stop.
enum App {
    /// Runs ``main(arguments:)`` on the cooperative pool and exits with its status; the main
    /// thread parks meanwhile.
    ///
    /// Not an async `main`: that hands the main thread to `dispatch_main()`, which exits the
    /// thread, and libdispatch's cleanup of it then opens an eventfd. When that cleanup runs
    /// late (a busy machine) and a connection flood has taken every descriptor by then, the
    /// failed eventfd is a libdispatch crash (SIGILL), so a flood at startup could kill the
    /// process. Nothing here uses the main actor, so the main thread has nothing to run.
    static func runAndExit(arguments: [String]) -> Never {
        Task.detached {
            exit(await main(arguments: arguments))
        }
        while true { pause() }
    }

    /// How long the last log lines may take to leave before the process exits: a reader that
    /// stalled standard output must not keep a stopped service from exiting.
    static let logFlushTimeout: Duration = .seconds(1)

    /// Runs the service and returns the process exit status: 0 after a clean shutdown, 1 for a
    /// startup failure, 2 for a bad command line.
    static func main(arguments: [String]) async -> Int32 {
        // A client that disconnects while we write must cost an EPIPE, not the process.
        signal(SIGPIPE, SIG_IGN)

        var parsedConfiguration: AppConfiguration
        switch parseCommandLine(arguments, environment: Environment.current()) {
        case .run(let parsed):
            parsedConfiguration = parsed
        case .exit(let code, let message, let toStandardError):
            let line = message.hasSuffix("\n") ? message : message + "\n"
            printLine(toStandardError ? "service: " + line : line, to: toStandardError ? 2 : 1)
            return code
        }

        if parsedConfiguration.healthCheck {
            return healthCheck(parsedConfiguration)
        }

        // Unset, the connection cap is what the container's memory limit holds (the worst case
        // of every connection, as deploy/check_memory.py checks for the shipped manifests).
        let memoryLimit = ConnectionBudget.cgroupMemoryLimit()
        if !parsedConfiguration.maxConnectionsGiven {
            parsedConfiguration.server.maxConnections = ConnectionBudget.maxConnections(
                memoryLimit: memoryLimit, tls: parsedConfiguration.tlsEnabled)
        }
        let configuration = parsedConfiguration

        JSONLogHandler.bootstrap(logLevel: configuration.logLevel)
        let logger = Logger(label: "service")

        let readiness = Readiness()
        var router = Routes.router(readiness: readiness, maxDelay: configuration.maxDelay)
        // Metrics: swift-metrics, bootstrapped with a Prometheus registry that `/metrics` serves,
        // on the main listener or on a port of its own.
        let metrics = configuration.metrics ? AppMetrics() : nil
        var metricsServer: HTTPServer?
        if let metrics {
            metrics.bootstrap()
            if configuration.metricsPort == 0 {
                router.get("/metrics", accessLog: configuration.metricsAccessLog, metrics.handler)
            } else {
                metricsServer = makeMetricsServer(configuration, metrics: metrics, logger: logger)
            }
        }
        #if TLS
        // HTTPS: the pair is loaded (and checked) before anything listens.
        var certificates: TLSCertificates?
        if configuration.tlsEnabled {
            do {
                certificates = try TLSCertificates(
                    certificateFile: configuration.tlsCertificateFile, keyFile: configuration.tlsKeyFile)
            } catch {
                logger.critical("cannot load the TLS certificate and key", metadata: ["error": "\(error)"])
                LogSink.standardOutput.flush(waitingUpTo: App.logFlushTimeout)
                return 1
            }
        }
        let server = HTTPServer(
            configuration: configuration.server, router: router, logger: logger, readiness: readiness,
            metricsFactory: metrics?.factory, tls: certificates)
        #else
        let server = HTTPServer(
            configuration: configuration.server, router: router, logger: logger, readiness: readiness,
            metricsFactory: metrics?.factory)
        #endif
        metrics?.collect(from: server)
        server.onRun = { address in
            logger.info("service started", metadata: startupMetadata(configuration, address: address, memoryLimit: memoryLimit))
        }

        // Signals are handled here rather than by the group's own option, because a second
        // SIGTERM or SIGINT must force the shutdown and ServiceGroup ignores repeats. Trapping
        // them before the group runs the server means there is no moment when the port is open
        // but a SIGTERM would kill the process instead of draining it, PID 1 included.
        // With TLS, SIGHUP reloads the certificate and key (what cert-manager's renewals need).
        let signals = await configuration.tlsEnabled
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
            return cannotStart(error, configuration, port: configuration.metricsPort, logger: logger)
        }
        do {
            try server.start()
        } catch {
            return cannotStart(error, configuration, logger: logger)
        }
        // The group shuts services down in reverse order: put a database client (or any service
        // the handlers use) before the server, and it stops only after the server has drained.
        // The metrics listener goes first, so it answers scrapes until the server has drained.
        var services: [any Service] = []
        if let metricsServer { services.append(metricsServer) }
        services.append(server)
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let signalTask = Task {
            var count = 0
            for await signal in signals {
                #if TLS
                if signal == .sighup {
                    reloadCertificates(certificates, logger: logger)
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
            guard let certificates, configuration.tlsReloadInterval > .zero else { return }
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.tlsReloadInterval)
                do {
                    if try certificates.reloadIfChanged() {
                        logger.info("TLS certificate files changed; reloaded, new connections use them", metadata: [
                            "cert_file": "\(configuration.tlsCertificateFile)",
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
            return cannotStart(error, configuration, logger: logger)
        } catch let error as DrainIncompleteError {
            logger.error("service stopped; the drain was incomplete", metadata: [
                "closed_at_deadline": .stringConvertible(error.result.closedAtDeadline),
                "cut_requests": .stringConvertible(error.result.cutRequests),
                "forced": .stringConvertible(error.result.forced),
            ])
            LogSink.standardOutput.flush(waitingUpTo: App.logFlushTimeout)
            return 1
        } catch {
            logger.error("service stopped with an error", metadata: ["error": "\(error)"])
            LogSink.standardOutput.flush(waitingUpTo: App.logFlushTimeout)
            return 1
        }
        logger.info("service stopped")
        LogSink.standardOutput.flush(waitingUpTo: App.logFlushTimeout)
        return 0
    }

    /// Logs why the server could not start (address in use, permission denied) and returns
    /// the exit status, 1.
    static func cannotStart(
        _ error: SystemError, _ configuration: AppConfiguration, port: Int? = nil, logger: Logger
    ) -> Int32 {
        logger.critical(port == nil ? "cannot start server" : "cannot start metrics listener", metadata: [
            "error": "\(error)", "host": "\(configuration.server.host)",
            "port": "\(port ?? configuration.server.port)",
        ])
        LogSink.standardOutput.flush(waitingUpTo: App.logFlushTimeout)
        return 1
    }

    #if TLS
    /// SIGHUP: the certificate and key files are read again and used for new connections; a
    /// pair that does not load leaves the current one in place.
    static func reloadCertificates(_ certificates: TLSCertificates?, logger: Logger) {
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
    static func makeMetricsServer(_ configuration: AppConfiguration, metrics: AppMetrics, logger: Logger) -> HTTPServer {
        var router = Router()
        router.get("/metrics", accessLog: configuration.metricsAccessLog, metrics.handler)
        var settings = configuration.server
        settings.port = configuration.metricsPort
        settings.eventLoops = 1
        settings.maxConnections = 64
        settings.shutdownDelay = .zero
        settings.drainTimeout = .seconds(1)
        let server = HTTPServer(configuration: settings, router: router, logger: logger)
        let port = settings.port
        server.onRun = { address in
            logger.info("metrics listening", metadata: [
                "address": "\(address?.description ?? "-")", "port": .stringConvertible(address?.port ?? port),
            ])
        }
        return server
    }

    /// `service -health-check`: probes the server this configuration describes and prints one
    /// line on failure. Exit 0 on 200, 1 on anything else.
    static func healthCheck(_ configuration: AppConfiguration) -> Int32 {
        guard let target = HealthProbe.target(host: configuration.server.host, port: configuration.server.port) else {
            printLine("health check failed: cannot probe host \(configuration.server.host)\n", to: 2)
            return 1
        }
        let result: Result<Void, HealthProbe.Failure>
        #if TLS
        if configuration.tlsEnabled {
            result = HealthProbe.checkTLS(
                target, timeout: configuration.healthCheckTimeout,
                trusting: configuration.healthCheckVerify ? configuration.tlsCertificateFile : nil)
        } else {
            result = HealthProbe.check(target, timeout: configuration.healthCheckTimeout)
        }
        #else
        result = HealthProbe.check(target, timeout: configuration.healthCheckTimeout)
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
    static func startupMetadata(_ configuration: AppConfiguration, address: SocketAddress?, memoryLimit: UInt64? = nil)
        -> Logger.Metadata
    {
        let server = configuration.server
        return [
            "version": "\(BuildInfo.version)",
            "revision": "\(BuildInfo.revision)",
            "address": "\(address?.description ?? "-")",
            "port": .stringConvertible(address?.port ?? server.port),
            "config": [
                "read_header_timeout": "\(server.readHeaderTimeout.goString)",
                "read_timeout": "\(server.readTimeout.goString)",
                "idle_timeout": "\(server.idleTimeout.goString)",
                "write_timeout": "\(server.writeTimeout.goString)",
                "max_header_bytes": .stringConvertible(server.maxHeaderBytes),
                "max_body_bytes": .stringConvertible(server.maxBodyBytes),
                "max_connections": .stringConvertible(server.maxConnections),
                // Where the cap came from: MAX_CONNECTIONS, the cgroup memory limit, or neither.
                "max_connections_from": "\(configuration.maxConnectionsGiven ? "setting" : memoryLimit == nil ? "default" : "memory limit")",
                "memory_limit_bytes": "\(memoryLimit.map(String.init) ?? "none")",
                "event_loops": .stringConvertible(server.eventLoops),
                "shutdown_delay": "\(server.shutdownDelay.goString)",
                "drain_timeout": "\(server.drainTimeout.goString)",
                "drain_linger": "\(server.drainLinger.goString)",
                "access_log": .stringConvertible(server.accessLog),
                "metrics": .stringConvertible(configuration.metrics),
                "metrics_port": .stringConvertible(configuration.metricsPort),
                "metrics_access_log": .stringConvertible(configuration.metricsAccessLog),
                "tls": .stringConvertible(configuration.tlsEnabled),
                "max_delay": "\(configuration.maxDelay.goString)",
                "log_level": "\(configuration.logLevel.rawValue)",
            ],
        ]
    }
}

/// Writes text straight to a file descriptor (stdio's globals are not concurrency-safe).
func printLine(_ text: String, to fd: Int32) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}

/// The process environment as a dictionary, read without Foundation.
enum Environment {
    static func current() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }
}

/// ServiceGroup names each service with `"\(service)"` when it is configured. Without this
/// conformance that string comes from the runtime's reflection: three failed conformance
/// lookups, a Mirror and the demangler's printer, which fault in about 230 KiB of the static
/// binary's text that nothing else uses (idle RSS 8.70 -> 8.47 MiB). Same text as before.
extension HTTPServer: CustomStringConvertible {
    public var description: String { "ServiceKit.HTTPServer" }
}
