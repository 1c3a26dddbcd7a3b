import Logging

/// The runtime's own settings, in the order `--help` lists them; an application's settings
/// follow them. Their defaults are the server's (``ServerConfiguration``).
public enum RuntimeSettings {
    private static let server = ServerConfiguration()

    public static let host = Setting(
        "host", default: server.host, .ipAddress, help: "Address to listen on: an IPv4 or IPv6 literal")
    public static let port = Setting(
        "port", default: server.port, .integer(in: 0...65535, valueName: "port"),
        help: "TCP port to listen on; 0 picks a free one")
    public static let readHeaderTimeout = Setting(
        "read-header-timeout", default: server.readHeaderTimeout, .positiveDuration,
        help: "Time allowed to read a request's header section; must be > 0")
    public static let readTimeout = Setting(
        "read-timeout", default: server.readTimeout, .durationOrZero,
        help: "Time allowed to read a request body; 0 disables")
    public static let idleTimeout = Setting(
        "idle-timeout", default: server.idleTimeout, .durationOrZero,
        help: "How long a keep-alive connection may wait for its next request; 0 disables")
    public static let writeTimeout = Setting(
        "write-timeout", default: server.writeTimeout, .durationOrZero,
        help: "Time allowed to write one response; 0 disables")
    public static let maxHeaderBytes = Setting(
        "max-header-bytes", default: server.maxHeaderBytes, .integer(atLeast: 1024, valueName: "bytes"),
        help: "Largest request line plus header section, in bytes; at least 1024")
    public static let maxBodyBytes = Setting(
        "max-body-bytes", default: server.maxBodyBytes, .integer(atLeast: 0, valueName: "bytes"),
        help: "Largest request body, in bytes")
    /// Not given, the runtime derives the cap from the container's memory limit
    /// (``ConnectionBudget``) and ``Settings`` holds that cap.
    public static let maxConnections = Setting(
        "max-connections", default: server.maxConnections, .integer(atLeast: 1),
        help: "Most open client connections, past which new ones get a 503; unset, what a container memory limit holds, at most 10000")
    public static let eventLoops = Setting(
        "event-loops", default: server.eventLoops, .integer(atLeast: 0),
        help: "Number of event loop threads; 0 means one per CPU core")
    public static let shutdownDelay = Setting(
        "shutdown-delay", default: server.shutdownDelay, .durationOrZero,
        help: "After SIGTERM, how long to keep serving (readiness already 503) before the listener closes")
    public static let drainTimeout = Setting(
        "drain-timeout", default: server.drainTimeout, .positiveDuration,
        help: "After the listener closes, how long open connections may finish before they are closed; must be > 0")
    public static let drainLinger = Setting(
        "drain-linger", default: server.drainLinger, .durationOrZero,
        help: "During the drain, how long an idle keep-alive connection may send one more request; 0 closes it at once")
    public static let healthCheckTimeout = Setting(
        "health-check-timeout", default: .seconds(2), .positiveDuration,
        help: "With -health-check: how long to wait for the running server's answer; must be > 0")
    public static let accessLog = Setting(
        "access-log", default: server.accessLog, .boolean, help: "Log every request as a JSON line: true or false")
    public static let logLevel = Setting(
        "log-level", default: Logger.Level.info, .logLevel,
        help: "Least severe level logged: trace, debug, info, notice, warning, error or critical")
    public static let metrics = Setting(
        "metrics", default: true, .boolean, help: "Serve Prometheus metrics at GET /metrics: true or false")
    public static let metricsPort = Setting(
        "metrics-port", default: 0, .integer(in: 0...65535, valueName: "port"),
        help: "Serve /metrics on this port of the same host instead of the main listener; 0 means the main listener")
    public static let metricsAccessLog = Setting(
        "metrics-access-log", default: false, .boolean, help: "Log scrapes of /metrics in the access log: true or false")
    /// With ``tlsKeyFile``, the listener speaks HTTPS (a build with the TLS trait only).
    public static let tlsCertFile = Setting(
        "tls-cert-file", default: "", .path,
        help: "PEM certificate chain; with --tls-key-file, serve HTTPS (builds with the TLS trait)", defaultText: "none")
    public static let tlsKeyFile = Setting(
        "tls-key-file", default: "", .path, help: "PEM private key of --tls-cert-file", defaultText: "none")
    public static let healthCheckVerify = Setting(
        "health-check-verify", default: true, .boolean,
        help: "With -health-check over TLS: check the server presents the --tls-cert-file certificate")
    public static let tlsReloadInterval = Setting(
        "tls-reload-interval", default: .seconds(60), .durationOrZero,
        help: "With TLS: how often to check the certificate and key files and reload them if changed; 0 leaves it to SIGHUP")

    /// Every runtime setting, in `--help` order.
    public static let all: [AnySetting] = [
        .init(host), .init(port), .init(readHeaderTimeout), .init(readTimeout), .init(idleTimeout),
        .init(writeTimeout), .init(maxHeaderBytes), .init(maxBodyBytes), .init(maxConnections), .init(eventLoops),
        .init(shutdownDelay), .init(drainTimeout), .init(drainLinger), .init(healthCheckTimeout), .init(accessLog),
        .init(logLevel), .init(metrics), .init(metricsPort), .init(metricsAccessLog), .init(tlsCertFile),
        .init(tlsKeyFile), .init(healthCheckVerify), .init(tlsReloadInterval),
    ]

    /// The checks that involve more than one setting; a failure is a usage error (exit 2).
    static func validate(_ settings: Settings) throws(InvalidSettingError) {
        if settings[tlsCertFile].isEmpty != settings[tlsKeyFile].isEmpty {
            throw InvalidSettingError(message: "--tls-cert-file and --tls-key-file go together: HTTPS needs both")
        }
        #if !TLS
        if settings.tlsEnabled {
            throw InvalidSettingError(
                message: "--tls-cert-file: this build has no TLS; build with `swift build --traits TLS` (see README)")
        }
        #endif
        let metricsPort = settings[metricsPort]
        if settings[metrics], metricsPort != 0, metricsPort == settings[port] {
            throw InvalidSettingError(
                message: "--metrics-port \(metricsPort) is the service's own port: use 0 to serve /metrics there")
        }
    }
}

extension Settings {
    /// The HTTP server's configuration these settings describe.
    public var server: ServerConfiguration {
        typealias R = RuntimeSettings
        var server = ServerConfiguration()
        server.host = self[R.host]
        server.port = self[R.port]
        server.readHeaderTimeout = self[R.readHeaderTimeout]
        server.readTimeout = self[R.readTimeout]
        server.idleTimeout = self[R.idleTimeout]
        server.writeTimeout = self[R.writeTimeout]
        server.maxHeaderBytes = self[R.maxHeaderBytes]
        server.maxBodyBytes = self[R.maxBodyBytes]
        server.maxConnections = self[R.maxConnections]
        server.eventLoops = self[R.eventLoops]
        server.shutdownDelay = self[R.shutdownDelay]
        server.drainTimeout = self[R.drainTimeout]
        server.drainLinger = self[R.drainLinger]
        server.accessLog = self[R.accessLog]
        return server
    }

    /// Both TLS files are set: the listener speaks HTTPS.
    public var tlsEnabled: Bool { !self[RuntimeSettings.tlsCertFile].isEmpty }
}

/// A setting's value did not parse or is out of range, or settings contradict each other;
/// `message` is the one line to show.
struct InvalidSettingError: Error, Equatable {
    var message: String
}
